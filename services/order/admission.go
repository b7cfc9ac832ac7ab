package order

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"
)

// admissionSpan names the span of a request waiting for a slot when
// config.Order.MaxConcurrent is set.
const admissionSpan = "admission"

// admission is the limit of config.Order.MaxConcurrent: a fixed number of
// slots shared by PlaceOrder and GetOrder. A request takes a slot before
// it does anything and gives it back when it answers; when none is free it
// waits, in arrival order, until one is or its context ends. This is how
// a fixed pool of worker threads behaves: a slow dependency of one method
// holds slots that every other method needs.
//
//	PlaceOrder ─┐                ┌─▶ work ─▶ release
//	GetOrder  ──┼─▶ slots (n) ───┤
//	  …        ─┘   full: wait   └─▶ ctx ended while waiting: its code
type admission struct {
	slots chan struct{} // nil: unlimited
}

func newAdmission(n int) *admission {
	a := &admission{}
	if n > 0 {
		a.slots = make(chan struct{}, n)
	}
	return a
}

// admit takes a slot, waiting for one under a span when all are taken. The
// returned release gives it back and must be called once. The error is a
// gRPC status from ctx (DEADLINE_EXCEEDED or CANCELED).
func (a *admission) admit(ctx context.Context, tracer trace.Tracer) (release func(), err error) {
	if a.slots == nil {
		return func() {}, nil
	}
	select {
	case a.slots <- struct{}{}:
		return a.release, nil
	default:
	}
	_, span := tracer.Start(ctx, admissionSpan, trace.WithAttributes(attribute.Int("fallacies.order.max_concurrent", cap(a.slots))))
	defer span.End()
	select {
	case a.slots <- struct{}{}:
		return a.release, nil
	case <-ctx.Done():
		err := status.FromContextError(ctx.Err()).Err()
		span.SetStatus(otelcodes.Error, "no slot before the request ended")
		return nil, err
	}
}

func (a *admission) release() { <-a.slots }
