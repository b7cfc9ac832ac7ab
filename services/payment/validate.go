package payment

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/input"
)

// Bounds on a Charge request.
const (
	// MaxIDLength is the longest order id, user id and idempotency key, in bytes.
	MaxIDLength = 256
	// MaxCardLength is the longest card number, in bytes.
	MaxCardLength = 64
	// MaxAmountCents is the largest amount of one charge.
	MaxAmountCents = 1_000_000_000_000
)

// validateCharge checks the bounds of a Charge request whose fields are
// present: out-of-range input, text that is not UTF-8 and a card number
// that is not one (input.CardNumber; an empty one is no card) are
// INVALID_ARGUMENT naming the field, and the message never echoes an
// oversized value or the card number back.
func validateCharge(req *paymentv1.ChargeRequest) error {
	for _, f := range []struct {
		name, value string
		limit       int
	}{
		{"order_id", req.GetOrderId(), MaxIDLength},
		{"user_id", req.GetUserId(), MaxIDLength},
		{"idempotency_key", req.GetIdempotencyKey(), MaxIDLength},
		{"card_number", req.GetCardNumber(), MaxCardLength},
	} {
		if len(f.value) > f.limit {
			return status.Errorf(codes.InvalidArgument, "%s: %d bytes, at most %d", f.name, len(f.value), f.limit)
		}
		if err := input.UTF8(f.value); err != nil {
			return status.Errorf(codes.InvalidArgument, "%s: %v", f.name, err)
		}
	}
	if c := req.GetCardNumber(); c != "" {
		if err := input.CardNumber(c); err != nil {
			return status.Errorf(codes.InvalidArgument, "card_number: %v", err)
		}
	}
	if a := req.GetAmountCents(); a > MaxAmountCents {
		return status.Errorf(codes.InvalidArgument, "amount_cents: %d, at most %d", a, int64(MaxAmountCents))
	}
	return nil
}
