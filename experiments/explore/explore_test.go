package explore

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/tracing"
)

// order builds one order trace: its root, a GetUser call through the user
// proxy, a publish, and a ledger delivery linked to the publish.
func order(id string, failed bool) []tracing.Span {
	t0 := time.Unix(100, 0)
	root := tracing.Span{TraceID: id, SpanID: id + "r", Name: tracing.PlaceOrderSpan, Service: "order", Kind: tracing.KindServer,
		Start: t0, End: t0.Add(10 * time.Millisecond), Error: failed}
	call := tracing.Span{TraceID: id, SpanID: id + "c", ParentID: root.SpanID, Name: "user.v1.UserService/GetUser", Service: "order",
		Kind: tracing.KindClient, Start: t0, End: t0.Add(4 * time.Millisecond),
		Attrs: map[string]string{"server.address": "127.0.0.1", "server.port": "7001", "rpc.service": "user.v1.UserService", "rpc.method": "GetUser"}}
	spans := []tracing.Span{root, call}
	if !failed {
		pub := tracing.Span{TraceID: id, SpanID: id + "p", ParentID: root.SpanID, Name: "orders.created publish", Service: "order",
			Kind: tracing.KindProducer, Start: t0.Add(5 * time.Millisecond), End: t0.Add(6 * time.Millisecond)}
		del := tracing.Span{TraceID: id + "x", SpanID: id + "d", Name: "orders.created process", Service: "ledger", Kind: tracing.KindConsumer,
			Start: t0.Add(7 * time.Millisecond), End: t0.Add(8 * time.Millisecond), Links: []tracing.Link{{TraceID: id, SpanID: pub.SpanID}}}
		spans = append(spans, pub, del)
	}
	return spans
}

var proxies = map[string]string{"user": "127.0.0.1:7001", "payment": "127.0.0.1:7002", "nats-order": "127.0.0.1:7003", "nats-ledger": "127.0.0.1:7004"}

func TestBuildGraph(t *testing.T) {
	var spans []tracing.Span
	spans = append(spans, order("a", false)...)
	spans = append(spans, order("b", false)...)
	spans = append(spans, order("c", true)...)
	g := BuildGraph(spans, proxies)
	if g.Orders != 3 || g.Successes != 2 {
		t.Fatalf("orders %d successes %d, want 3 and 2", g.Orders, g.Successes)
	}
	want := map[string]struct {
		from, to string
		lineage  float64
		call     string
		count    int
	}{
		"user":        {"order", "user", 1, "user.v1.UserService/GetUser", 3},
		"nats-order":  {"order", "nats", 1, "orders.created", 2},
		"nats-ledger": {"nats", "ledger", 1, "orders.created", 2},
		"payment":     {"", "", 0, "", 0},
	}
	for name, w := range want {
		e, ok := g.Edge(name)
		if !ok {
			t.Fatalf("no edge %s in %+v", name, g.Edges)
		}
		if e.From != w.from || e.To != w.to || e.Lineage != w.lineage {
			t.Errorf("%s: %s → %s lineage %v, want %s → %s %v", name, e.From, e.To, e.Lineage, w.from, w.to, w.lineage)
		}
		if w.call == "" {
			if len(e.Calls) != 0 {
				t.Errorf("%s: calls %v, want none", name, e.Calls)
			}
			continue
		}
		if len(e.Calls) != 1 || e.Calls[0].Name != w.call || e.Calls[0].Count != w.count || e.Calls[0].InSuccess != 2 {
			t.Errorf("%s: calls %+v, want %s ×%d in 2 successes", name, e.Calls, w.call, w.count)
		}
	}
	if used := g.Used(); len(used) != 3 {
		t.Errorf("used edges %v, want user, nats-order, nats-ledger", used)
	}
}

// TestEnumerateFromRegistry: the candidates of an edge are exactly the
// registry's kinds whose target names it and that the embedded topology
// applies; a method attribute gets one candidate per method seen.
func TestEnumerateFromRegistry(t *testing.T) {
	sys := config.Default()
	user := Edge{Name: faults.ProxyUser, Successes: 1, Lineage: 1, P99: 200 * time.Millisecond,
		Calls: []Call{{Name: "user.v1.UserService/GetUser", Type: "grpc", Count: 5, InSuccess: 5}}}
	cands := Enumerate(sys, []Edge{user}, time.Second)
	var want []faults.Kind
	for _, s := range faults.Specs() {
		if slices.Contains(s.Target.Names(), user.Name) {
			if msg, _ := s.Target.CheckTopology(s.Kind, "embedded"); msg == "" {
				want = append(want, s.Kind)
			}
		}
	}
	var got []faults.Kind
	for _, c := range cands {
		if !slices.Contains(got, c.Kind) {
			got = append(got, c.Kind)
		}
		if c.Edge != user.Name {
			t.Errorf("%s on edge %s", c.ID, c.Edge)
		}
		spec, _ := faults.Lookup(c.Kind)
		if spec.Target == faults.TargetProcess || spec.Target == faults.TargetContainer {
			t.Errorf("%s: a %s kind on the embedded topology", c.ID, spec.Target)
		}
		for _, a := range spec.Attrs {
			if a.Required && !slices.ContainsFunc(c.Attrs, func(x Attr) bool { return x.Name == a.Name }) {
				t.Errorf("%s: required attribute %s not set", c.ID, a.Name)
			}
			if a.Unit == faults.Millis && a.Required {
				// No deadline on user by default: twice the p99 (400ms).
				i := slices.IndexFunc(c.Attrs, func(x Attr) bool { return x.Name == a.Name })
				if c.Attrs[i].Millis != min(max(400, a.Min), a.Max) {
					t.Errorf("%s: %s = %dms, want twice the p99, 400ms (within its bounds)", c.ID, a.Name, c.Attrs[i].Millis)
				}
			}
			if a.Unit == faults.Text && a.Pattern != "" && !strings.HasSuffix(c.ID, "/user.v1.UserService/GetUser") {
				t.Errorf("%s: a method kind without the method seen", c.ID)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	for _, c := range cands {
		if c.Targeted != strings.HasSuffix(c.ID, "/user.v1.UserService/GetUser") {
			t.Errorf("%s: targeted %v", c.ID, c.Targeted)
		}
	}
	// Aimed faults are tried first on their edge.
	s := &search{res: &Result{Graph: &Graph{Edges: []Edge{user}}}, rng: rand.New(rand.NewPCG(3, 4))}
	order, _ := s.pruneSingles(cands)
	for i := 1; i < len(order); i++ {
		if order[i].Targeted && !order[i-1].Targeted {
			t.Errorf("%s (aimed at a method) after %s", order[i].ID, order[i-1].ID)
		}
	}
	// With a deadline: just past it.
	if err := config.Set(&sys, "order.user.timeout", "100ms"); err != nil {
		t.Fatal(err)
	}
	if d, _ := ProbeDelay(sys, user); d != 150*time.Millisecond {
		t.Errorf("probe delay with a 100ms deadline: %v, want 150ms (deadline + 50ms)", d)
	}
}

// TestRenderParsesBack: every scenario the search writes is an experiment
// file the loader accepts, with the faults, knobs and hypotheses given.
func TestRenderParsesBack(t *testing.T) {
	sys := config.Default()
	edges := []Edge{
		{Name: faults.ProxyUser, Successes: 1, Calls: []Call{{Name: "user.v1.UserService/GetUser", Type: "grpc", InSuccess: 1}}},
		{Name: faults.ProxyNATSLedger, Successes: 1},
	}
	su := Setup{Rate: 100, Variant: "resilient", Knobs: []definition.Knob{{Name: "ledger.idempotent", Value: "off"}, {Name: "order.user.fallback", Value: "cached-profile"}},
		Before: 500 * time.Millisecond, After: time.Second, Drain: time.Second, Recovery: time.Second, Seed: 7,
		Hypotheses: []definition.Hypothesis{{Name: `p99 "fast"`, When: definition.During, Check: "order.latency.p99 < 250ms", Variant: "resilient"}}}
	cands := Enumerate(sys, edges, time.Second)
	for i, c := range cands {
		sc := Scenario{Faults: []Candidate{c}}
		if i > 0 {
			sc = pairOf(cands[i-1], c)
		}
		text := su.Render("x", "d: with a colon", sc, []string{"a header", "Failed: x < 3"})
		exp, err := definition.Parse("x.yaml", text)
		if err != nil {
			t.Fatalf("%s: %v\n%s", sc.ID(), err, text)
		}
		if len(exp.Faults) != len(sc.Faults) || exp.Faults[0].Kind != sc.Faults[0].Kind || exp.Faults[0].Target != sc.Faults[0].Edge ||
			exp.Faults[0].At != su.Before || exp.Faults[0].For != sc.Faults[0].Window {
			t.Fatalf("%s: faults read back as %+v", sc.ID(), exp.Faults)
		}
		if exp.Load.Duration != su.Before+sc.Window()+sc.after(su.After) || exp.Seed != 7 || exp.Variants[0].Name != "resilient" ||
			exp.Variants[0].System.Ledger.Idempotent {
			t.Fatalf("%s: load %v seed %d variant %+v", sc.ID(), exp.Load.Duration, exp.Seed, exp.Variants[0])
		}
		if n := len(exp.Hypotheses); n != len(su.Invariants(sc.Window()))+1 {
			t.Fatalf("%s: %d hypotheses", sc.ID(), n)
		}
	}
	// A baseline (no fault) parses too: one phase, whole-run hypotheses
	// kept as they are.
	su.Hypotheses = append(su.Hypotheses, definition.Hypothesis{Name: "lost", When: definition.Always, Check: "events.lost == 0"},
		definition.Hypothesis{Name: "after", When: definition.After, Check: "order.success_rate >= 99%"})
	if _, err := definition.Parse("b.yaml", su.Render("b", "baseline", Scenario{}, nil)); err != nil {
		t.Fatal(err)
	}
}

// TestShrinkIsMinimal: against a known failure condition (a fault on
// edge b with a window of at least 300ms and a delay of at least 40ms
// fails, whatever else is on), the shrinker drops the other fault and
// stops where removing the fault or halving the window passes.
func TestShrinkIsMinimal(t *testing.T) {
	fails := func(sc Scenario) bool {
		for _, f := range sc.Faults {
			if f.Edge == "b" && f.Window >= 300*time.Millisecond && f.Attrs[0].Millis >= 40 {
				return true
			}
		}
		return false
	}
	start := Scenario{Faults: []Candidate{
		{ID: "a/x", Edge: "a", Window: 4 * time.Second, Attrs: []Attr{{Name: "latency", Value: "1s", Millis: 1000}}},
		{ID: "b/y", Edge: "b", Window: 4 * time.Second, Attrs: []Attr{{Name: "latency", Value: "1s", Millis: 1000}}},
	}}
	got, runs := Shrink(start, 100*time.Millisecond, fails)
	if !fails(got) {
		t.Fatalf("shrunk to a passing scenario %+v", got)
	}
	if len(got.Faults) != 1 || got.Faults[0].Edge != "b" {
		t.Fatalf("faults %+v, want only b's", got.Faults)
	}
	// Minimal: removing any fault, or halving any window, passes.
	for i := range got.Faults {
		c := Scenario{Faults: slices.Delete(got.clone().Faults, i, i+1)}
		if fails(c) {
			t.Errorf("still fails without fault %d", i)
		}
		h := got.clone()
		h.Faults[i].Window /= 2
		if fails(h) {
			t.Errorf("still fails with fault %d's window halved to %v", i, h.Faults[i].Window)
		}
	}
	if w := got.Faults[0].Window; w != 500*time.Millisecond {
		t.Errorf("window %v, want 500ms (4s halved while ≥ 300ms)", w)
	}
	if a := got.Faults[0].Attrs[0]; a.Millis != 62 || a.Value != "62ms" {
		t.Errorf("delay %+v, want 62ms (1000 halved while ≥ 40)", a)
	}
	if runs == 0 {
		t.Error("no runs counted")
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	var spans []tracing.Span
	spans = append(spans, order("a", false)...)
	g := BuildGraph(spans, proxies)
	c := Candidate{ID: "user/partition", Edge: "user", Kind: "partition", Window: time.Second}
	res := &Result{Seed: 3, Graph: g, Candidates: []Candidate{c},
		Scenarios: []ScenarioRun{{ID: c.ID, Faults: []Candidate{c}, Outcome: Failed, Finding: "findings/user-partition.yaml",
			Failed: []FailedCheck{{Name: "no ghost payment", Check: "payments.ghost == 0", Observed: "payments.ghost = 3"}}}},
		Findings: []Finding{{File: "findings/user-partition.yaml", Confirmed: true, Failed: []FailedCheck{{Name: "no ghost payment", Observed: "payments.ghost = 3"}}}},
		Counts:   Counts{Enumerated: 10, Planned: 2, Run: 1, Controls: 1}, Time: []StepTime{{Step: "load", Seconds: 2.5, Runs: 1, Median: 2.5, Max: 2.5}}}
	if err := WriteReport(dir, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	data, err := os.ReadFile(filepath.Join(dir, FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil || len(back.Findings) != 1 || back.Graph.Successes != 1 {
		t.Fatalf("explore.json read back: %v %+v", err, back)
	}
	html, err := os.ReadFile(filepath.Join(dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`href="findings/user-partition.yaml"`, `<path d="M`, `class="failed"`, "5.0× fewer", "nats-ledger", "fault-free controls 1", "<td>load</td>"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("explore.html lacks %q", want)
		}
	}
	if strings.Contains(string(html), "<script src") || strings.Contains(string(html), "<link ") {
		t.Error("explore.html loads something: it must be self-contained")
	}
}

// TestPrunePairs: pairs only of tolerated singles on two edges, one of
// which acted; one fault stands for the equivalent ones of its edge.
func TestPrunePairs(t *testing.T) {
	c := func(id, edge string) Candidate { return Candidate{ID: id, Edge: edge} }
	all := []Candidate{c("a1", "a"), c("a2", "a"), c("a3", "a"), c("b1", "b"), c("b2", "b"), c("c1", "c"), c("d1", "d")}
	g := &Graph{Edges: []Edge{{Name: "a", Successes: 1}, {Name: "b", Successes: 1}, {Name: "c", Successes: 1}, {Name: "d"}}}
	run := func(cand Candidate, outcome, class string) ScenarioRun {
		return ScenarioRun{ID: cand.ID, Faults: []Candidate{cand}, Outcome: outcome, Effect: class, EffectClass: class}
	}
	s := &search{res: &Result{Graph: g, Scenarios: []ScenarioRun{
		run(all[0], Tolerated, "failed"), run(all[1], Tolerated, "failed"), run(all[2], Tolerated, ""),
		run(all[3], Tolerated, "retry@order.payment"), run(all[4], Failed, ""), run(all[5], Tolerated, ""),
	}}, rng: rand.New(rand.NewPCG(1, 2))}
	singles, _ := s.pruneSingles(all)
	pairs, pruned := s.prunePairs(all, singles, nil)
	var got []string
	for _, p := range pairs {
		got = append(got, p.ID())
	}
	slices.Sort(got)
	want := []string{"a1 + b1", "a1 + c1", "a3 + b1", "b1 + c1"}
	if !slices.Equal(got, want) {
		t.Errorf("pairs %v, want %v", got, want)
	}
	if got[0] != "a1 + b1" && pairs[0].ID() != "a1 + b1" {
		t.Errorf("the pair where both acted is not first: %v", pairs[0].ID())
	}
	counts := map[string]int{}
	total := 0
	for _, p := range pruned {
		counts[p.Reason] = p.Count
		total += p.Count
	}
	if total+len(pairs) != len(all)*(len(all)-1)/2 {
		t.Errorf("%d pruned + %d planned, want every one of the %d pairs accounted for", total, len(pairs), len(all)*(len(all)-1)/2)
	}
	for reason, n := range map[string]int{reasonNoLineage: 6, reasonSingle: 5, reasonSameEdge: 3, reasonSameClass: 2, reasonNoEffect: 1} {
		if counts[reason] != n {
			t.Errorf("%q: %d, want %d", reason, counts[reason], n)
		}
	}
}

// TestShrinkIsMinimalOnRandomConditions: for failure conditions drawn at
// random (a set of edges that must all be faulted, each with a least
// window and a least delay), the shrinker's result still fails, and
// removing any of its faults or halving any of its windows (down to the
// least window the search tries) makes it pass.
func TestShrinkIsMinimalOnRandomConditions(t *testing.T) {
	const minWindow = 250 * time.Millisecond
	rng := rand.New(rand.NewPCG(7, 11))
	edges := []string{"a", "b", "c", "d"}
	for trial := range 200 {
		type need struct {
			window time.Duration
			delay  int64
		}
		needs := map[string]need{}
		for _, e := range edges {
			if rng.IntN(2) == 0 || len(needs) == 0 && e == "d" {
				needs[e] = need{time.Duration(rng.IntN(4000)) * time.Millisecond, int64(rng.IntN(1000))}
			}
		}
		fails := func(sc Scenario) bool {
			for e, n := range needs {
				if !slices.ContainsFunc(sc.Faults, func(f Candidate) bool {
					return f.Edge == e && f.Window >= n.window && f.Attrs[0].Millis >= n.delay
				}) {
					return false
				}
			}
			return true
		}
		var start Scenario
		for _, e := range edges {
			start.Faults = append(start.Faults, Candidate{ID: e + "/x", Edge: e, Window: 4 * time.Second,
				Attrs: []Attr{{Name: "latency", Value: "1s", Millis: 1000}}})
		}
		got, _ := Shrink(start, minWindow, fails)
		if !fails(got) {
			t.Fatalf("trial %d: shrunk to a passing scenario %+v (needs %+v)", trial, got, needs)
		}
		if len(got.Faults) != len(needs) {
			t.Errorf("trial %d: %d faults left, want the %d needed: %+v", trial, len(got.Faults), len(needs), got)
		}
		for i := range got.Faults {
			if len(got.Faults) > 1 && fails(Scenario{Faults: slices.Delete(got.clone().Faults, i, i+1)}) {
				t.Errorf("trial %d: still fails without fault %d: %+v", trial, i, got)
			}
			h := got.clone()
			h.Faults[i].Window /= 2
			if h.Faults[i].Window >= minWindow && fails(h) {
				t.Errorf("trial %d: still fails with fault %d's window halved: %+v", trial, i, got)
			}
		}
	}
}
