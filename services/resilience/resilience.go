// Package resilience is the per-link resilience policy of order's outgoing
// gRPC calls, delivered as a unary client interceptor: a bulkhead, a retry
// loop with exponential backoff and full jitter, a circuit breaker
// (github.com/sony/gobreaker/v2) and a per-attempt deadline.
//
// One logical call flows through the layers like this, outermost first:
//
//	caller ──▶ bulkhead ──▶ retry loop ──▶ breaker ──▶ attempt deadline ──▶ wire
//	           (reject at    (retryable     (per attempt;  (WithTimeout per
//	            once when     codes only,    open: reject   attempt, never
//	            full)         backoff ≤      at once, not   extends the
//	                          caller's       retried)       caller's)
//	                          deadline)
//
// Every knob of config.Link switches its layer off at its zero value; with
// all of them off the interceptor is a pass-through that only counts calls
// and attempts.
//
// The package uses only the OpenTelemetry API: retries, rejections,
// fallbacks and breaker state changes are span events on the caller's span,
// and when retries are on each attempt gets a short internal span
// "<link>.attempt" so that a trace shows every attempt as its own subtree.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/internal/semconv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

// Span event and attribute names recorded by a policy.
const (
	EventRetry            = semconv.EventRetry
	EventBreakerRejected  = semconv.EventBreakerRejected
	EventBulkheadRejected = semconv.EventBulkheadRejected
	EventFallback         = semconv.EventFallback
	EventBreakerChange    = "breaker.state_change"

	AttrAttempt = attribute.Key(semconv.Attempt) // attempt number, 1 for the first
	AttrCode    = attribute.Key(semconv.Code)    // gRPC code name of the failed attempt
	AttrLink    = attribute.Key(semconv.Link)    // link name
	AttrFrom    = attribute.Key("fallacies.breaker.from")
	AttrTo      = attribute.Key("fallacies.breaker.to")
)

// maxTransitions bounds the breaker transitions a policy remembers; an
// experiment run produces a handful per fault window.
const maxTransitions = 10_000

// Policy is the resilience policy of one link. It is safe for concurrent
// use; one Policy serves every call on its link.
type Policy struct {
	link   string
	cfg    config.Link
	log    *slog.Logger
	tracer trace.Tracer
	cb     *gobreaker.CircuitBreaker[struct{}] // nil when the breaker is off
	budget *retryBudget                        // nil when retries are not budgeted

	// jitter draws a backoff uniformly from [0, ceil]; tests replace it.
	jitter func(ceil time.Duration) time.Duration

	inFlight atomic.Int64

	calls, attempts, retries          atomic.Int64
	opened, closed                    atomic.Int64
	breakerRejected, bulkheadRejected atomic.Int64
	fallbacks                         atomic.Int64
	deadlines                         atomic.Int64 // attempts that ended DeadlineExceeded
	hedges, hedgesWon                 atomic.Int64 // counted by Replicas

	mu          sync.Mutex
	transitions []*orderv1.BreakerTransition
	pending     []*orderv1.BreakerTransition // not yet recorded on a span
}

// New validates cfg (config.Link.Validate) and returns the policy of link
// (config.LinkUser or config.LinkPayment), which names its stats, spans
// and breaker.
func New(link string, cfg config.Link, o serve.Options) (*Policy, error) {
	if err := cfg.Validate(link); err != nil {
		return nil, fmt.Errorf("new resilience policy: %w", err)
	}
	p := &Policy{
		link:   link,
		cfg:    cfg,
		log:    o.Log().With("link", link),
		tracer: o.Tracer("fallacies/resilience"),
		jitter: fullJitter,
		budget: newRetryBudget(cfg.RetryBudget),
	}
	if cfg.Breaker {
		p.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        link,
			MaxRequests: cfg.BreakerHalfOpen,
			Timeout:     cfg.BreakerOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= cfg.BreakerFailures
			},
			IsSuccessful:  func(err error) bool { return !breakerFailure(err) },
			IsExcluded:    func(err error) bool { return status.Code(err) == codes.Canceled },
			OnStateChange: p.onStateChange,
		})
	}
	return p, nil
}

// Link returns the link name.
func (p *Policy) Link() string { return p.link }

// Config returns the link configuration the policy was built from.
func (p *Policy) Config() config.Link { return p.cfg }

// DialOptions returns the dial options that install the policy on a client
// connection: one unary client interceptor.
func (p *Policy) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(p.Intercept)}
}

// RecordFallback counts a fallback the caller used because a call on this
// link failed, and adds a "fallback" event to the current span of ctx.
func (p *Policy) RecordFallback(ctx context.Context) {
	p.fallbacks.Add(1)
	trace.SpanFromContext(ctx).AddEvent(EventFallback, trace.WithAttributes(AttrLink.String(p.link)))
}

// Stats returns a snapshot of the policy's counters and breaker timeline.
func (p *Policy) Stats() *orderv1.LinkStats {
	state := "off"
	if p.cb != nil {
		// State may move open→half-open when the open period is over; such a
		// transition belongs to no request span.
		state = p.cb.State().String()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := make([]*orderv1.BreakerTransition, len(p.transitions))
	for i, t := range p.transitions {
		ts[i] = &orderv1.BreakerTransition{AtUnixNano: t.AtUnixNano, From: t.From, To: t.To}
	}
	return &orderv1.LinkStats{
		Link:             p.link,
		Calls:            p.calls.Load(),
		Attempts:         p.attempts.Load(),
		Retries:          p.retries.Load(),
		BreakerOpened:    p.opened.Load(),
		BreakerClosed:    p.closed.Load(),
		BreakerRejected:  p.breakerRejected.Load(),
		BulkheadRejected: p.bulkheadRejected.Load(),
		Fallbacks:        p.fallbacks.Load(),
		BreakerState:     state,
		Transitions:      ts,
		Deadlines:        p.deadlines.Load(),
		HedgesSent:       p.hedges.Load(),
		HedgesWon:        p.hedgesWon.Load(),
	}
}

// onStateChange is gobreaker's callback; it runs under the breaker's lock
// on the goroutine of the call that caused the transition.
func (p *Policy) onStateChange(_ string, from, to gobreaker.State) {
	t := &orderv1.BreakerTransition{AtUnixNano: time.Now().UnixNano(), From: from.String(), To: to.String()}
	switch to {
	case gobreaker.StateOpen:
		p.opened.Add(1)
	case gobreaker.StateClosed:
		p.closed.Add(1)
	}
	p.mu.Lock()
	if len(p.transitions) < maxTransitions {
		p.transitions = append(p.transitions, t)
	}
	if len(p.pending) < maxTransitions {
		p.pending = append(p.pending, t)
	}
	p.mu.Unlock()
	p.log.Info("breaker state change", "from", t.From, "to", t.To)
}

// flushTransitions records the transitions not yet on any span as events on
// span. It is called right after the breaker let a call go or refused it,
// so the span is, but for a race between concurrent calls, the one of the
// call during which the transition happened.
func (p *Policy) flushTransitions(span trace.Span) {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, t := range pending {
		span.AddEvent(EventBreakerChange, trace.WithTimestamp(time.Unix(0, t.AtUnixNano)), trace.WithAttributes(
			AttrLink.String(p.link), AttrFrom.String(t.From), AttrTo.String(t.To)))
	}
}

// Intercept is the policy as a grpc.UnaryClientInterceptor.
func (p *Policy) Intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	p.calls.Add(1)
	p.budget.deposit()
	if limit := int64(p.cfg.Bulkhead); limit > 0 {
		if p.inFlight.Add(1) > limit {
			p.inFlight.Add(-1)
			p.bulkheadRejected.Add(1)
			trace.SpanFromContext(ctx).AddEvent(EventBulkheadRejected, trace.WithAttributes(AttrLink.String(p.link)))
			return status.Errorf(codes.ResourceExhausted, "bulkhead full: %d in flight on %s", limit, p.link)
		}
		defer p.inFlight.Add(-1)
	}
	call := func(ctx context.Context) (rejected bool, err error) {
		return p.attempt(ctx, func(ctx context.Context) error {
			return invoker(ctx, method, req, reply, cc, opts...)
		})
	}
	if p.cfg.Retries == 0 {
		_, err := call(ctx)
		return err
	}
	return p.retryLoop(ctx, call)
}

// retryLoop runs call until it succeeds, fails with a code that is not
// retried, the retries are spent, or the next backoff would end past the
// caller's deadline.
func (p *Policy) retryLoop(ctx context.Context, call func(context.Context) (bool, error)) error {
	for n := 0; ; n++ {
		actx, span := p.tracer.Start(ctx, p.link+".attempt",
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(AttrAttempt.Int(n+1), AttrLink.String(p.link)))
		rejected, err := call(actx)
		if err != nil {
			span.SetStatus(otelcodes.Error, status.Code(err).String())
		}
		span.End()
		if err == nil || rejected || n >= p.cfg.Retries || !retryable(ctx, err) {
			return err
		}
		wait := p.backoff(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl)-wait <= p.cfg.MinAttemptTime {
			// Sleeping would outlive the caller, or leave the retry less
			// time than it needs (the caller's deadline propagates here).
			return err
		}
		if !p.budget.withdraw() {
			trace.SpanFromContext(ctx).AddEvent(EventBudgetExhausted, trace.WithAttributes(
				AttrLink.String(p.link), AttrAttempt.Int(n+2)))
			return err
		}
		p.retries.Add(1)
		trace.SpanFromContext(ctx).AddEvent(EventRetry, trace.WithAttributes(
			AttrLink.String(p.link), AttrAttempt.Int(n+2), AttrCode.String(status.Code(err).String())))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// backoff is the full-jitter wait before retry n (0-based): uniform in
// [0, min(BackoffBase·2ⁿ, BackoffMax)].
func (p *Policy) backoff(n int) time.Duration {
	ceil := p.cfg.BackoffMax
	if n < 62 {
		if d := p.cfg.BackoffBase << n; d > 0 && d < ceil {
			ceil = d
		}
	}
	return p.jitter(ceil)
}

func fullJitter(ceil time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// attempt makes one attempt through the breaker and under the per-attempt
// deadline. rejected reports that the breaker refused it without a call.
func (p *Policy) attempt(ctx context.Context, invoke func(context.Context) error) (rejected bool, err error) {
	once := func() error {
		p.attempts.Add(1)
		var err error
		if p.cfg.Timeout > 0 {
			actx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
			err = invoke(actx)
			cancel()
		} else {
			err = invoke(ctx)
		}
		if status.Code(err) == codes.DeadlineExceeded {
			p.deadlines.Add(1)
		}
		return err
	}
	if p.cb == nil {
		return false, once()
	}
	_, err = p.cb.Execute(func() (struct{}, error) { return struct{}{}, once() })
	span := trace.SpanFromContext(ctx)
	p.flushTransitions(span)
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		p.breakerRejected.Add(1)
		span.AddEvent(EventBreakerRejected, trace.WithAttributes(AttrLink.String(p.link), AttrTo.String("open")))
		return true, status.Errorf(codes.Unavailable, "circuit breaker open on %s", p.link)
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		p.breakerRejected.Add(1)
		span.AddEvent(EventBreakerRejected, trace.WithAttributes(AttrLink.String(p.link), AttrTo.String("half-open")))
		return true, status.Errorf(codes.Unavailable, "circuit breaker half-open on %s: probe limit reached", p.link)
	}
	return false, err
}

// retryable reports whether a failed attempt is worth another: the server
// or transport is unavailable or overloaded, or the attempt's own deadline
// expired while the caller still waits.
func retryable(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return ctx.Err() == nil
	}
	return false
}

// breakerFailure reports whether err counts against the breaker: failures
// of the peer or the path to it, not the caller's own mistakes.
func breakerFailure(err error) bool {
	if err == nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}
