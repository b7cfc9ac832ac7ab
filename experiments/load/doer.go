package load

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// TestCard is the card number every generated order pays with.
const TestCard = "4111 1111 1111 1111"

// orderDoer sends requests to the order service.
type orderDoer struct {
	client  orderv1.OrderServiceClient
	timeout time.Duration
}

// NewOrderDoer returns a Doer that sends place_order as
// OrderService.PlaceOrder (order id, user id, amount, TestCard) and
// get_order as OrderService.GetOrder, each under its own deadline of
// timeout (none when timeout ≤ 0; Run's Config.Timeout applies anyway).
// The outcome is Unknown when the request's own context expired (its
// deadline is past) or was canceled, whatever code the call returned; an
// error answered by the server before that, DEADLINE_EXCEEDED included, is
// a definite failure. It is safe for concurrent use
// as long as client is (gRPC clients are).
func NewOrderDoer(client orderv1.OrderServiceClient, timeout time.Duration) Doer {
	return &orderDoer{client: client, timeout: timeout}
}

// Do sends one request and classifies its outcome.
func (d *orderDoer) Do(ctx context.Context, r Request) Outcome {
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	var err error
	switch r.Op {
	case OpPlaceOrder:
		_, err = d.client.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
			OrderId:     r.OrderID,
			UserId:      r.UserID,
			AmountCents: r.AmountCents,
			CardNumber:  TestCard,
		})
	case OpGetOrder:
		_, err = d.client.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: r.OrderID})
	default:
		err = status.Error(codes.InvalidArgument, fmt.Sprintf("load: unknown op %q", r.Op))
	}
	if err == nil {
		return Outcome{Code: codes.OK}
	}
	return Outcome{Code: status.Code(err), Unknown: expired(ctx)}
}

// expired reports whether ctx has ended or its deadline has passed. The
// second test matters: gRPC reports DEADLINE_EXCEEDED as soon as the
// deadline is past by the clock, possibly before the context's own timer
// has fired and set ctx.Err.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}
