package order

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// Bounds on PlaceOrder's input.
const (
	// MaxIDLength is the longest order id and user id, in bytes.
	MaxIDLength = 256
	// MaxCardLength is the longest card number, in bytes.
	MaxCardLength = 64
	// MaxAmountCents is the largest amount of one order.
	MaxAmountCents = 1_000_000_000_000
)

// validatePlace checks a PlaceOrder request at the edge, before anything
// is called: a request that cannot be carried through user, payment and
// NATS intact is refused with INVALID_ARGUMENT naming the field, rather
// than failing half-way (after the charge).
func validatePlace(req *orderv1.PlaceOrderRequest) error {
	if err := validOrderID(req.GetOrderId()); err != nil {
		return err
	}
	switch id := req.GetUserId(); {
	case id == "":
		return status.Error(codes.InvalidArgument, "user_id is empty")
	case len(id) > MaxIDLength:
		return status.Errorf(codes.InvalidArgument, "user_id: %d bytes, at most %d", len(id), MaxIDLength)
	}
	if a := req.GetAmountCents(); a <= 0 || a > MaxAmountCents {
		return status.Errorf(codes.InvalidArgument, "amount_cents %d: need 1 to %d", a, int64(MaxAmountCents))
	}
	if n := len(req.GetCardNumber()); n > MaxCardLength {
		return status.Errorf(codes.InvalidArgument, "card_number: %d bytes, at most %d", n, MaxCardLength)
	}
	return nil
}

// validOrderID checks an order id: 1 to MaxIDLength letters, digits, '-',
// '_' and '.', not starting or ending with '.'. The id travels as a NATS
// header (Nats-Msg-Id) and as a key of the notifications bucket, where a
// line break would forge a header and '*', '>' or a space are not allowed.
func validOrderID(id string) error {
	switch {
	case id == "":
		return status.Error(codes.InvalidArgument, "order_id is empty")
	case len(id) > MaxIDLength:
		return status.Errorf(codes.InvalidArgument, "order_id: %d bytes, at most %d", len(id), MaxIDLength)
	case id[0] == '.' || id[len(id)-1] == '.':
		return status.Errorf(codes.InvalidArgument, "order_id %q: must not start or end with '.'", id)
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return status.Errorf(codes.InvalidArgument, "order_id %q: byte %d is %q; use letters, digits, '-', '_' and '.'", id, i, c)
		}
	}
	return nil
}
