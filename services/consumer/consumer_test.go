package consumer

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/testenv"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func jsConfig(name, url string) Config {
	return Config{
		Name: name, NATSURL: url, Mode: config.PublishJetStream,
		Consumer: config.Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1},
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := jsConfig("ledger", "nats://127.0.0.1:4222")
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "consumer.name"},
		{"name with dot", func(c *Config) { c.Name = "a.b" }, `"a.b"`},
		{"no url", func(c *Config) { c.NATSURL = "" }, "ledger.nats_url"},
		{"bad mode", func(c *Config) { c.Mode = "carrier-pigeon" }, `"carrier-pigeon"`},
		{"zero ack wait", func(c *Config) { c.Consumer.AckWait = 0 }, "ledger.ack_wait: 0s"},
		{"zero max deliver", func(c *Config) { c.Consumer.MaxDeliver = 0 }, "ledger.max_deliver: 0"},
		{"max deliver -2", func(c *Config) { c.Consumer.MaxDeliver = -2 }, "ledger.max_deliver: -2"},
		{"negative processing", func(c *Config) { c.Consumer.ProcessingTime = -time.Millisecond }, "ledger.processing_time: -1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := New(cfg, serve.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error containing %q", err, tc.want)
			}
		})
	}
	core := good
	core.Mode, core.Consumer.AckWait = config.PublishCore, 0
	s, err := New(core, serve.Options{})
	if err != nil {
		t.Fatalf("core mode needs no ack wait, got %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
}

func TestFanOutAppliesEveryEventOncePerConsumer(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	var sideEffects atomic.Int64
	onApply := func(_ context.Context, e events.OrderCreated) error {
		if e.UserID != "u-0001" || e.AmountCents != 500 {
			return fmt.Errorf("event decoded wrong: %+v", e)
		}
		sideEffects.Add(1)
		return nil
	}
	cfgA, cfgB := jsConfig("notification", url), jsConfig("ledger", url)
	cfgA.OnApply = onApply
	a, b := startConsumer(t, cfgA, serve.Options{}), startConsumer(t, cfgB, serve.Options{})

	const n = 40
	for i := range n {
		pub.publish(t, eventMsg(fmt.Sprintf("o-%03d", i)))
	}
	for i := range 10 { // a retried publish: the stream drops the copy
		pub.publish(t, eventMsg(fmt.Sprintf("o-%03d", i)))
	}
	for _, c := range []started{a, b} {
		testenv.Eventually(t, waitTimeout, c.cfg.Name+" applied all", func() bool { return c.Stats().Applied >= n })
	}
	if got := sideEffects.Load(); got != n {
		t.Errorf("OnApply ran %d times, want %d", got, n)
	}
	for _, c := range []started{a, b} {
		st, err := c.client.GetStats(t.Context(), &consumerv1.GetStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := &consumerv1.GetStatsResponse{Consumer: c.cfg.Name, Received: n, Applied: n}
		if !proto.Equal(st, want) {
			t.Errorf("%s stats = %v, want %v", c.cfg.Name, st, want)
		}
		apps := listAll(t, c.client, 7)
		if !equalApps(apps, c.Applied()) {
			t.Errorf("%s: ListApplied over gRPC differs from Applied()", c.cfg.Name)
		}
		seen := map[string]bool{}
		for _, app := range apps {
			if seen[app.OrderId] {
				t.Errorf("%s applied %s twice", c.cfg.Name, app.OrderId)
			}
			seen[app.OrderId] = true
			if app.DeliveryCount != 1 || app.PublishedUnixNano <= 0 || app.AppliedUnixNano < app.PublishedUnixNano {
				t.Errorf("%s application %v", c.cfg.Name, app)
			}
		}
		if len(seen) != n {
			t.Errorf("%s applied %d distinct orders, want %d", c.cfg.Name, len(seen), n)
		}
	}
}

func equalApps(a, b []*consumerv1.Application) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestRedeliveryDuplicatesNaiveConsumerOnly(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	slow := config.Consumer{AckWait: 100 * time.Millisecond, MaxDeliver: 2, ProcessingTime: 300 * time.Millisecond}
	naiveCfg, carefulCfg := jsConfig("naive", url), jsConfig("careful", url)
	naiveCfg.Consumer, carefulCfg.Consumer = slow, slow
	carefulCfg.Consumer.Idempotent = true
	naive, careful := startConsumer(t, naiveCfg, serve.Options{}), startConsumer(t, carefulCfg, serve.Options{})

	const n = 2
	for i := range n {
		pub.publish(t, eventMsg(fmt.Sprintf("o-%d", i)))
	}
	// Each event takes longer than the ack wait: each is delivered twice.
	for _, c := range []started{naive, careful} {
		testenv.Eventually(t, waitTimeout, c.cfg.Name+" handled every redelivery", func() bool {
			st := c.Stats()
			return st.Received >= 2*n && st.Applied+st.DuplicatesRecognised == st.Received
		})
	}
	ns, cs := naive.Stats(), careful.Stats()
	if ns.DuplicatesApplied == 0 || ns.Applied != ns.Received || ns.DuplicatesApplied != ns.Received-n || ns.Redeliveries == 0 {
		t.Errorf("naive stats = %v: want every delivery applied, the redeliveries as duplicates_applied", ns)
	}
	if cs.DuplicatesRecognised == 0 || cs.Applied != n || cs.DuplicatesApplied != 0 || cs.DuplicatesRecognised != cs.Received-n {
		t.Errorf("careful stats = %v: want applied %d, the redeliveries recognised", cs, n)
	}
	var redelivered int
	for _, app := range naive.Applied() {
		if app.DeliveryCount > 1 {
			redelivered++
		}
	}
	if redelivered == 0 {
		t.Error("naive consumer recorded no application with a delivery count above 1")
	}
}

func TestJetStreamConsumerSurvivesCutLink(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	proxy := newLink(t, strings.TrimPrefix(url, "nats://"))
	cfg := jsConfig("ledger", proxy.url())
	cfg.Consumer.AckWait = time.Second
	c := startConsumer(t, cfg, serve.Options{})

	const half = 20
	for i := range half {
		pub.publish(t, eventMsg(fmt.Sprintf("before-%02d", i)))
	}
	testenv.Eventually(t, waitTimeout, "events before the cut applied", func() bool { return c.Stats().Applied >= half })

	proxy.setCut(true)
	for i := range half {
		pub.publish(t, eventMsg(fmt.Sprintf("during-%02d", i)))
	}
	if got := c.Stats().Applied; got != half {
		t.Fatalf("applied %d while the link was cut, want %d", got, half)
	}
	proxy.setCut(false)
	testenv.Eventually(t, waitTimeout, "events published during the cut applied", func() bool { return c.Stats().Applied >= 2*half })

	seen := map[string]bool{}
	for _, app := range c.Applied() {
		seen[app.OrderId] = true
	}
	for i := range half {
		for _, id := range []string{fmt.Sprintf("before-%02d", i), fmt.Sprintf("during-%02d", i)} {
			if !seen[id] {
				t.Errorf("%s was lost", id)
			}
		}
	}
	if st := c.Stats(); st.DuplicatesApplied != 0 || st.Applied != 2*half {
		t.Errorf("stats after heal = %v, want %d applied, no duplicates applied", st, 2*half)
	}
}

func TestCoreConsumerLosesEventsWhileDisconnected(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	proxy := newLink(t, strings.TrimPrefix(url, "nats://"))
	cfg := Config{Name: "notification", NATSURL: proxy.url(), Mode: config.PublishCore, Consumer: config.Consumer{Idempotent: true}}
	c := startConsumer(t, cfg, serve.Options{})
	publishCore := func(id string) {
		t.Helper()
		if err := pub.nc.PublishMsg(eventMsg(id)); err != nil {
			t.Fatal(err)
		}
		if err := pub.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	applied := func(prefix string) int {
		n := 0
		for _, app := range c.Applied() {
			if strings.HasPrefix(app.OrderId, prefix) {
				n++
			}
		}
		return n
	}

	const k = 10
	for i := range k {
		publishCore(fmt.Sprintf("before-%d", i))
	}
	testenv.Eventually(t, waitTimeout, "events before the cut", func() bool { return applied("before-") == k })

	proxy.setCut(true)
	for i := range k {
		publishCore(fmt.Sprintf("lost-%d", i))
	}
	proxy.setCut(false)
	// Probe until the consumer is subscribed again, then publish more.
	probes := 0
	testenv.Eventually(t, waitTimeout, "core consumer resubscribed", func() bool {
		if applied("probe-") > 0 {
			return true
		}
		publishCore(fmt.Sprintf("probe-%d", probes))
		probes++
		return false
	})
	for i := range k {
		publishCore(fmt.Sprintf("after-%d", i))
	}
	testenv.Eventually(t, waitTimeout, "events after the heal", func() bool { return applied("after-") == k })

	lost := k - applied("lost-")
	t.Logf("core mode: %d of %d events published during the cut were lost (%d probes)", lost, k, probes)
	if lost != k {
		t.Errorf("%d of %d events published while disconnected arrived; core NATS cannot deliver them", k-lost, k)
	}
	if st := c.Stats(); st.Redeliveries != 0 || st.Received != st.Applied {
		t.Errorf("core stats = %v: want no redeliveries, every reception applied", st)
	}
}

func TestConsumerSpanLinksToProducerSpan(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	prop := propagation.TraceContext{}
	c := startConsumer(t, jsConfig("notification", url), serve.Options{TracerProvider: tp, Propagator: prop})

	ctx, producer := tp.Tracer("test").Start(t.Context(), events.SubjectCreated+" publish", trace.WithSpanKind(trace.SpanKindProducer))
	m := eventMsg("o-traced")
	prop.Inject(ctx, events.HeaderCarrier(m.Header))
	pub.publish(t, m)
	producer.End()
	psc := producer.SpanContext()

	var span sdktrace.ReadOnlySpan
	testenv.Eventually(t, waitTimeout, "consumer span", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "orders.created process" {
				span = s
				return true
			}
		}
		return false
	})
	if span.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kind = %v, want consumer", span.SpanKind())
	}
	if span.Parent().IsValid() || span.SpanContext().TraceID() == psc.TraceID() {
		t.Errorf("consumer span has parent %v in trace %v: want a new root", span.Parent(), span.SpanContext().TraceID())
	}
	links := span.Links()
	if len(links) != 1 || links[0].SpanContext.TraceID() != psc.TraceID() || links[0].SpanContext.SpanID() != psc.SpanID() {
		t.Fatalf("links = %+v, want one link to producer %v/%v", links, psc.TraceID(), psc.SpanID())
	}
	want := map[attribute.Key]attribute.Value{
		"messaging.system":              attribute.StringValue("nats"),
		"messaging.destination.name":    attribute.StringValue("orders.created"),
		"messaging.message.id":          attribute.StringValue("o-traced"),
		"messaging.nats.delivery_count": attribute.Int64Value(1),
		"messaging.consumer.group.name": attribute.StringValue("notification"),
		"fallacies.consumer.outcome":    attribute.StringValue("applied"),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range span.Attributes() {
		got[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if c.Stats().Applied != 1 {
		t.Errorf("applied %d, want 1", c.Stats().Applied)
	}
}

func TestMalformedEventsAreTerminated(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	c := startConsumer(t, jsConfig("ledger", url), serve.Options{})
	for i, data := range []string{"not json", `{"user_id":"u-1"}`} {
		m := eventMsg(fmt.Sprintf("bad-%d", i))
		m.Data = []byte(data)
		pub.publish(t, m)
	}
	pub.publish(t, eventMsg("o-good"))
	testenv.Eventually(t, waitTimeout, "good event applied", func() bool { return c.Stats().Applied == 1 })
	cons, err := pub.js.Consumer(t.Context(), events.Stream, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "nothing left pending", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Consumer == 3
	})
	want := &consumerv1.GetStatsResponse{Consumer: "ledger", Received: 1, Applied: 1}
	if st := c.Stats(); !proto.Equal(st, want) {
		t.Errorf("stats = %v, want %v (malformed events counted nowhere)", st, want)
	}
}

func TestShutdownInterruptsAndTheEventIsRedelivered(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	cfg := jsConfig("notification", url)
	cfg.Consumer.AckWait = 500 * time.Millisecond
	cfg.Consumer.ProcessingTime = time.Minute
	first, err := New(cfg, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- first.Serve(lis) }()
	<-first.Ready()
	pub.publish(t, eventMsg("o-slow"))
	testenv.Eventually(t, waitTimeout, "event received", func() bool { return first.Stats().Received == 1 })
	began := time.Now()
	shutdown(t, first)
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("Shutdown took %v: processing was not interrupted", d)
	}
	if st := first.Stats(); st.Applied != 0 {
		t.Fatalf("interrupted consumer applied %d", st.Applied)
	}

	cfg.Consumer.ProcessingTime = 0
	second := startConsumer(t, cfg, serve.Options{})
	testenv.Eventually(t, waitTimeout, "redelivered event applied", func() bool { return second.Stats().Applied == 1 })
	if app := second.Applied()[0]; app.OrderId != "o-slow" || app.DeliveryCount < 2 {
		t.Errorf("application = %v, want o-slow with a delivery count of at least 2", app)
	}
}

func TestListAppliedValidation(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	c := startConsumer(t, jsConfig("ledger", url), serve.Options{})
	for _, tc := range []struct {
		req *consumerv1.ListAppliedRequest
		msg string
	}{
		{&consumerv1.ListAppliedRequest{PageSize: -1}, "page_size: -1"},
		{&consumerv1.ListAppliedRequest{PageSize: 10001}, "page_size: 10001"},
		{&consumerv1.ListAppliedRequest{PageToken: "x"}, `page_token: "x"`},
		{&consumerv1.ListAppliedRequest{PageToken: "1"}, `page_token: "1"`},
	} {
		_, err := c.client.ListApplied(t.Context(), tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("ListApplied(%v) = %v, want InvalidArgument naming %q", tc.req, err, tc.msg)
		}
	}
	resp, err := c.client.ListApplied(t.Context(), &consumerv1.ListAppliedRequest{PageSize: 10000})
	if err != nil || len(resp.Applications) != 0 || resp.NextPageToken != "" {
		t.Errorf("empty ListApplied = %v, %v", resp, err)
	}
}

func TestFailedSideEffectIsRetried(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	pub := newPublisher(t, url)
	var calls atomic.Int64
	cfg := jsConfig("notification", url)
	cfg.OnApply = func(_ context.Context, e events.OrderCreated) error {
		if calls.Add(1) <= 2 {
			return fmt.Errorf("mail server down for %s", e.OrderID)
		}
		return nil
	}
	c := startConsumer(t, cfg, serve.Options{})
	pub.publish(t, eventMsg("o-flaky"))
	testenv.Eventually(t, waitTimeout, "applied after retries", func() bool { return c.Stats().Applied == 1 })
	want := &consumerv1.GetStatsResponse{Consumer: "notification", Received: 3, Applied: 1, Redeliveries: 2}
	if st := c.Stats(); !proto.Equal(st, want) {
		t.Errorf("stats = %v, want %v", st, want)
	}
	if app := c.Applied()[0]; app.DeliveryCount != 3 {
		t.Errorf("delivery count = %d, want 3", app.DeliveryCount)
	}
}

// TestAppliedWindow checks that the applications leaving the window are
// uncounted for their order: an order is seen while any of its
// applications is held, and only then.
func TestAppliedWindow(t *testing.T) {
	s := &Server{seen: map[string]int{}, applied: store.NewRecent[application](10)}
	for i := range 25 {
		s.record(&consumerv1.Application{OrderId: fmt.Sprintf("o-%02d", i/2)}) // each order applied twice
	}
	held := s.applied.Held()
	counts := map[string]int{}
	for _, a := range held {
		counts[a.orderID]++
	}
	if len(held) > 10 || !maps.Equal(counts, s.seen) {
		t.Errorf("held %d applications counting %v, seen %v; want at most 10, and seen to count what is held", len(held), counts, s.seen)
	}
	if s.seen["o-00"] != 0 || s.seen["o-12"] != 1 {
		t.Errorf("seen o-00 %d (left the window), o-12 %d (applied once); want 0 and 1", s.seen["o-00"], s.seen["o-12"])
	}
}

// TestApplicationCompact checks that the window's compact form of an
// application gives back every field of the message it was made from.
func TestApplicationCompact(t *testing.T) {
	a := &consumerv1.Application{OrderId: "o-1", PublishedUnixNano: 11, AppliedUnixNano: 22, DeliveryCount: 3}
	if got := compact(a).message(); !proto.Equal(got, a) {
		t.Errorf("compact(%v).message() = %v", a, got)
	}
}
