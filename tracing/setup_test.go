package tracing_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/internal/testenv"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/tracing"
)

const getUser = "user.v1.UserService/GetUser"

// TestGRPCSpanTree runs real gRPC calls between an "order" client and a
// "user" server, each with its own provider feeding one Capture, and checks
// the span tree, the resources and the W3C propagation on the wire.
func TestGRPCSpanTree(t *testing.T) {
	capture := tracing.NewCapture(0)
	orderP := setup(t, tracing.Config{Service: "order", Capture: capture})
	userP := setup(t, tracing.Config{Service: "user", Capture: capture})
	impl := &userImpl{}
	addr := startUser(t, serve.Options{TracerProvider: userP.TracerProvider, Propagator: userP.Propagator}, impl)
	client := dialUser(t, addr, serve.Options{TracerProvider: orderP.TracerProvider, Propagator: orderP.Propagator})

	tests := []struct {
		userID     string
		wantErr    bool
		wantOrigin string
	}{
		{userID: "u1"},
		{userID: "bad", wantErr: true, wantOrigin: "user"},
	}
	for _, tc := range tests {
		t.Run(tc.userID, func(t *testing.T) {
			member, err := baggage.NewMember("tenant", "acme")
			if err != nil {
				t.Fatal(err)
			}
			bag, err := baggage.New(member)
			if err != nil {
				t.Fatal(err)
			}
			ctx := baggage.ContextWithBaggage(t.Context(), bag)
			ctx, root := orderP.Tracer("test").Start(ctx, "PlaceOrder", trace.WithSpanKind(trace.SpanKindServer))
			_, callErr := client.GetUser(ctx, &userv1.GetUserRequest{UserId: tc.userID})
			if callErr != nil {
				root.SetStatus(otelcodes.Error, callErr.Error())
			}
			root.End()
			if (callErr != nil) != tc.wantErr {
				t.Fatalf("GetUser(%s) error = %v, want error %v", tc.userID, callErr, tc.wantErr)
			}
			traceID := root.SpanContext().TraceID().String()
			testenv.Eventually(t, 10*time.Second, "three spans of the trace", func() bool { return len(inTrace(capture.Spans(), traceID)) == 3 })
			spans := inTrace(capture.Spans(), traceID)

			client, ok := byName(spans, getUser, tracing.KindClient)
			if !ok {
				t.Fatalf("no client span in %+v", spans)
			}
			server, ok := byName(spans, getUser, tracing.KindServer)
			if !ok {
				t.Fatalf("no server span in %+v", spans)
			}
			if client.Service != "order" || server.Service != "user" {
				t.Errorf("services client=%q server=%q, want order, user", client.Service, server.Service)
			}
			if client.ParentID != root.SpanContext().SpanID().String() {
				t.Errorf("client parent %s, want the root %s", client.ParentID, root.SpanContext().SpanID())
			}
			if server.ParentID != client.SpanID {
				t.Errorf("server parent %s, want the client span %s", server.ParentID, client.SpanID)
			}
			got := impl.last()
			if got.traceID != traceID || got.spanID != server.SpanID {
				t.Errorf("handler saw trace %s span %s, want %s %s", got.traceID, got.spanID, traceID, server.SpanID)
			}
			if want := fmt.Sprintf("00-%s-%s-01", traceID, client.SpanID); got.traceparent != want {
				t.Errorf("traceparent on the wire %q, want %q", got.traceparent, want)
			}
			if got.tenant != "acme" {
				t.Errorf("baggage tenant %q on the server, want acme", got.tenant)
			}
			if client.Error != tc.wantErr || server.Error != tc.wantErr {
				t.Errorf("error status client=%v server=%v, want %v", client.Error, server.Error, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(server.StatusMsg, "boom") {
				t.Errorf("server status message %q, want it to carry boom", server.StatusMsg)
			}

			traces := tracing.Group(spans)
			if len(traces) != 1 || traces[0].Root.Name != "PlaceOrder" {
				t.Fatalf("Group: %+v", traces)
			}
			if got, want := tracing.CriticalPathNames(traces[0]), []string{"order.PlaceOrder", "user.GetUser"}; !slices.Equal(got, want) {
				t.Errorf("CriticalPathNames = %v, want %v", got, want)
			}
			origin, inherited := tracing.ErrorOrigin(traces[0])
			if origin != tc.wantOrigin || inherited != tc.wantErr {
				t.Errorf("ErrorOrigin = %q, %v; want %q, %v", origin, inherited, tc.wantOrigin, tc.wantErr)
			}
			if n := tracing.RetryAmplification(traces[0], "user"); n != 1 {
				t.Errorf("RetryAmplification(user) = %d, want 1", n)
			}
		})
	}
}

func TestSetupOff(t *testing.T) {
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "order"})
	if err != nil {
		t.Fatal(err)
	}
	if p.TracerProvider != nil {
		t.Errorf("TracerProvider = %T, want nil when tracing is off", p.TracerProvider)
	}
	if p.Propagator == nil {
		t.Fatal("Propagator is nil")
	}
	_, span := p.Tracer("x").Start(t.Context(), "noop")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("span of a tracing-off provider records (%v) or is valid (%v)", span.IsRecording(), span.SpanContext().IsValid())
	}
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	// serve accepts the nil provider: a real call without handlers works.
	addr := startUser(t, serve.Options{TracerProvider: p.TracerProvider}, &userImpl{})
	client := dialUser(t, addr, serve.Options{TracerProvider: p.TracerProvider})
	if _, err := client.GetUser(t.Context(), &userv1.GetUserRequest{UserId: "u1"}); err != nil {
		t.Errorf("GetUser without tracing: %v", err)
	}
}

func TestPropagatorW3C(t *testing.T) {
	capture := tracing.NewCapture(0)
	p := setup(t, tracing.Config{Service: "order", Capture: capture})
	member, _ := baggage.NewMember("k", "v")
	bag, _ := baggage.New(member)
	ctx, span := p.Tracer("t").Start(baggage.ContextWithBaggage(t.Context(), bag), "s")
	defer span.End()
	carrier := propagation.MapCarrier{}
	p.Propagator.Inject(ctx, carrier)
	want := fmt.Sprintf("00-%s-%s-01", span.SpanContext().TraceID(), span.SpanContext().SpanID())
	if carrier["traceparent"] != want {
		t.Errorf("traceparent %q, want %q", carrier["traceparent"], want)
	}
	if carrier["baggage"] != "k=v" {
		t.Errorf("baggage %q, want k=v", carrier["baggage"])
	}
	got := trace.SpanContextFromContext(p.Propagator.Extract(context.Background(), carrier))
	if got.TraceID() != span.SpanContext().TraceID() || !got.IsRemote() {
		t.Errorf("extracted %v, want remote span of trace %s", got, span.SpanContext().TraceID())
	}
}

func TestServiceName(t *testing.T) {
	tests := []struct {
		name, service, env, want string
	}{
		{name: "config wins", service: "order", env: "from-env", want: "order"},
		{name: "env when config empty", service: "", env: "from-env", want: "from-env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tc.env)
			capture := tracing.NewCapture(0)
			p := setup(t, tracing.Config{Service: tc.service, Capture: capture})
			_, span := p.Tracer("t").Start(t.Context(), "s")
			span.End()
			spans := capture.Spans()
			if len(spans) != 1 || spans[0].Service != tc.want {
				t.Fatalf("spans %+v, want one of service %q", spans, tc.want)
			}
		})
	}
}

func TestSampling(t *testing.T) {
	capture := tracing.NewCapture(0)
	p := setup(t, tracing.Config{Service: "order", Capture: capture, SampleRatio: 1e-12})
	tr := p.Tracer("t")
	for range 200 {
		_, span := tr.Start(t.Context(), "root")
		span.End()
	}
	if n := capture.Len(); n != 0 {
		t.Errorf("captured %d of 200 roots at ratio 1e-12, want 0", n)
	}
	// A sampled remote parent decides for its children (ParentBased).
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	_, span := tr.Start(trace.ContextWithRemoteSpanContext(t.Context(), parent), "child")
	span.End()
	spans := capture.Spans()
	if len(spans) != 1 || spans[0].ParentID != parent.SpanID().String() || spans[0].TraceID != parent.TraceID().String() {
		t.Errorf("spans %+v, want the child of the sampled remote parent", spans)
	}

	for _, bad := range []float64{-0.1, 1.5} {
		if _, _, err := tracing.Setup(t.Context(), tracing.Config{Service: "order", Capture: capture, SampleRatio: bad}); err == nil || !strings.Contains(err.Error(), fmt.Sprint(bad)) {
			t.Errorf("Setup with ratio %v: error %v, want one naming the value", bad, err)
		}
	}
}

func TestShutdownOnce(t *testing.T) {
	capture := tracing.NewCapture(0)
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "order", Capture: capture})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := shutdown(t.Context()); err != nil {
			t.Errorf("shutdown #%d: %v", i+1, err)
		}
	}
	_, span := p.Tracer("t").Start(t.Context(), "after")
	span.End()
	if n := capture.Len(); n != 0 {
		t.Errorf("captured %d spans after shutdown, want 0", n)
	}
}

// TestCaptureModel checks the conversion of every field of the model.
func TestCaptureModel(t *testing.T) {
	capture := tracing.NewCapture(0)
	p := setup(t, tracing.Config{Service: "ledger", Capture: capture})
	tr := p.Tracer("t")
	_, producer := tr.Start(t.Context(), "orders.created publish", trace.WithSpanKind(trace.SpanKindProducer))
	producer.End()
	_, span := tr.Start(t.Context(), "orders.created process",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: producer.SpanContext()}),
		trace.WithAttributes(
			attribute.Int("messaging.nats.delivery_count", 2),
			attribute.String("order.id", "o-1"),
			attribute.Bool("b", true),
			attribute.Float64("f", 0.25),
			attribute.StringSlice("ss", []string{"a", "b"}),
		))
	span.AddEvent("retry", trace.WithAttributes(attribute.Int("fallacies.attempt", 2)))
	span.SetStatus(otelcodes.Error, "nak")
	span.End()

	spans := capture.Spans()
	if len(spans) != 2 {
		t.Fatalf("captured %d spans, want 2", len(spans))
	}
	s := spans[1]
	want := map[string]string{"messaging.nats.delivery_count": "2", "order.id": "o-1", "b": "true", "f": "0.25", "ss": `["a","b"]`}
	if fmt.Sprint(s.Attrs) != fmt.Sprint(want) {
		t.Errorf("attrs %v, want %v", s.Attrs, want)
	}
	if s.Kind != tracing.KindConsumer || s.Service != "ledger" || !s.Error || s.StatusMsg != "nak" || s.ParentID != "" {
		t.Errorf("span %+v: want a failed parentless consumer span of ledger with message nak", s)
	}
	if len(s.Events) != 1 || s.Events[0].Name != "retry" || s.Events[0].Attrs["fallacies.attempt"] != "2" || s.Events[0].Time.Before(s.Start) {
		t.Errorf("events %+v, want one retry event with attempt 2", s.Events)
	}
	if !tracing.Linked(s, spans[0]) || tracing.Linked(spans[0], s) {
		t.Errorf("Linked: consumer→producer %v, producer→consumer %v; want true, false", tracing.Linked(s, spans[0]), tracing.Linked(spans[0], s))
	}
	if len(s.TraceID) != 32 || len(s.SpanID) != 16 || s.TraceID == spans[0].TraceID {
		t.Errorf("ids %s/%s: want hex of a new trace", s.TraceID, s.SpanID)
	}
	if spans[0].Kind != tracing.KindProducer || s.End.Before(s.Start) {
		t.Errorf("producer kind %q, span times %v..%v", spans[0].Kind, s.Start, s.End)
	}
}

func TestCaptureLimit(t *testing.T) {
	capture := tracing.NewCapture(500)
	p := setup(t, tracing.Config{Service: "order", Capture: capture})
	tr := p.Tracer("t")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				_, span := tr.Start(context.Background(), "s")
				span.End()
			}
		}()
	}
	for range 8 {
		<-done
	}
	if capture.Len() != 500 || len(capture.Spans()) != 500 || capture.Dropped() != 300 {
		t.Errorf("held %d (%d), dropped %d; want 500 and 300", capture.Len(), len(capture.Spans()), capture.Dropped())
	}
	capture.Reset()
	if capture.Len() != 0 || capture.Dropped() != 0 {
		t.Errorf("after Reset: held %d, dropped %d", capture.Len(), capture.Dropped())
	}
	capture.Add(make([]tracing.Span, 3)...)
	if capture.Len() != 3 {
		t.Errorf("Add after Reset: held %d, want 3", capture.Len())
	}
}

// TestCaptureChunks crosses the capture's internal chunk boundaries with
// large batches, as the Receiver adds them, and checks order and limit.
func TestCaptureChunks(t *testing.T) {
	capture := tracing.NewCapture(3000)
	batch := func(from, n int) []tracing.Span {
		out := make([]tracing.Span, n)
		for i := range out {
			out[i].SpanID = fmt.Sprint(from + i)
		}
		return out
	}
	capture.Add(batch(0, 2500)...)
	capture.Add(batch(2500, 1000)...)
	spans := capture.Spans()
	if len(spans) != 3000 || capture.Dropped() != 500 {
		t.Fatalf("held %d, dropped %d; want 3000, 500", len(spans), capture.Dropped())
	}
	for i, s := range spans {
		if s.SpanID != fmt.Sprint(i) {
			t.Fatalf("span %d is %s: order lost", i, s.SpanID)
		}
	}
}

func TestParseOTLPEndpoint(t *testing.T) {
	tests := []struct {
		in            string
		wantHostPort  string
		wantPlaintext bool
		wantErr       bool
	}{
		{in: "127.0.0.1:4317", wantHostPort: "127.0.0.1:4317", wantPlaintext: true},
		{in: "http://127.0.0.1:4317", wantHostPort: "127.0.0.1:4317", wantPlaintext: true},
		{in: " http://localhost:4317/ ", wantHostPort: "localhost:4317", wantPlaintext: true},
		{in: "http://jaeger", wantHostPort: "jaeger:4317", wantPlaintext: true},
		{in: "https://collector.example:443/v1/traces", wantHostPort: "collector.example:443", wantPlaintext: false},
		{in: "[::1]:4317", wantHostPort: "[::1]:4317", wantPlaintext: true},
		{in: "", wantErr: true},
		{in: "jaeger", wantErr: true},
		{in: "grpc://127.0.0.1:4317", wantErr: true},
		{in: "http://:4317", wantErr: true},
	}
	for _, tc := range tests {
		hp, plain, err := tracing.ParseOTLPEndpoint(tc.in)
		if (err != nil) != tc.wantErr || hp != tc.wantHostPort || plain != tc.wantPlaintext {
			t.Errorf("ParseOTLPEndpoint(%q) = %q, %v, %v; want %q, %v, error %v", tc.in, hp, plain, err, tc.wantHostPort, tc.wantPlaintext, tc.wantErr)
		}
	}
}

func TestOTLPEndpointFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if got := tracing.OTLPEndpointFromEnv(); got != "http://a:4317" {
		t.Errorf("OTLPEndpointFromEnv = %q, want http://a:4317", got)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317")
	if got := tracing.OTLPEndpointFromEnv(); got != "http://b:4317" {
		t.Errorf("OTLPEndpointFromEnv = %q, want the traces-specific http://b:4317", got)
	}
}

// TestShutdownCutsAnExportToAGoneCollector: spans bound for a collector
// that is gone keep an export retrying for up to 30 s; the shutdown stops
// at its own deadline and leaves no exporter goroutine behind.
func TestShutdownCutsAnExportToAGoneCollector(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there any more
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "gone", OTLPEndpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(t.Context(), "op")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := shutdown(ctx); err == nil {
		t.Error("shutdown with a collector gone: no error, want its deadline")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("shutdown took %v past its 300 ms deadline", took)
	}
}

// TestShutdownWithAnExpiredContextStillStops: a shutdown handed a
// context already done (the budget of a caller that shut other providers
// first) still stops the batch processor, which the SDK alone leaves
// running, and its exporter.
func TestShutdownWithAnExpiredContextStillStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "late", OTLPEndpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(t.Context(), "op")
	span.End()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := shutdown(ctx); err == nil {
		t.Error("shutdown with an expired context: no error, want the context's")
	}
}

// TestCaptureTake checks that Take hands over each span once, in order,
// while spans keep arriving, and leaves room for more.
func TestCaptureTake(t *testing.T) {
	capture := tracing.NewCapture(100)
	p := setup(t, tracing.Config{Service: "order", Capture: capture})
	tr := p.Tracer("t")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			_, span := tr.Start(context.Background(), fmt.Sprint(i))
			span.End()
		}
	}()
	var seen []string
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		for _, s := range capture.Take() {
			seen = append(seen, s.Name)
		}
	}
	for _, s := range capture.Take() {
		seen = append(seen, s.Name)
	}
	if capture.Len() != 0 {
		t.Errorf("held %d after Take, want 0", capture.Len())
	}
	if int64(len(seen))+capture.Dropped() != 1000 {
		t.Fatalf("taken %d + dropped %d, want 1000 spans in all", len(seen), capture.Dropped())
	}
	if !slices.IsSortedFunc(seen, func(a, b string) int { var x, y int; fmt.Sscan(a, &x); fmt.Sscan(b, &y); return x - y }) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
		t.Errorf("spans taken out of order or twice")
	}
}

// TestCaptureFrom checks that a reader following the capture with From
// sees each span once, in order, across chunks, while the capture keeps
// them all; and that after a Reset it reads from the start again.
func TestCaptureFrom(t *testing.T) {
	capture := tracing.NewCapture(5000)
	add := func(from, n int) {
		out := make([]tracing.Span, n)
		for i := range out {
			out[i].SpanID = fmt.Sprint(from + i)
		}
		capture.Add(out...)
	}
	var seen []tracing.Span
	pos := 0
	for i, n := range []int{0, 3, 1021, 1, 2000, 1500} { // across chunk boundaries of 1024
		add(len(seen), n)
		got, next := capture.From(pos)
		if len(got) != n || next != pos+n {
			t.Fatalf("step %d: From(%d) gave %d spans and %d, want %d and %d", i, pos, len(got), next, n, pos+n)
		}
		seen, pos = append(seen, got...), next
	}
	for i, s := range seen {
		if s.SpanID != fmt.Sprint(i) {
			t.Fatalf("span %d is %s: order lost or a span read twice", i, s.SpanID)
		}
	}
	if capture.Len() != len(seen) {
		t.Errorf("held %d after reading them all with From, want %d: From takes nothing", capture.Len(), len(seen))
	}
	capture.Reset()
	add(0, 2)
	if got, next := capture.From(pos); len(got) != 2 || next != 2 || got[0].SpanID != "0" {
		t.Errorf("after a Reset, From(%d) gave %d spans and %d, want the 2 new ones and 2", pos, len(got), next)
	}
}
