package toxiproxy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
)

// TestMessageFaultInterposesTheLayerAndRemoveRestores applies a nats-drop
// and a nats-duplicate on a proxy in front of a real nats-server, through
// the Injector a run uses: the subject's deliveries through the proxy are
// dropped or doubled, the others pass, the faults count them, and
// removing the last one points the proxy back at the server, journaled.
func TestMessageFaultInterposesTheLayerAndRemoveRestores(t *testing.T) {
	s := startServer(t)
	ns := testenv.StartNATS(t)
	upstream := ns.Addr().String()
	listen, err := s.AddProxy("nats-ledger", upstream)
	if err != nil {
		t.Fatal(err)
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	inj := tp.NewInjector(s.URL(), j)
	upstreamOf := func() string {
		ps, err := inj.Proxies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ps["nats-ledger"].Upstream
	}

	drop := faults.Fault{Name: "lose", Kind: faults.NATSDrop, Target: "nats-ledger", Direction: faults.Downstream, Toxicity: 1,
		Attrs: map[string]int64{"probability": faults.FractionOne}, Text: map[string]string{"subject": "orders.*"}}
	a, err := inj.Apply(t.Context(), drop)
	if err != nil {
		t.Fatal(err)
	}
	if upstreamOf() == upstream {
		t.Fatal("the proxy still points at nats-server")
	}
	dup := faults.Fault{Name: "twice", Kind: faults.NATSDuplicate, Target: "nats-ledger", Direction: faults.Downstream, Toxicity: 1,
		Attrs: map[string]int64{"probability": faults.FractionOne}, Text: map[string]string{"subject": "audit.>"}}
	b, err := inj.Apply(t.Context(), dup)
	if err != nil {
		t.Fatal(err)
	}
	layerAddr := upstreamOf()

	// Interposing restarts the proxy: connect after it, as a run does.
	sub, _ := testenv.ConnectNATS(t, "nats://"+listen)
	var mu sync.Mutex
	got := map[string]int{}
	if _, err := sub.Subscribe(">", func(m *nats.Msg) { mu.Lock(); got[m.Subject]++; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, _ := testenv.ConnectNATS(t, ns.ClientURL())
	for i := range 10 {
		for _, subj := range []string{"orders.created", "audit.x", "other"} {
			if err := pub.Publish(subj, fmt.Appendf(nil, "%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub.Publish("end", nil)
	pub.Flush()
	count := func(s string) int { mu.Lock(); defer mu.Unlock(); return got[s] }
	testenv.Eventually(t, 10*time.Second, "the end marker", func() bool { return count("end") == 1 })
	if count("orders.created") != 0 || count("audit.x") != 20 || count("other") != 10 {
		t.Fatalf("deliveries through the faulted link: %v, want orders.created 0, audit.x 20, other 10", got)
	}
	if c := inj.Counters("lose"); c["messages"] != 10 || c["faulted"] != 10 {
		t.Fatalf("counters of lose: %v", c)
	}

	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if upstreamOf() != layerAddr {
		t.Fatal("the layer went with one of its two faults")
	}
	if err := inj.Remove(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got := upstreamOf(); got != upstream {
		t.Fatalf("after the last removal the proxy points at %s, want %s", got, upstream)
	}
	// The counters outlive the faults, for the report.
	if c := inj.Counters("twice"); c["messages"] != 10 || c["faulted"] != 10 {
		t.Fatalf("counters of twice after removal: %v", c)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("journal after removal: %v outstanding (%v)", out, err)
	}
}

// TestPrepareMessagesKeepsTheConnection: with the NATS layer interposed
// before the load, a message-level fault coming and going only sets rules:
// one subscriber connection, never dropped nor reconnected, sees the
// subject before the fault, loses it during, sees it again after; and
// CloseMessages points the proxy back at nats-server, the counters kept.
func TestPrepareMessagesKeepsTheConnection(t *testing.T) {
	s := startServer(t)
	ns := testenv.StartNATS(t)
	upstream := ns.Addr().String()
	listen, err := s.AddProxy("nats-ledger", upstream)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	upstreamOf := func() string {
		ps, err := inj.Proxies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ps["nats-ledger"].Upstream
	}
	drop := faults.Fault{Name: "lose", Kind: faults.NATSDrop, Target: "nats-ledger", Direction: faults.Downstream, Toxicity: 1,
		Attrs: map[string]int64{"probability": faults.FractionOne}, Text: map[string]string{"subject": "orders.*"}}
	bad := drop
	bad.Text = map[string]string{"subject": "orders..x"}
	if err := inj.PrepareMessages(t.Context(), []faults.Fault{drop, bad}); err == nil {
		t.Fatal("a wrong message fault prepared")
	}
	if upstreamOf() != upstream {
		t.Fatal("a refused PrepareMessages interposed a layer")
	}
	if err := inj.PrepareMessages(t.Context(), []faults.Fault{drop}); err != nil {
		t.Fatal(err)
	}
	layerAddr := upstreamOf()
	if layerAddr == upstream {
		t.Fatal("no layer before the fault")
	}

	var disconnects atomic.Int32
	sub, err := nats.Connect("nats://"+listen, nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnects.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var mu sync.Mutex
	got := map[string]int{}
	if _, err := sub.Subscribe(">", func(m *nats.Msg) { mu.Lock(); got[m.Subject]++; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, _ := testenv.ConnectNATS(t, ns.ClientURL())
	count := func(s string) int { mu.Lock(); defer mu.Unlock(); return got[s] }
	// round publishes 5 orders.created then a marker, and waits for the
	// marker: how many orders.created the subscriber saw by then.
	round := func(marker string) int {
		t.Helper()
		before := count("orders.created")
		for range 5 {
			if err := pub.Publish("orders.created", []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
		pub.Publish(marker, nil)
		pub.Flush()
		testenv.Eventually(t, 10*time.Second, "the marker "+marker, func() bool { return count(marker) == 1 })
		return count("orders.created") - before
	}
	if n := round("m.before"); n != 5 {
		t.Fatalf("before the fault the subscriber saw %d of 5", n)
	}
	a, err := inj.Apply(t.Context(), drop)
	if err != nil {
		t.Fatal(err)
	}
	if n := round("m.during"); n != 0 {
		t.Fatalf("during the fault the subscriber saw %d of 5, want 0", n)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if n := round("m.after"); n != 5 {
		t.Fatalf("after the fault the subscriber saw %d of 5", n)
	}
	if upstreamOf() != layerAddr || disconnects.Load() != 0 || sub.Stats().Reconnects != 0 {
		t.Fatalf("proxy upstream %s (layer %s), %d disconnects, %d reconnects: the fault restarted the link",
			upstreamOf(), layerAddr, disconnects.Load(), sub.Stats().Reconnects)
	}
	if err := inj.CloseMessages(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := upstreamOf(); got != upstream {
		t.Fatalf("after CloseMessages the proxy points at %s, want %s", got, upstream)
	}
	if c := inj.Counters("lose"); c["messages"] != 5 || c["faulted"] != 5 {
		t.Fatalf("counters of lose: %v", c)
	}
}

// TestMessageFaultResetAfterCrash: a process that applied a message-level
// fault and died left the proxy pointing at a layer that died with it;
// Reset from the journal points it back.
func TestMessageFaultResetAfterCrash(t *testing.T) {
	s := startServer(t)
	ns := testenv.StartNATS(t)
	upstream := ns.Addr().String()
	if _, err := s.AddProxy("nats-ledger", upstream); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	inj := tp.NewInjector(s.URL(), j)
	f := faults.Fault{Name: "acks", Kind: faults.NATSDropAck, Target: "nats-ledger", Toxicity: 1,
		Attrs: map[string]int64{"probability": faults.FractionOne}}
	if _, err := inj.Apply(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	j2, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if _, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil {
		t.Fatal(err)
	}
	ps, err := tp.NewInjector(s.URL(), nil).Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ps["nats-ledger"].Upstream; got != upstream {
		t.Fatalf("after Reset the proxy points at %s, want %s", got, upstream)
	}
	_ = inj.RemoveAll(context.Background())
}

func TestMessageFaultRefusesBadSubject(t *testing.T) {
	s := startServer(t)
	ns := testenv.StartNATS(t)
	if _, err := s.AddProxy("nats-ledger", ns.Addr().String()); err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	ps, _ := inj.Proxies(t.Context())
	bad := faults.Fault{Name: "x", Kind: faults.NATSReorder, Target: "nats-ledger", Toxicity: 1,
		Attrs: map[string]int64{"probability": faults.FractionOne, "hold": 10}, Text: map[string]string{"subject": "orders.>.x"}}
	if _, err := inj.Apply(t.Context(), bad); err == nil {
		t.Fatal("a subject with > before its last token was applied")
	}
	after, _ := inj.Proxies(t.Context())
	if ps["nats-ledger"].Upstream != after["nats-ledger"].Upstream {
		t.Fatal("a refused fault moved the proxy")
	}
}
