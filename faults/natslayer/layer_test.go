package natslayer_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/internal/testenv"
)

// setup starts a real nats-server with JetStream and a layer in front of
// it, and returns the server and the layer.
func setup(t testing.TB) (*server.Server, *natslayer.Layer) {
	t.Helper()
	ns := testenv.StartNATS(t)
	l, err := natslayer.Listen("127.0.0.1", ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return ns, l
}

// via connects through the layer.
func via(t testing.TB, l *natslayer.Layer) *nats.Conn {
	t.Helper()
	nc, _ := testenv.ConnectNATS(t, "nats://"+l.Addr())
	return nc
}

// direct connects to the server, past the layer.
func direct(t testing.TB, ns *server.Server) *nats.Conn {
	t.Helper()
	nc, _ := testenv.ConnectNATS(t, ns.ClientURL())
	return nc
}

func setRules(t testing.TB, l *natslayer.Layer, rs ...natslayer.Rule) {
	t.Helper()
	if err := l.SetRules(rs); err != nil {
		t.Fatal(err)
	}
}

// collector records the messages a subscription receives, in order.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	at   []time.Time
}

func collect(t testing.TB, nc *nats.Conn, subject string) *collector {
	t.Helper()
	c := &collector{}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.msgs = append(c.msgs, m)
		c.at = append(c.at, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// data returns the bodies received on subject, in order.
func (c *collector) data(subject string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Subject == subject {
			out = append(out, string(m.Data))
		}
	}
	return out
}

// waitFor waits until the collector received a message on subject.
func (c *collector) waitFor(t testing.TB, subject string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "a message on "+subject, func() bool { return len(c.data(subject)) > 0 })
}

func publishN(t testing.TB, nc *nats.Conn, subject string, n int) {
	t.Helper()
	for i := range n {
		if err := nc.Publish(subject, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func seq(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func TestRelaysUntouchedWithoutRules(t *testing.T) {
	ns, l := setup(t)
	nc := via(t, l)
	c := collect(t, nc, "a.>")
	// Core messages, with headers, a payload larger than the read buffer,
	// a request and its reply, a JetStream publish and consume.
	publishN(t, nc, "a.plain", 50)
	big := bytes.Repeat([]byte("x"), 200<<10)
	if err := nc.PublishMsg(&nats.Msg{Subject: "a.big", Header: nats.Header{"K": {"v"}}, Data: big}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("svc", func(m *nats.Msg) { m.Respond(append([]byte("re:"), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	reply, err := nc.Request("svc", []byte("q"), 5*time.Second)
	if err != nil || string(reply.Data) != "re:q" {
		t.Fatalf("request through the layer: %v %v", err, reply)
	}
	c.waitFor(t, "a.big")
	if got := c.data("a.plain"); !slicesEqual(got, seq(50)) {
		t.Fatalf("a.plain through the layer: %v", got)
	}
	c.mu.Lock()
	m := c.msgs[len(c.msgs)-1]
	c.mu.Unlock()
	if !bytes.Equal(m.Data, big) || m.Header.Get("K") != "v" {
		t.Fatalf("the 200 KiB message with a header came out changed: %d bytes, header %v", len(m.Data), m.Header)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"js.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "js.one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || string(msg.Data()) != "1" {
		t.Fatalf("jetstream through the layer: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Opaque() != 0 {
		t.Fatalf("%d connections relayed opaque, want every one read", l.Opaque())
	}
	_ = ns
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestDropPerSubjectAndFlow(t *testing.T) {
	ns, l := setup(t)
	setRules(t, l, natslayer.Rule{Name: "drop-a", Kind: natslayer.Drop, Subject: "a.*", Flow: natslayer.ToClient})
	sub := collect(t, via(t, l), ">")
	pub := direct(t, ns)
	publishN(t, pub, "a.x", 100)
	publishN(t, pub, "a.x.deep", 10) // a.* is one token: not dropped
	publishN(t, pub, "b.x", 100)
	publishN(t, pub, "end", 1)
	sub.waitFor(t, "end")
	if got := sub.data("a.x"); len(got) != 0 {
		t.Fatalf("a.x: %d messages got through a drop with probability 1", len(got))
	}
	if got := sub.data("b.x"); !slicesEqual(got, seq(100)) {
		t.Fatalf("b.x, not matched: %v", got)
	}
	if got := sub.data("a.x.deep"); len(got) != 10 {
		t.Fatalf("a.x.deep, not matched by a.*: %d of 10", len(got))
	}
	if c := l.Counters()["drop-a"]; c.Messages != 100 || c.Faulted != 100 {
		t.Fatalf("counters %+v, want 100 messages, 100 faulted", c)
	}

	// The same rule on the other flow leaves deliveries alone and drops
	// the client's publishes.
	setRules(t, l, natslayer.Rule{Name: "drop-pub", Kind: natslayer.Drop, Subject: "a.>", Flow: natslayer.ToServer})
	watch := collect(t, direct(t, ns), "a.>")
	publishN(t, via(t, l), "a.y", 20)
	publishN(t, pub, "a.z", 5)
	publishN(t, pub, "end2", 1)
	sub.waitFor(t, "end2")
	testenv.Eventually(t, 10*time.Second, "a.z seen directly", func() bool { return len(watch.data("a.z")) == 5 })
	if n := len(watch.data("a.y")); n != 0 {
		t.Fatalf("%d publishes of a.y reached the server through a to-server drop", n)
	}
	if n := len(sub.data("a.z")); n != 5 {
		t.Fatalf("deliveries of a.z: %d of 5 with a to-server rule only", n)
	}
	if c := l.Counters()["drop-pub"]; c.Messages != 20 || c.Faulted != 20 {
		t.Fatalf("counters %+v, want 20 messages, 20 faulted", c)
	}
}

func TestDuplicate(t *testing.T) {
	ns, l := setup(t)
	setRules(t, l, natslayer.Rule{Name: "dup", Kind: natslayer.Duplicate, Subject: "a.>"})
	sub := collect(t, via(t, l), ">")
	pub := direct(t, ns)
	publishN(t, pub, "a.x", 50)
	publishN(t, pub, "end", 1)
	sub.waitFor(t, "end")
	got := sub.data("a.x")
	var want []string
	for _, s := range seq(50) {
		want = append(want, s, s)
	}
	if !slicesEqual(got, want) {
		t.Fatalf("a.x with every message duplicated: %v", got)
	}
	if c := l.Counters()["dup"]; c.Messages != 50 || c.Faulted != 50 {
		t.Fatalf("counters %+v", c)
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	ns, l := setup(t)
	const latency, jitter = 150 * time.Millisecond, 100 * time.Millisecond
	setRules(t, l, natslayer.Rule{Name: "slow", Kind: natslayer.Delay, Subject: "a.x", Latency: latency, Jitter: jitter})
	sub := collect(t, via(t, l), ">")
	pub := direct(t, ns)
	start := time.Now()
	publishN(t, pub, "a.x", 40)
	publishN(t, pub, "b.x", 1)
	sub.waitFor(t, "b.x")
	testenv.Eventually(t, 10*time.Second, "40 delayed messages", func() bool { return len(sub.data("a.x")) == 40 })
	if got := sub.data("a.x"); !slicesEqual(got, seq(40)) {
		t.Fatalf("a.x out of order under nats-delay: %v", got)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var first time.Time
	for i, m := range sub.msgs {
		if m.Subject == "a.x" && first.IsZero() {
			first = sub.at[i]
		}
		if m.Subject == "b.x" && !first.IsZero() && first.Before(sub.at[i]) {
			t.Fatal("b.x, not delayed, came after the delayed a.x")
		}
	}
	if d := first.Sub(start); d < latency-jitter {
		t.Fatalf("the first delayed message came after %v, under latency - jitter (%v)", d, latency-jitter)
	}
}

func TestReorderReleasesAfterLaterMessages(t *testing.T) {
	ns, l := setup(t)
	setRules(t, l, natslayer.Rule{Name: "late", Kind: natslayer.Reorder, Subject: "ev.first", Hold: 300 * time.Millisecond})
	sub := collect(t, via(t, l), "ev.>")
	pub := direct(t, ns)
	publishN(t, pub, "ev.first", 1)
	publishN(t, pub, "ev.second", 1)
	testenv.Eventually(t, 10*time.Second, "both events", func() bool {
		return len(sub.data("ev.first")) == 1 && len(sub.data("ev.second")) == 1
	})
	sub.mu.Lock()
	order := []string{sub.msgs[0].Subject, sub.msgs[1].Subject}
	sub.mu.Unlock()
	if order[0] != "ev.second" {
		t.Fatalf("arrival order %v, want ev.second first", order)
	}

	// With a wildcard and a probability, the held events are overtaken by
	// those not held. Both connections through the layer get ev.n.
	setRules(t, l, natslayer.Rule{Name: "some", Kind: natslayer.Reorder, Subject: "ev.*", Probability: 0.3, Hold: 100 * time.Millisecond})
	sub2 := collect(t, via(t, l), "ev.n")
	publishN(t, pub, "ev.n", 200)
	testenv.Eventually(t, 10*time.Second, "200 events", func() bool { return len(sub2.data("ev.n")) == 200 })
	c := l.Counters()["some"]
	if c.Messages != 400 || c.Faulted == 0 || c.Faulted == 400 || c.Overtaken == 0 {
		t.Fatalf("counters %+v: want 400 messages, some faulted, some overtaken", c)
	}
	if slicesEqual(sub2.data("ev.n"), seq(200)) {
		t.Fatal("200 events arrived in order with 30% held back 100 ms")
	}
}

func TestDropAckMakesJetStreamRedeliver(t *testing.T) {
	ns, l := setup(t)
	ctx := t.Context()
	_, js := testenv.ConnectNATS(t, ns.ClientURL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"js.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"js.lost", "js.kept"} {
		if _, err := js.Publish(ctx, s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	setRules(t, l, natslayer.Rule{Name: "lose-acks", Kind: natslayer.DropAck, Subject: "js.lost"})
	_, cjs := testenv.ConnectNATS(t, "nats://"+l.Addr())
	cons, err := cjs.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	deliveries := map[string]uint64{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, _ := m.Metadata()
		mu.Lock()
		deliveries[m.Subject()] = md.NumDelivered
		mu.Unlock()
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	testenv.Eventually(t, 15*time.Second, "js.lost delivered 3 times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return deliveries["js.lost"] >= 3
	})
	mu.Lock()
	kept := deliveries["js.kept"]
	mu.Unlock()
	if kept != 1 {
		t.Fatalf("js.kept delivered %d times, want once: its ack was not the rule's", kept)
	}
	c := l.Counters()["lose-acks"]
	if c.Messages < 2 || c.Faulted != c.Messages {
		t.Fatalf("counters %+v, want every ack of js.lost counted and dropped", c)
	}
	// Taken off, the next ack goes through: the redeliveries stop.
	setRules(t, l)
	testenv.EventuallyNil(t, 15*time.Second, "js.lost acknowledged", func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 {
			return fmt.Errorf("%d acks pending", info.NumAckPending)
		}
		return nil
	})
}

// TestINFOHidesOtherServers connects through the layer to one server of a
// real two-server cluster: without the layer the client learns the other
// server from INFO's connect_urls and would reconnect to it, past the
// proxy; through it, it learns nothing.
func TestINFOHidesOtherServers(t *testing.T) {
	a := startClustered(t, "a", -1)
	b := startClustered(t, "b", a.ClusterAddr().Port)
	testenv.Eventually(t, 20*time.Second, "the two servers routed", func() bool { return a.NumRoutes() > 0 && b.NumRoutes() > 0 })
	nc, _ := testenv.ConnectNATS(t, a.ClientURL())
	testenv.Eventually(t, 10*time.Second, "the other server in connect_urls, without the layer", func() bool {
		return len(nc.DiscoveredServers()) > 0
	})
	l, err := natslayer.Listen("127.0.0.1", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	vc := via(t, l)
	if err := vc.Flush(); err != nil {
		t.Fatal(err)
	}
	if d := vc.DiscoveredServers(); len(d) != 0 {
		t.Fatalf("through the layer the client discovered %v, which it would reach past the proxy", d)
	}
}

func startClustered(t *testing.T, name string, routeTo int) *server.Server {
	t.Helper()
	o := &server.Options{ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "c", Host: "127.0.0.1", Port: server.RANDOM_PORT}}
	if routeTo > 0 {
		o.Routes = server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", routeTo))
	}
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	testenv.Eventually(t, 20*time.Second, name+" ready", func() bool { return ns.ReadyForConnections(10 * time.Millisecond) })
	return ns
}

func TestRulesChecked(t *testing.T) {
	_, l := setup(t)
	for _, r := range []natslayer.Rule{
		{Name: "x", Kind: "nats-explode"},
		{Name: "x", Kind: natslayer.Drop, Probability: 1.5},
		{Name: "x", Kind: natslayer.Drop, Subject: "a.>.b"},
		{Name: "x", Kind: natslayer.Drop, Subject: "a..b"},
		{Name: "x", Kind: natslayer.Drop, Subject: "a.b*"},
		{Name: "x", Kind: natslayer.Reorder},
	} {
		if err := l.SetRules([]natslayer.Rule{{Name: "good", Kind: natslayer.Drop}, r}); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
	if len(l.Rules()) != 0 {
		t.Fatalf("a refused SetRules left rules: %+v", l.Rules())
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{">", "a", true}, {">", "a.b", true}, {"a.>", "a", false}, {"a.>", "a.b.c", true},
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"*.b", "a.b", true}, {"a.b", "a.b", true},
		{"a.b", "a.c", false}, {"a.b", "a.b.c", false}, {"a.b.c", "a.b", false}, {"orders.created", "orders.created", true},
	} {
		if got := natslayer.SubjectMatches(c.pattern, c.subject); got != c.want {
			t.Errorf("SubjectMatches(%q, %q) = %v", c.pattern, c.subject, got)
		}
	}
}

// TestCloseEndsHeldMessages closes a layer holding messages: Close returns
// and the client's connection ends.
func TestCloseEndsHeldMessages(t *testing.T) {
	ns, l := setup(t)
	setRules(t, l, natslayer.Rule{Name: "hold", Kind: natslayer.Delay, Latency: time.Hour})
	nc := via(t, l)
	sub := collect(t, nc, "a")
	publishN(t, direct(t, ns), "a", 3)
	testenv.Eventually(t, 10*time.Second, "3 messages held", func() bool { return l.Counters()["hold"].Faulted >= 3 })
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on held messages")
	}
	if n := len(sub.data("a")); n != 0 {
		t.Fatalf("%d messages held an hour came out", n)
	}
}
