package tracing_test

import (
	"context"
	"net"
	"reflect"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fallacies/fallacies/tracing"
)

// startReceiver serves a Receiver on 127.0.0.1 and returns it with its
// address; the cleanup shuts it down and checks that Serve returned nil.
func startReceiver(t testing.TB, capture *tracing.Capture, forward string) (*tracing.Receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := tracing.NewReceiver(capture, forward)
	done := make(chan error, 1)
	go func() { done <- r.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("receiver shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("receiver serve: %v", err)
		}
	})
	return r, lis.Addr().String()
}

// emit makes a small trace of every kind, with attributes, events, a link
// and an error.
func emit(ctx context.Context, tr trace.Tracer) {
	ctx, root := tr.Start(ctx, "order.v1.OrderService/PlaceOrder", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("order.id", "o-1")))
	_, attempt := tr.Start(ctx, "payment.attempt", trace.WithAttributes(attribute.Int("fallacies.attempt", 1)))
	attempt.AddEvent("retry", trace.WithAttributes(attribute.Float64("backoff_ms", 1.5), attribute.Bool("jitter", true)))
	attempt.SetStatus(otelcodes.Error, "unavailable")
	attempt.End()
	_, client := tr.Start(ctx, "payment.v1.PaymentService/Charge", trace.WithSpanKind(trace.SpanKindClient))
	client.End()
	_, producer := tr.Start(ctx, "orders.created publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.StringSlice("tags", []string{"x", "y"}), attribute.Int64Slice("ns", []int64{1, 2})))
	producer.End()
	root.End()
	_, consumer := tr.Start(context.Background(), "orders.created process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: producer.SpanContext()}),
		trace.WithAttributes(attribute.Int("messaging.nats.delivery_count", 1)))
	consumer.End()
}

// normalized makes spans from the two paths comparable: wall-clock
// nanoseconds only, sorted by span ID.
func normalized(spans []tracing.Span) []tracing.Span {
	out := make([]tracing.Span, len(spans))
	fix := func(t time.Time) time.Time { return time.Unix(0, t.UnixNano()) }
	for i, s := range spans {
		s.Start, s.End = fix(s.Start), fix(s.End)
		if s.Events != nil {
			evs := make([]tracing.Event, len(s.Events))
			for j, e := range s.Events {
				e.Time = fix(e.Time)
				evs[j] = e
			}
			s.Events = evs
		}
		out[i] = s
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SpanID < out[j].SpanID })
	return out
}

// TestReceiverForward exports over real OTLP/gRPC to a Receiver that
// forwards to a second one; both must hold exactly what the in-process
// Capture of the same provider holds.
func TestReceiverForward(t *testing.T) {
	last := tracing.NewCapture(0)
	lastR, lastAddr := startReceiver(t, last, "")
	first := tracing.NewCapture(0)
	firstR, firstAddr := startReceiver(t, first, lastAddr)

	local := tracing.NewCapture(0)
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "order", Capture: local, OTLPEndpoint: firstAddr})
	if err != nil {
		t.Fatal(err)
	}
	emit(t.Context(), p.Tracer("test"))
	// Shutdown flushes: the export, and the forward inside it, are done
	// when it returns.
	if err := shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	want := normalized(local.Spans())
	if len(want) != 5 {
		t.Fatalf("local capture has %d spans, want 5", len(want))
	}
	for name, c := range map[string]*tracing.Capture{"receiver": first, "forwarded": last} {
		got := normalized(c.Spans())
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s spans differ from the in-process capture:\n got %+v\nwant %+v", name, got, want)
		}
	}
	if firstR.Received() != 5 || lastR.Received() != 5 || firstR.ForwardFailures() != 0 {
		t.Errorf("received %d and %d, forward failures %d; want 5, 5, 0", firstR.Received(), lastR.Received(), firstR.ForwardFailures())
	}
}

// TestReceiverServices sends two services' spans through the standard
// environment variables and checks that each span keeps its service.
func TestReceiverServices(t *testing.T) {
	capture := tracing.NewCapture(0)
	_, addr := startReceiver(t, capture, "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")

	var shutdowns []func(context.Context) error
	for _, svc := range []string{"user", "payment"} {
		p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: svc, OTLP: true})
		if err != nil {
			t.Fatal(err)
		}
		shutdowns = append(shutdowns, shutdown)
		_, span := p.Tracer("t").Start(t.Context(), svc+"-span", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
	}
	for _, shutdown := range shutdowns {
		if err := shutdown(t.Context()); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	got := map[string]string{}
	for _, s := range capture.Spans() {
		got[s.Name] = s.Service
	}
	want := map[string]string{"user-span": "user", "payment-span": "payment"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("span→service %v, want %v", got, want)
	}
}

// TestReceiverForwardFailure: a dead forward target costs nothing but a
// counted failure; the spans are still captured once.
func TestReceiverForwardFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()

	capture := tracing.NewCapture(0)
	r, addr := startReceiver(t, capture, dead)
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "order", OTLPEndpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	emit(t.Context(), p.Tracer("t"))
	if err := shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if capture.Len() != 5 || r.ForwardFailures() < 1 {
		t.Errorf("captured %d spans, %d forward failures; want 5 and at least 1", capture.Len(), r.ForwardFailures())
	}
}
