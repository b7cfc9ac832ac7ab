package order

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/input"
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
	default:
		if err := input.UTF8(id); err != nil {
			return status.Errorf(codes.InvalidArgument, "user_id: %v", err)
		}
	}
	if a := req.GetAmountCents(); a <= 0 || a > MaxAmountCents {
		return status.Errorf(codes.InvalidArgument, "amount_cents %d: need 1 to %d", a, int64(MaxAmountCents))
	}
	return validCard(req.GetCardNumber())
}

// validCard checks a card number when one is given (input.CardNumber).
func validCard(card string) error {
	if n := len(card); n > MaxCardLength {
		return status.Errorf(codes.InvalidArgument, "card_number: %d bytes, at most %d", n, MaxCardLength)
	}
	if card == "" {
		return nil
	}
	if err := input.CardNumber(card); err != nil {
		return status.Errorf(codes.InvalidArgument, "card_number: %v", err)
	}
	return nil
}

// samePlace refuses an order id re-sent for another user or amount: the
// order placed under it is not this request's, and answering with it
// would pass one order off as another.
func samePlace(placed *orderv1.Order, req *orderv1.PlaceOrderRequest) error {
	if placed.GetUserId() != req.GetUserId() || placed.GetAmountCents() != req.GetAmountCents() {
		return status.Errorf(codes.AlreadyExists,
			"order_id %q was placed for user %q amount %d; this request is for user %q amount %d",
			placed.GetOrderId(), placed.GetUserId(), placed.GetAmountCents(), req.GetUserId(), req.GetAmountCents())
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
			return status.Errorf(codes.InvalidArgument, "order_id %q: byte %d is %s; use letters, digits, '-', '_' and '.'", id, i, input.Byte(id, i))
		}
	}
	return nil
}
