package resilience

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/internal/testenv"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// peer is a payment server on loopback whose Charge does what behave says
// for the n-th call it receives (1-based).
type peer struct {
	paymentv1.UnimplementedPaymentServiceServer
	calls  atomic.Int64
	mu     sync.Mutex
	behave func(ctx context.Context, n int64) error
}

func (s *peer) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.ChargeResponse, error) {
	n := s.calls.Add(1)
	s.mu.Lock()
	b := s.behave
	s.mu.Unlock()
	if b != nil {
		if err := b(ctx, n); err != nil {
			return nil, err
		}
	}
	return &paymentv1.ChargeResponse{Charge: &paymentv1.Charge{ChargeId: "c-" + req.GetOrderId(), OrderId: req.GetOrderId()}}, nil
}

func (s *peer) set(b func(ctx context.Context, n int64) error) {
	s.mu.Lock()
	s.behave = b
	s.mu.Unlock()
}

func fail(c codes.Code) func(context.Context, int64) error {
	return func(context.Context, int64) error { return status.Error(c, "test failure") }
}

// setup starts a peer and returns it with a client whose connection carries
// a policy built from cfg.
func setup(t *testing.T, cfg config.Link, o serve.Options) (*peer, paymentv1.PaymentServiceClient, *Policy) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pr := &peer{}
	paymentv1.RegisterPaymentServiceServer(srv, pr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	p, err := New(config.LinkPayment, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := serve.Dial(lis.Addr().String(), o, p.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pr, paymentv1.NewPaymentServiceClient(conn), p
}

func charge(ctx context.Context, c paymentv1.PaymentServiceClient) error {
	_, err := c.Charge(ctx, &paymentv1.ChargeRequest{OrderId: "o-1", UserId: "u-1", AmountCents: 1, IdempotencyKey: "o-1"})
	return err
}

func TestNewValidates(t *testing.T) {
	ok := config.Link{Timeout: time.Second, Retries: 2, BackoffBase: time.Millisecond, BackoffMax: time.Second,
		Breaker: true, BreakerFailures: 1, BreakerOpenFor: time.Second, BreakerHalfOpen: 1, Bulkhead: 3}
	tests := []struct {
		name    string
		link    string
		mutate  func(*config.Link)
		wantErr string
	}{
		{"valid user", config.LinkUser, func(*config.Link) {}, ""},
		{"valid payment", config.LinkPayment, func(*config.Link) {}, ""},
		{"all off", config.LinkUser, func(l *config.Link) { *l = config.Link{} }, ""},
		{"unknown link", "nats", func(*config.Link) {}, "not user or payment"},
		{"negative timeout", config.LinkUser, func(l *config.Link) { l.Timeout = -1 }, "timeout"},
		{"negative retries", config.LinkUser, func(l *config.Link) { l.Retries = -1 }, "retries"},
		{"retries without backoff", config.LinkUser, func(l *config.Link) { l.BackoffBase = 0 }, "backoff"},
		{"backoff max below base", config.LinkUser, func(l *config.Link) { l.BackoffMax = 0 }, "backoff"},
		{"breaker without failures", config.LinkUser, func(l *config.Link) { l.BreakerFailures = 0 }, "breaker"},
		{"breaker without open time", config.LinkUser, func(l *config.Link) { l.BreakerOpenFor = 0 }, "breaker"},
		{"breaker without half-open", config.LinkUser, func(l *config.Link) { l.BreakerHalfOpen = 0 }, "breaker"},
		{"negative bulkhead", config.LinkUser, func(l *config.Link) { l.Bulkhead = -2 }, "bulkhead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			p, err := New(tt.link, cfg, serve.Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if p.Stats().GetLink() != tt.link {
					t.Fatalf("stats link %q, want %q", p.Stats().GetLink(), tt.link)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPassThrough(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	pr, c, p := setup(t, config.Link{}, serve.Options{TracerProvider: tp})

	if err := charge(t.Context(), c); err != nil {
		t.Fatalf("charge: %v", err)
	}
	for _, code := range []codes.Code{codes.Unavailable, codes.InvalidArgument, codes.Internal} {
		pr.set(fail(code))
		if err := charge(t.Context(), c); status.Code(err) != code {
			t.Fatalf("charge: got %v, want code %v passed through", err, code)
		}
	}
	s := p.Stats()
	if s.Calls != 4 || s.Attempts != 4 || s.Retries != 0 || pr.calls.Load() != 4 {
		t.Fatalf("stats calls %d attempts %d retries %d, server saw %d; want 4 4 0 4", s.Calls, s.Attempts, s.Retries, pr.calls.Load())
	}
	if s.BreakerState != "off" {
		t.Fatalf("breaker state %q, want off", s.BreakerState)
	}
	for _, sp := range rec.Ended() {
		if strings.HasSuffix(sp.Name(), ".attempt") {
			t.Fatalf("pass-through started an attempt span %q", sp.Name())
		}
	}
}

func TestRetry(t *testing.T) {
	cfg := config.Link{Retries: 3, BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond}
	tests := []struct {
		name         string
		behave       func(context.Context, int64) error
		wantCode     codes.Code
		wantAttempts int64
	}{
		{"unavailable until retries spent", fail(codes.Unavailable), codes.Unavailable, 4},
		{"resource exhausted from server is retried", fail(codes.ResourceExhausted), codes.ResourceExhausted, 4},
		{"invalid argument is not retried", fail(codes.InvalidArgument), codes.InvalidArgument, 1},
		{"not found is not retried", fail(codes.NotFound), codes.NotFound, 1},
		{"failed precondition is not retried", fail(codes.FailedPrecondition), codes.FailedPrecondition, 1},
		{"internal is not retried", fail(codes.Internal), codes.Internal, 1},
		{"recovers on third attempt", func(_ context.Context, n int64) error {
			if n < 3 {
				return status.Error(codes.Unavailable, "not yet")
			}
			return nil
		}, codes.OK, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, c, p := setup(t, cfg, serve.Options{})
			pr.set(tt.behave)
			err := charge(t.Context(), c)
			if status.Code(err) != tt.wantCode {
				t.Fatalf("charge: %v, want code %v", err, tt.wantCode)
			}
			if got := pr.calls.Load(); got != tt.wantAttempts {
				t.Fatalf("server saw %d attempts, want %d", got, tt.wantAttempts)
			}
			s := p.Stats()
			if s.Calls != 1 || s.Attempts != tt.wantAttempts || s.Retries != tt.wantAttempts-1 {
				t.Fatalf("stats calls %d attempts %d retries %d, want 1 %d %d", s.Calls, s.Attempts, s.Retries, tt.wantAttempts, tt.wantAttempts-1)
			}
		})
	}
}

func TestBackoffNeverOutlivesCallerDeadline(t *testing.T) {
	pr, c, p := setup(t, config.Link{Retries: 10, BackoffBase: 100 * time.Millisecond, BackoffMax: 10 * time.Second}, serve.Options{})
	p.jitter = func(ceil time.Duration) time.Duration { return ceil } // deterministic: the full ceiling
	pr.set(fail(codes.Unavailable))

	const deadline = 600 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	err := charge(ctx, c)

	// Backoffs are 100 ms, 200 ms, then 400 ms, which would end past the
	// deadline (about 300 ms left): the loop gives up at once with the
	// peer's error instead of sleeping into the deadline. A retry is
	// counted before its backoff starts, so two retries and three attempts
	// say the third backoff never began, however slow the machine.
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("charge: %v, want the peer's Unavailable", err)
	}
	if s := p.Stats(); s.Retries != 2 || pr.calls.Load() != 3 {
		t.Fatalf("retries %d, attempts on server %d; want 2 and 3", s.Retries, pr.calls.Load())
	}
}

func TestBackoffCeiling(t *testing.T) {
	p, err := New(config.LinkUser, config.Link{Retries: 1, BackoffBase: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{10, 20, 40, 80, 160, 200, 200, 200}
	for n, w := range want {
		var ceil time.Duration
		p.jitter = func(c time.Duration) time.Duration { ceil = c; return c }
		p.backoff(n)
		if ceil != w*time.Millisecond {
			t.Fatalf("backoff %d: ceiling %v, want %v", n, ceil, w*time.Millisecond)
		}
	}
	p.jitter = fullJitter
	for n := range 100 {
		if d := p.backoff(n); d < 0 || d > 200*time.Millisecond {
			t.Fatalf("backoff %d: %v outside [0, 200ms]", n, d)
		}
	}
}

// TestAttemptTimeout checks what the per-attempt deadline guarantees,
// read where it arrives: the deadline the peer received with the call
// (gRPC carries it) left it no more than the attempt's timeout, or the
// caller's, whichever is shorter. No wall-clock bound on the call.
func TestAttemptTimeout(t *testing.T) {
	// blockUntilDone records how long the call's deadline left it when it
	// arrived, then waits for its end.
	var left atomic.Int64
	blockUntilDone := func(ctx context.Context, _ int64) error {
		dl, ok := ctx.Deadline()
		if !ok {
			left.Store(-1)
		} else {
			left.Store(int64(time.Until(dl)))
		}
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	// wantLeft fails unless the peer saw a deadline, at most max away.
	wantLeft := func(t *testing.T, max time.Duration) {
		t.Helper()
		switch l := time.Duration(left.Load()); {
		case l < 0:
			t.Fatal("the peer got the call without a deadline")
		case l > max:
			t.Fatalf("the peer got the call with %v left before its deadline, want at most %v", l, max)
		}
	}
	t.Run("attempt deadline", func(t *testing.T) {
		pr, c, _ := setup(t, config.Link{Timeout: 50 * time.Millisecond}, serve.Options{})
		pr.set(blockUntilDone)
		err := charge(t.Context(), c)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("charge: %v, want DeadlineExceeded", err)
		}
		wantLeft(t, 50*time.Millisecond)
	})
	t.Run("caller deadline not extended", func(t *testing.T) {
		pr, c, _ := setup(t, config.Link{Timeout: 10 * time.Second}, serve.Options{})
		pr.set(blockUntilDone)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		err := charge(ctx, c)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("charge: %v, want DeadlineExceeded", err)
		}
		wantLeft(t, 50*time.Millisecond) // not the attempt's 10 s
	})
	t.Run("timed out attempt is retried", func(t *testing.T) {
		pr, c, p := setup(t, config.Link{Timeout: 30 * time.Millisecond, Retries: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}, serve.Options{})
		pr.set(func(ctx context.Context, n int64) error {
			if n <= 2 {
				return blockUntilDone(ctx, n)
			}
			return nil
		})
		if err := charge(t.Context(), c); err != nil {
			t.Fatalf("charge: %v, want success on the third attempt", err)
		}
		if s := p.Stats(); s.Attempts != 3 || s.Retries != 2 || s.Deadlines != 2 {
			t.Fatalf("attempts %d retries %d deadlines %d, want 3, 2 and 2", s.Attempts, s.Retries, s.Deadlines)
		}
	})
}

func TestBreaker(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	o := serve.Options{TracerProvider: tp}
	cfg := config.Link{Breaker: true, BreakerFailures: 3, BreakerOpenFor: 200 * time.Millisecond, BreakerHalfOpen: 1}
	pr, c, p := setup(t, cfg, o)
	tracer := tp.Tracer("test")

	// Caller mistakes never trip the breaker. (These calls reach the
	// peer: their median is what a rejection is measured against below.)
	pr.set(fail(codes.InvalidArgument))
	reached := make([]time.Duration, 0, 10)
	for range 10 {
		start := time.Now()
		err := charge(t.Context(), c)
		reached = append(reached, time.Since(start))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("charge: %v, want InvalidArgument", err)
		}
	}
	slices.Sort(reached)
	if s := p.Stats(); s.BreakerState != "closed" || s.BreakerOpened != 0 {
		t.Fatalf("after 10 InvalidArgument: state %q opened %d, want closed 0", s.BreakerState, s.BreakerOpened)
	}

	// Three consecutive peer failures open it.
	pr.set(fail(codes.Unavailable))
	for i := range 3 {
		ctx, span := tracer.Start(t.Context(), "failing-call")
		err := charge(ctx, c)
		span.End()
		if status.Code(err) != codes.Unavailable || strings.Contains(status.Convert(err).Message(), "circuit breaker") {
			t.Fatalf("failure %d: %v, want the peer's Unavailable", i, err)
		}
	}
	if s := p.Stats(); s.BreakerState != "open" || s.BreakerOpened != 1 {
		t.Fatalf("after 3 failures: state %q opened %d, want open 1", s.BreakerState, s.BreakerOpened)
	}

	// While open, calls are refused without touching the peer, fast.
	seen := pr.calls.Load()
	durations := make([]time.Duration, 0, 20)
	for range 20 {
		start := time.Now()
		err := charge(t.Context(), c)
		durations = append(durations, time.Since(start))
		if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "circuit breaker open on payment" {
			t.Fatalf("open breaker: %v, want Unavailable \"circuit breaker open on payment\"", err)
		}
	}
	// Fast: a rejection costs less than a call that reaches the peer,
	// both measured here.
	slices.Sort(durations)
	if med, peer := durations[len(durations)/2], reached[len(reached)/2]; med >= peer {
		t.Fatalf("median rejection took %v, want less than a call that reaches the peer (median %v)", med, peer)
	}
	if got := pr.calls.Load(); got != seen {
		t.Fatalf("open breaker let %d calls reach the peer", got-seen)
	}
	if s := p.Stats(); s.BreakerRejected != 20 || s.Attempts != 13 {
		t.Fatalf("breaker_rejected %d attempts %d, want 20 and 13", s.BreakerRejected, s.Attempts)
	}

	// The peer recovers; after the open period the breaker half-opens and
	// the probe closes it.
	pr.set(nil)
	testenv.Eventually(t, 5*time.Second, "the breaker half-open", func() bool { return p.Stats().BreakerState == "half-open" })
	ctx, span := tracer.Start(t.Context(), "probe")
	err := charge(ctx, c)
	span.End()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	s := p.Stats()
	if s.BreakerState != "closed" || s.BreakerClosed != 1 {
		t.Fatalf("after probe: state %q closed %d, want closed 1", s.BreakerState, s.BreakerClosed)
	}
	var path []string
	for _, tr := range s.Transitions {
		if tr.AtUnixNano == 0 {
			t.Fatalf("transition %v has no time", tr)
		}
		path = append(path, tr.From+">"+tr.To)
	}
	if want := []string{"closed>open", "open>half-open", "half-open>closed"}; !slices.Equal(path, want) {
		t.Fatalf("transitions %v, want %v", path, want)
	}

	// The opening was recorded on the span of the call that tripped it.
	var opened bool
	for _, sp := range rec.Ended() {
		for _, ev := range sp.Events() {
			if ev.Name == EventBreakerChange && hasAttr(ev.Attributes, AttrTo.String("open")) {
				opened = sp.Name() == "failing-call"
			}
		}
	}
	if !opened {
		t.Fatal("no breaker.state_change to open on the failing call's span")
	}
}

func TestBreakerRejectionIsNotRetried(t *testing.T) {
	cfg := config.Link{Retries: 5, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		Breaker: true, BreakerFailures: 2, BreakerOpenFor: time.Minute, BreakerHalfOpen: 1}
	pr, c, p := setup(t, cfg, serve.Options{})
	pr.set(fail(codes.Unavailable))
	err := charge(t.Context(), c)
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "circuit breaker open on payment" {
		t.Fatalf("charge: %v, want the breaker's rejection after it opened", err)
	}
	s := p.Stats()
	if pr.calls.Load() != 2 || s.Retries != 2 || s.BreakerRejected != 1 {
		t.Fatalf("peer saw %d, retries %d, rejected %d; want 2, 2, 1", pr.calls.Load(), s.Retries, s.BreakerRejected)
	}
	before := s.Retries
	if err := charge(t.Context(), c); status.Code(err) != codes.Unavailable {
		t.Fatalf("charge on open breaker: %v", err)
	}
	if s := p.Stats(); s.Retries != before || s.BreakerRejected != 2 {
		t.Fatalf("rejection was retried: retries %d (was %d), rejected %d", s.Retries, before, s.BreakerRejected)
	}
}

func TestBulkhead(t *testing.T) {
	pr, c, p := setup(t, config.Link{Bulkhead: 2}, serve.Options{})
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	pr.set(func(ctx context.Context, _ int64) error {
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	errs := make(chan error, 5)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { errs <- charge(t.Context(), c) })
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("slow calls never reached the peer")
		}
	}
	for range 3 {
		wg.Go(func() { errs <- charge(t.Context(), c) })
	}
	// The three excess calls are rejected without waiting for the slow ones.
	var rejected int
	for range 3 {
		err := <-errs
		if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != "bulkhead full: 2 in flight on payment" {
			t.Fatalf("excess call: %v, want ResourceExhausted bulkhead full", err)
		}
		rejected++
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("admitted call: %v", err)
		}
	}
	s := p.Stats()
	if rejected != 3 || s.BulkheadRejected != 3 || s.Calls != 5 || s.Attempts != 2 || pr.calls.Load() != 2 {
		t.Fatalf("rejected %d, stats bulkhead_rejected %d calls %d attempts %d, peer %d; want 3 3 5 2 2",
			rejected, s.BulkheadRejected, s.Calls, s.Attempts, pr.calls.Load())
	}
	// Slots are released: a new call gets through.
	pr.set(nil)
	if err := charge(t.Context(), c); err != nil {
		t.Fatalf("call after the slow ones finished: %v", err)
	}
}

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	o := serve.Options{TracerProvider: tp}
	pr, c, p := setup(t, config.Link{Retries: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}, o)
	pr.set(func(_ context.Context, n int64) error {
		if n < 3 {
			return status.Error(codes.Unavailable, "not yet")
		}
		return nil
	})
	ctx, root := tp.Tracer("test").Start(t.Context(), "root")
	if err := charge(ctx, c); err != nil {
		t.Fatalf("charge: %v", err)
	}
	p.RecordFallback(ctx)
	root.End()

	var attempts []int64
	var rootSpan sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch sp.Name() {
		case "payment.attempt":
			if sp.Parent().SpanID() != root.SpanContext().SpanID() {
				t.Fatalf("attempt span's parent is %v, want root", sp.Parent().SpanID())
			}
			for _, a := range sp.Attributes() {
				if a.Key == AttrAttempt {
					attempts = append(attempts, a.Value.AsInt64())
				}
			}
		case "root":
			rootSpan = sp
		}
	}
	slices.Sort(attempts)
	if !slices.Equal(attempts, []int64{1, 2, 3}) {
		t.Fatalf("attempt spans %v, want 1 2 3", attempts)
	}
	var retries []int64
	var fallback bool
	for _, ev := range rootSpan.Events() {
		switch ev.Name {
		case EventRetry:
			if !hasAttr(ev.Attributes, AttrCode.String("Unavailable")) {
				t.Fatalf("retry event without code: %v", ev.Attributes)
			}
			for _, a := range ev.Attributes {
				if a.Key == AttrAttempt {
					retries = append(retries, a.Value.AsInt64())
				}
			}
		case EventFallback:
			fallback = true
		}
	}
	if !slices.Equal(retries, []int64{2, 3}) || !fallback {
		t.Fatalf("root events: retries %v (want 2 3), fallback %v", retries, fallback)
	}
	if p.Stats().Fallbacks != 1 {
		t.Fatalf("fallbacks %d, want 1", p.Stats().Fallbacks)
	}
}

func TestRejectionEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, c, p := setup(t, config.Link{Bulkhead: 1}, serve.Options{TracerProvider: tp})
	p.inFlight.Add(1) // occupy the only slot
	ctx, span := tp.Tracer("test").Start(t.Context(), "caller")
	err := charge(ctx, c)
	span.End()
	p.inFlight.Add(-1)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("charge: %v, want ResourceExhausted", err)
	}
	for _, sp := range rec.Ended() {
		if sp.Name() != "caller" {
			continue
		}
		for _, ev := range sp.Events() {
			if ev.Name == EventBulkheadRejected {
				return
			}
		}
	}
	t.Fatal("no bulkhead.rejected event on the caller's span")
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a.Key == want.Key && a.Value == want.Value {
			return true
		}
	}
	return false
}
