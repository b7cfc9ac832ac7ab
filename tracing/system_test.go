package tracing_test

// System tests: the real topology, every service tracing into one Capture
// (or, for the processes topology, exporting OTLP to a Receiver), checked
// span by span.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// Span names of the system, as the services and their gRPC tracing set them.
const (
	chargeSpan    = "payment.v1.PaymentService/Charge"
	publishSpan   = "orders.created publish"
	processSpan   = "orders.created process"
	attrOrderID   = "fallacies.order_id"
	attrMessageID = "messaging.message.id"
	attrDelivery  = "messaging.nats.delivery_count"
)

// providers hands each service of a topology its own tracer provider, all
// feeding one Capture, as the runner does.
type providers struct {
	t       testing.TB
	capture *tracing.Capture
	mu      sync.Mutex
	opts    map[string]serve.Options
}

func (p *providers) serveOptions(service string) serve.Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	if so, ok := p.opts[service]; ok {
		return so
	}
	pr := setup(p.t, tracing.Config{Service: service, Capture: p.capture})
	so := serve.Options{TracerProvider: pr.TracerProvider, Propagator: pr.Propagator}
	p.opts[service] = so
	return so
}

// tracedSystem is a running embedded topology whose services trace into
// capture, with a client of order and an injector on its Toxiproxy.
type tracedSystem struct {
	ep      topology.Endpoints
	capture *tracing.Capture
	order   orderv1.OrderServiceClient
	inj     *toxiproxy.Injector
}

// startTraced starts the embedded topology with tracing into a fresh
// Capture; everything stops at the end of the test (the topology first,
// then the tracer providers).
func startTraced(t *testing.T, sys config.System) *tracedSystem {
	t.Helper()
	capture := tracing.NewCapture(0)
	// Cleanups run last-registered first: the providers (registered by
	// setup, on first use, during the start) shut down after the topology.
	p := &providers{t: t, capture: capture, opts: map[string]serve.Options{}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	top, err := topology.StartEmbedded(ctx, topology.Options{System: sys, Tracing: p.serveOptions})
	if err != nil {
		t.Fatalf("start embedded topology: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := top.Stop(ctx); err != nil {
			t.Errorf("stop embedded topology: %v", err)
		}
	})
	ep := top.Endpoints()
	return &tracedSystem{ep: ep, capture: capture, order: dialOrder(t, ep.Services["order"]), inj: toxiproxy.NewInjector(ep.ToxiproxyAPI, nil)}
}

// dialOrder returns an untraced client of order at addr, so that order's
// PlaceOrder server span is the root of each order's trace.
func dialOrder(t *testing.T, addr string) orderv1.OrderServiceClient {
	t.Helper()
	conn, err := serve.Dial(addr, serve.Options{})
	if err != nil {
		t.Fatalf("dial order %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return orderv1.NewOrderServiceClient(conn)
}

// place places one order for a seeded user.
func place(ctx context.Context, c orderv1.OrderServiceClient, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		OrderId: id, UserId: user.UserID(1), AmountCents: 1999, CardNumber: "4111 1111 1111 1111",
	})
	return err
}

// partition disables a proxy until the returned function (also a cleanup)
// enables it again.
func (s *tracedSystem) partition(t *testing.T, proxy string) (heal func()) {
	t.Helper()
	a, err := s.inj.Apply(t.Context(), faults.Fault{Name: "cut-" + proxy, Kind: faults.Partition, Target: proxy})
	if err != nil {
		t.Fatalf("partition %s: %v", proxy, err)
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			if err := s.inj.Remove(context.Background(), a); err != nil {
				t.Errorf("heal %s: %v", proxy, err)
			}
		})
	}
	t.Cleanup(heal)
	return heal
}

// findOrder returns the trace of the order placed as id: every span
// sharing the trace ID of the PlaceOrder server span tagged with id.
func findOrder(spans []tracing.Span, id string) (tracing.Trace, bool) {
	for _, s := range spans {
		if s.Name == tracing.PlaceOrderSpan && s.Kind == tracing.KindServer && s.Attrs[attrOrderID] == id {
			traces := tracing.Group(inTrace(spans, s.TraceID))
			return traces[0], true
		}
	}
	return tracing.Trace{}, false
}

// consumersOf returns the consumer spans of service processing order id.
func consumersOf(spans []tracing.Span, service, id string) []tracing.Span {
	var out []tracing.Span
	for _, s := range spans {
		if s.Kind == tracing.KindConsumer && s.Service == service && s.Attrs[attrMessageID] == id {
			out = append(out, s)
		}
	}
	return out
}

// only returns the one span of t with the given name, kind and service.
func only(t *testing.T, tr tracing.Trace, name, kind, service string) tracing.Span {
	t.Helper()
	var found []tracing.Span
	for _, s := range tr.Spans {
		if s.Name == name && s.Kind == kind && s.Service == service {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans %q of %s in the trace, want 1; trace:\n%s", len(found), kind, name, service, dump(tr.Spans))
	}
	return found[0]
}

func dump(spans []tracing.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s parent=%s %s %s %q err=%v links=%v\n", s.SpanID, s.ParentID, s.Service, s.Kind, s.Name, s.Error, s.Links)
	}
	return b.String()
}

// TestOrderSpanTree places one order on the real embedded topology and
// checks the exact span tree: PlaceOrder is the root and parents the two
// client calls, each client span parents its peer's server span, the
// producer span is order's child, and each consumer starts a new trace
// linked to the producer span.
func TestOrderSpanTree(t *testing.T) {
	s := startTraced(t, config.Default())
	const id = "span-tree-1"
	if err := place(t.Context(), s.order, id); err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the order's server span and the notification and ledger consumer spans", func() bool {
		spans := s.capture.Spans()
		_, ok := findOrder(spans, id) // it may end a little after the client got its answer
		return ok && len(consumersOf(spans, "notification", id)) > 0 && len(consumersOf(spans, "ledger", id)) > 0
	})
	spans := s.capture.Spans()
	tr, ok := findOrder(spans, id)
	if !ok {
		t.Fatalf("no PlaceOrder span for %s among %d spans", id, len(spans))
	}

	root := tr.Root
	if root.Name != tracing.PlaceOrderSpan || root.Kind != tracing.KindServer || root.Service != "order" || root.ParentID != "" || root.Error {
		t.Fatalf("root = %+v, want order's PlaceOrder server span without parent or error", root)
	}
	userClient := only(t, tr, getUser, tracing.KindClient, "order")
	userServer := only(t, tr, getUser, tracing.KindServer, "user")
	payClient := only(t, tr, chargeSpan, tracing.KindClient, "order")
	payServer := only(t, tr, chargeSpan, tracing.KindServer, "payment")
	producer := only(t, tr, publishSpan, tracing.KindProducer, "order")
	if len(tr.Spans) != 6 {
		t.Errorf("the order's trace has %d spans, want exactly 6:\n%s", len(tr.Spans), dump(tr.Spans))
	}
	parents := []struct {
		child, parent tracing.Span
	}{
		{userClient, root}, {userServer, userClient},
		{payClient, root}, {payServer, payClient},
		{producer, root},
	}
	for _, p := range parents {
		if p.child.ParentID != p.parent.SpanID {
			t.Errorf("%s %s of %s: parent %s, want %s %s (%s)", p.child.Kind, p.child.Name, p.child.Service,
				p.child.ParentID, p.parent.Kind, p.parent.Name, p.parent.SpanID)
		}
	}
	for _, sp := range tr.Spans {
		if sp.Error {
			t.Errorf("span %s %s of %s has error status %q", sp.Kind, sp.Name, sp.Service, sp.StatusMsg)
		}
	}
	if got := producer.Attrs[attrMessageID]; got != id {
		t.Errorf("producer messaging.message.id = %q, want %q", got, id)
	}

	for _, svc := range []string{"notification", "ledger"} {
		cs := consumersOf(s.capture.Spans(), svc, id)
		if len(cs) != 1 {
			t.Fatalf("%d %s consumer spans for %s, want 1:\n%s", len(cs), svc, id, dump(cs))
		}
		c := cs[0]
		if c.Name != processSpan || c.ParentID != "" || c.TraceID == tr.ID {
			t.Errorf("%s consumer span %q parent %q trace %s: want %q, a new root in its own trace (order's is %s)",
				svc, c.Name, c.ParentID, c.TraceID, processSpan, tr.ID)
		}
		if len(c.Links) != 1 || c.Links[0].SpanID != producer.SpanID || c.Links[0].TraceID != tr.ID {
			t.Errorf("%s consumer links %v, want exactly one to the producer span %s of trace %s", svc, c.Links, producer.SpanID, tr.ID)
		}
		if got := c.Attrs[attrDelivery]; got != "1" {
			t.Errorf("%s consumer %s = %q, want 1", svc, attrDelivery, got)
		}
		if !tracing.Linked(c, producer) {
			t.Errorf("tracing.Linked(%s consumer, producer) = false", svc)
		}
	}
	if !tracing.AsyncIsolated(tr, tracing.ConsumerSpans(s.capture.Spans())) {
		t.Error("AsyncIsolated = false for a healthy order")
	}
	want := []string{"order.PlaceOrder", "user.GetUser", "payment.Charge", "order." + publishSpan}
	if got := tracing.CriticalPathNames(tr); !slices.Equal(got, want) {
		t.Errorf("CriticalPathNames = %v, want %v", got, want)
	}
}

// TestPaymentPartitionErrorOrigin cuts order→payment: the order fails,
// payment's server never sees the call (no server span), and the error is
// attributed to payment, the callee that could not be reached, and
// inherited by order's root.
func TestPaymentPartitionErrorOrigin(t *testing.T) {
	s := startTraced(t, config.Default())
	if err := place(t.Context(), s.order, "warm-1"); err != nil {
		t.Fatalf("PlaceOrder before the fault: %v", err)
	}
	s.partition(t, faults.ProxyPayment)
	const id = "cut-payment-1"
	err := place(t.Context(), s.order, id)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("PlaceOrder with payment partitioned: %v, want Unavailable", err)
	}
	var tr tracing.Trace
	testenv.Eventually(t, 10*time.Second, "the failed order's client span of Charge", func() bool {
		var ok bool
		tr, ok = findOrder(s.capture.Spans(), id)
		return ok && len(tr.Spans) >= 4
	})
	if !tr.Root.Error {
		t.Errorf("root has no error status:\n%s", dump(tr.Spans))
	}
	client := only(t, tr, chargeSpan, tracing.KindClient, "order")
	if !client.Error {
		t.Errorf("order's client span of Charge has no error status")
	}
	for _, sp := range tr.Spans {
		if sp.Service == "payment" {
			t.Errorf("payment has a span in the trace although the link was cut: %s %q", sp.Kind, sp.Name)
		}
	}
	origin, inherited := tracing.ErrorOrigin(tr)
	if origin != "payment" || !inherited {
		t.Errorf("ErrorOrigin = %q, %v; want payment, true (inherited by the root)\n%s", origin, inherited, dump(tr.Spans))
	}
	sum := tracing.Metrics([]tracing.Trace{tr}, nil)
	if sum.ErrorOrigin != "payment" || sum.ErrorInherited != 1 || sum.Failed != 1 {
		t.Errorf("Metrics: origin %q inherited %v failed %d; want payment, 1, 1", sum.ErrorOrigin, sum.ErrorInherited, sum.Failed)
	}
}

// TestLedgerPartitionAsyncIsolated cuts ledger→NATS while orders are
// placed: every order succeeds with an error-free trace and stays isolated
// from the consumers; once the link heals, ledger's consumer spans arrive,
// each linked to its order's producer span.
func TestLedgerPartitionAsyncIsolated(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the ledger to reconnect and catch up")
	}
	s := startTraced(t, config.Default())
	heal := s.partition(t, faults.ProxyNATSLedger)
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = fmt.Sprintf("cut-ledger-%02d", i)
		if err := place(t.Context(), s.order, ids[i]); err != nil {
			t.Fatalf("PlaceOrder %s with ledger partitioned: %v", ids[i], err)
		}
	}
	// Notification is not cut: once it has processed every order, the
	// ledger has had every chance to process them too. The order's own
	// server span may end a little after its client got the answer (and
	// after notification saw the event): wait for it too.
	testenv.Eventually(t, 15*time.Second, "every order's trace and notification's consumer spans", func() bool {
		spans := s.capture.Spans()
		for _, id := range ids {
			if _, ok := findOrder(spans, id); !ok || len(consumersOf(spans, "notification", id)) == 0 {
				return false
			}
		}
		return true
	})
	spans := s.capture.Spans()
	producers := map[string]tracing.Span{} // order id → producer span
	var orders []tracing.Trace
	for _, id := range ids {
		tr, ok := findOrder(spans, id)
		if !ok {
			t.Fatalf("no trace for order %s", id)
		}
		orders = append(orders, tr)
		for _, sp := range tr.Spans {
			if sp.Error {
				t.Errorf("order %s: span %s %q of %s has error status %q", id, sp.Kind, sp.Name, sp.Service, sp.StatusMsg)
			}
		}
		producers[id] = only(t, tr, publishSpan, tracing.KindProducer, "order")
		if !tracing.AsyncIsolated(tr, tracing.ConsumerSpans(spans)) {
			t.Errorf("order %s: AsyncIsolated = false", id)
		}
		if n := len(consumersOf(spans, "ledger", id)); n != 0 {
			t.Errorf("order %s: %d ledger consumer spans while ledger was partitioned", id, n)
		}
	}
	if sum := tracing.Metrics(orders, tracing.ConsumerSpans(spans)); sum.Count != 10 || sum.Failed != 0 || !sum.AsyncIsolated {
		t.Errorf("Metrics: count %d failed %d isolated %v; want 10, 0, true", sum.Count, sum.Failed, sum.AsyncIsolated)
	}

	heal()
	testenv.Eventually(t, 30*time.Second, "ledger's consumer spans after the heal", func() bool {
		spans := s.capture.Spans()
		for _, id := range ids {
			if len(consumersOf(spans, "ledger", id)) == 0 {
				return false
			}
		}
		return true
	})
	spans = s.capture.Spans()
	for _, id := range ids {
		for _, c := range consumersOf(spans, "ledger", id) {
			if !tracing.Linked(c, producers[id]) {
				t.Errorf("ledger consumer span of %s links %v, want the producer span %s", id, c.Links, producers[id].SpanID)
			}
			if c.ParentID != "" || c.TraceID == producers[id].TraceID {
				t.Errorf("ledger consumer span of %s is not a root of its own trace", id)
			}
		}
	}
}

// TestLatencyExperimentWaterfalls runs a short latency experiment through
// the runner and reads the exemplar waterfalls of report.json: the naive
// variant's slowest order waited for user's answer, slowed on the wire;
// the resilient variant's deadline cut the call to user short.
func TestLatencyExperimentWaterfalls(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 9-second variants")
	}
	exp, err := definition.Parse("waterfalls.yaml", []byte(`
name: waterfalls
fallacy: latency-is-zero
description: 200 ms on order→user
load: { rate: 30/s, duration: 9s }
variants:
  naive: { order.user.timeout: off }
  resilient: { order.user.timeout: 80ms, order.user.fallback: cached-profile }
faults:
  - { name: slow-user, at: 3s, target: user, kind: latency, latency: 200ms, direction: downstream }
hypotheses:
  - { when: during, check: "trace.async_isolated" }
`))
	// The fault lasts to the end of the run: it is removed only after the
	// last request finished, so no request of the during phase straddles
	// its removal (a response released early by the removal would beat a
	// deadline timer that a loaded machine fires late).
	if err != nil {
		t.Fatalf("parse experiment: %v", err)
	}
	res, err := runner.Run(t.Context(), exp, runner.Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	variant := func(name string) report.Variant {
		for _, v := range rep.Variants {
			if v.Name == name {
				return v
			}
		}
		t.Fatalf("no variant %s in report.json", name)
		return report.Variant{}
	}
	slowestDuring := func(v report.Variant) report.Exemplar {
		for _, ex := range v.Exemplars {
			if ex.Phase == report.PhaseDuring && ex.Kind == report.ExemplarSlowest {
				return ex
			}
		}
		t.Fatalf("variant %s has no slowest during exemplar: %+v", v.Name, v.Exemplars)
		return report.Exemplar{}
	}
	span := func(ex report.Exemplar, name, service string) report.WaterfallSpan {
		for _, s := range ex.Spans {
			if s.Name == name && s.Service == service {
				return s
			}
		}
		t.Fatalf("exemplar %s has no span %s of %s: %+v", ex.TraceID, name, service, ex.Spans)
		return report.WaterfallSpan{}
	}

	// The latency is on the response path (downstream, in the proxy), so
	// user itself answered at once: its server span is short, and order's
	// client span waited the 200 ms. The gap between the two is the network.
	naive := slowestDuring(variant("naive"))
	client, server := span(naive, "user.GetUser", "order"), span(naive, "user.GetUser", "user")
	if client.DurationMs < 190 {
		t.Errorf("naive: order's GetUser client span took %.1f ms, want >= 190 (200 ms latency downstream)", client.DurationMs)
	}
	if server.DurationMs > client.DurationMs-150 {
		t.Errorf("naive: user's GetUser server span took %.1f ms of the client's %.1f ms, want the 200 ms outside it, on the wire",
			server.DurationMs, client.DurationMs)
	}
	if server.Depth != client.Depth+1 {
		t.Errorf("naive waterfall: server span at depth %d, client at %d; want the server right under the client", server.Depth, client.Depth)
	}
	if naive.DurationMs < 190 {
		t.Errorf("naive: the slowest during order took %.1f ms, want >= 190", naive.DurationMs)
	}

	// The deadline (80 ms) cut the call short: the client span failed
	// with DeadlineExceeded before the 200 ms answer. The bounds leave room
	// for a loaded machine under -race (up to 148 ms seen for both) and
	// stay below the 200 ms that the naive variant cannot beat.
	resilient := slowestDuring(variant("resilient"))
	rc := span(resilient, "user.GetUser", "order")
	if !rc.Error || !strings.Contains(strings.ToLower(rc.Note), "deadline") {
		t.Errorf("resilient: order's GetUser client span error %v, note %q; want it failed by the deadline", rc.Error, rc.Note)
	}
	if rc.DurationMs >= 190 {
		t.Errorf("resilient: order's GetUser client span took %.1f ms, want it cut short by the 80 ms deadline (< 190)", rc.DurationMs)
	}
	t.Logf("naive: root %.1f ms, GetUser client %.1f ms, server %.1f ms; resilient: root %.1f ms, GetUser client %.1f ms (%s)",
		naive.DurationMs, client.DurationMs, server.DurationMs, resilient.DurationMs, rc.DurationMs, rc.Note)
	for _, v := range rep.Variants {
		if v.Metrics["during.trace.async_isolated"] != 1 {
			t.Errorf("variant %s: during.trace.async_isolated = %v, want 1", v.Name, v.Metrics["during.trace.async_isolated"])
		}
	}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// fallaciesBinary builds cmd/fallacies once per test binary, into binDir
// (removed by TestMain), the first time a test needs it.
func fallaciesBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(binDir, "fallacies")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/fallacies/fallacies/cmd/fallacies")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build cmd/fallacies: %w\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// TestOTLPProcesses runs every service as a child process exporting OTLP
// to a Receiver started here, and checks that the spans of all five
// services arrive. With JAEGER_QUERY_URL set (and JAEGER_OTLP_ENDPOINT,
// default: the query host on port 4317), the Receiver forwards to Jaeger
// and the order's trace is read back from Jaeger's HTTP API.
func TestOTLPProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts five processes")
	}
	bin := fallaciesBinary(t)
	// The children inherit the environment: export every 100 ms instead of
	// every 5 s.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")

	jaegerQuery := strings.TrimRight(os.Getenv("JAEGER_QUERY_URL"), "/")
	forward := ""
	if jaegerQuery != "" {
		forward = os.Getenv("JAEGER_OTLP_ENDPOINT")
		if forward == "" {
			u, err := url.Parse(jaegerQuery)
			if err != nil {
				t.Fatalf("JAEGER_QUERY_URL %q: %v", jaegerQuery, err)
			}
			forward = net.JoinHostPort(u.Hostname(), "4317")
		}
	}
	capture := tracing.NewCapture(0)
	rcv := tracing.NewReceiver(capture, forward)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rcv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rcv.Shutdown(ctx); err != nil {
			t.Errorf("receiver shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("receiver: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	top, err := topology.StartProcesses(ctx, topology.Options{System: config.Default(), Binary: bin, OTLPEndpoint: lis.Addr().String()})
	if err != nil {
		t.Fatalf("start processes topology: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := top.Stop(ctx); err != nil {
			t.Errorf("stop processes topology: %v", err)
		}
	})
	if got := top.Endpoints().OTLP; got != lis.Addr().String() {
		t.Errorf("Endpoints().OTLP = %q, want %q", got, lis.Addr())
	}
	const id = "otlp-1"
	if err := place(t.Context(), dialOrder(t, top.Endpoints().Services["order"]), id); err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	want := []string{"ledger", "notification", "order", "payment", "user"}
	services := func() []string {
		seen := map[string]bool{}
		for _, s := range capture.Spans() {
			seen[s.Service] = true
		}
		out := make([]string, 0, len(seen))
		for svc := range seen {
			out = append(out, svc)
		}
		slices.Sort(out)
		return out
	}
	all := func() bool {
		got := services()
		_, ok := findOrder(capture.Spans(), id)
		return ok && !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(got, w) })
	}
	for deadline := time.Now().Add(20 * time.Second); !all(); {
		if time.Now().After(deadline) {
			_, ok := findOrder(capture.Spans(), id)
			t.Fatalf("services with spans received over OTLP: %v, want %v; order %s's server span received: %v", services(), want, id, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
	spans := capture.Spans()
	tr, ok := findOrder(spans, id)
	if !ok {
		t.Fatalf("no PlaceOrder span for %s among the received spans", id)
	}
	testenv.Eventually(t, 10*time.Second, "the order's whole trace over OTLP", func() bool {
		tr, _ = findOrder(capture.Spans(), id)
		return len(tr.Spans) >= 6
	})
	for _, svc := range []string{"user", "payment"} {
		if tracing.RetryAmplification(tr, svc) != 1 {
			t.Errorf("the order's trace has no server span of %s:\n%s", svc, dump(tr.Spans))
		}
	}

	if jaegerQuery == "" {
		t.Skip("spans of all five services arrived over OTLP; set JAEGER_QUERY_URL (e.g. http://127.0.0.1:16686, with Jaeger's OTLP/gRPC on :4317 or JAEGER_OTLP_ENDPOINT) to also check the trace in Jaeger")
	}
	var n int
	testenv.Eventually(t, 20*time.Second, "the order's trace in Jaeger", func() bool {
		n = jaegerSpans(t, jaegerQuery, tr.ID)
		return n >= len(tr.Spans)
	})
	if f := rcv.ForwardFailures(); f != 0 {
		t.Errorf("%d exports could not be forwarded to %s", f, forward)
	}
}

// jaegerSpans returns how many spans Jaeger's query API holds for a trace
// (0 while it does not know the trace).
func jaegerSpans(t *testing.T, base, traceID string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/traces/"+traceID, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("query Jaeger: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0
	}
	var body struct {
		Data []struct {
			TraceID string            `json:"traceID"`
			Spans   []json.RawMessage `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("Jaeger answer for trace %s (HTTP %d): %v", traceID, resp.StatusCode, err)
	}
	n := 0
	for _, d := range body.Data {
		n += len(d.Spans)
	}
	return n
}
