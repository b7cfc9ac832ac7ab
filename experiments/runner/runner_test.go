package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

func TestMain(m *testing.M) {
	// Toxiproxy itself leaves one goroutine blocked for each connection a
	// reset_peer toxic closed while data was in flight (the stage before
	// the toxic waits to hand on a chunk nobody reads), as in
	// faults/toxiproxy's tests: TestLateRemovalShiftsTheAfterPhase makes
	// such connections.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"))
}

func TestTimelineOrdersRemovalsFirst(t *testing.T) {
	fs := []faults.Fault{
		{Name: "a", At: 2 * time.Second, For: 2 * time.Second},
		{Name: "b", At: 4 * time.Second, For: 2 * time.Second}, // a step: starts as a ends
		{Name: "c", At: 1 * time.Second},                       // to the end: no removal
	}
	got := timeline(fs)
	want := []event{
		{at: 1 * time.Second, fault: 2},
		{at: 2 * time.Second, fault: 0},
		{at: 4 * time.Second, fault: 0, remove: true},
		{at: 4 * time.Second, fault: 1},
		{at: 6 * time.Second, fault: 1, remove: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("timeline = %v, want %v", got, want)
	}
}

// recordingInjector records when each fault goes on and off.
type recordingInjector struct {
	start time.Time
	mu    sync.Mutex
	log   []string
	fail  string // a fault name whose Apply fails
}

func (r *recordingInjector) Apply(_ context.Context, f faults.Fault) (faults.Applied, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Name == r.fail {
		return faults.Applied{}, fmt.Errorf("no such proxy")
	}
	r.log = append(r.log, fmt.Sprintf("%v apply %s", time.Since(r.start), f.Name))
	return faults.Applied{Fault: f, Start: time.Now()}, nil
}

func (r *recordingInjector) Remove(_ context.Context, a faults.Applied) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("%v remove %s", time.Since(r.start), a.Fault.Name))
	return nil
}

func TestSchedulerAppliesOnTimeAndRemovesEverythingOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := &recordingInjector{start: time.Now()}
		fs := []faults.Fault{
			{Name: "step1", At: 1 * time.Second, For: 2 * time.Second},
			{Name: "step2", At: 3 * time.Second, For: 2 * time.Second},
			{Name: "forever", At: 2 * time.Second},
			{Name: "never", At: 10 * time.Second, For: time.Second},
		}
		s := newScheduler(inj, fs)
		ctx, cancel := context.WithTimeout(t.Context(), 6*time.Second)
		defer cancel()
		if err := s.run(ctx, inj.start); err != nil {
			t.Fatal(err)
		}
		if got := s.active(); len(got) != 1 {
			t.Fatalf("active after cancel = %v, want only the fault without an end", got)
		}
		if err := s.removeAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"1s apply step1", "2s apply forever", "3s remove step1", "3s apply step2", "5s remove step2", "6s remove forever",
		}
		if strings.Join(inj.log, "|") != strings.Join(want, "|") {
			t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(inj.log, "\n"), strings.Join(want, "\n"))
		}
		if len(s.active()) != 0 {
			t.Fatalf("faults still on: %v", s.active())
		}
		h := s.history()
		if len(h) != 3 || h[0].End.Sub(h[0].Start) != 2*time.Second || h[1].Fault.Name != "forever" || h[1].End.Sub(h[1].Start) != 4*time.Second {
			t.Fatalf("history = %+v", h)
		}
	})
}

func TestSchedulerStopsAtAFaultItCannotApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := &recordingInjector{start: time.Now(), fail: "bad"}
		s := newScheduler(inj, []faults.Fault{
			{Name: "good", At: time.Second},
			{Name: "bad", At: 2 * time.Second},
			{Name: "later", At: 3 * time.Second},
		})
		err := s.run(t.Context(), inj.start)
		if err == nil || !strings.Contains(err.Error(), "fault bad: no such proxy") {
			t.Fatalf("err = %v", err)
		}
		if err := s.removeAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := "1s apply good|2s remove good"; strings.Join(inj.log, "|") != want {
			t.Fatalf("log = %v, want %s", inj.log, want)
		}
	})
}

// blockingInjector's Apply waits until its context ends, like a request
// to a Toxiproxy that the end of the run cuts short.
type blockingInjector struct{}

func (blockingInjector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	<-ctx.Done()
	return faults.Applied{}, fmt.Errorf("apply %s: %w", f.Name, ctx.Err())
}

func (blockingInjector) Remove(context.Context, faults.Applied) error { return nil }

// TestSchedulerEndOfRunDuringAnApplyIsNoFailure ends the run while a fault
// is being applied (the load finished, or an abort): that is the run
// ending, not a fault that could not be injected.
func TestSchedulerEndOfRunDuringAnApplyIsNoFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(blockingInjector{}, []faults.Fault{{Name: "slow", At: time.Second}})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := s.run(ctx, time.Now()); err != nil {
			t.Fatalf("run ended during an apply: %v, want nil", err)
		}
	})
}

func mustParse(t *testing.T, src string) *definition.Experiment {
	t.Helper()
	exp, err := definition.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return exp
}

// toxics lists the toxics on every proxy and the proxies that are disabled.
func toxics(t *testing.T, api string) (toxics []string, disabled []string) {
	t.Helper()
	resp, err := http.Get(api + "/proxies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var proxies map[string]struct {
		Enabled bool `json:"enabled"`
		Toxics  []struct {
			Name string `json:"name"`
		} `json:"toxics"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
		t.Fatal(err)
	}
	for name, p := range proxies {
		if !p.Enabled {
			disabled = append(disabled, name)
		}
		for _, tx := range p.Toxics {
			toxics = append(toxics, name+"/"+tx.Name)
		}
	}
	return toxics, disabled
}

func TestPanicDuringARunRemovesEveryFault(t *testing.T) {
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Stop(context.Background()) })
	ep := topo.Endpoints()
	exp := mustParse(t, `
name: panic
fallacy: latency-is-zero
description: a fault that is still on when the runner panics
load: { rate: 20/s, duration: 1s }
variants: { only: {} }
faults:
  - { name: slow, at: 0s, target: user, kind: latency, latency: 5ms }
  - { name: cut, at: 0s, target: nats-ledger, kind: partition }
hypotheses:
  - { when: during, check: "order.success_rate >= 0%" }
`)
	sawFault := false
	testHookLoadDone = func() {
		tx, dis := toxics(t, ep.ToxiproxyAPI)
		sawFault = len(tx) > 0 && len(dis) > 0
		panic("boom")
	}
	t.Cleanup(func() { testHookLoadDone = nil })
	res, err := Run(t.Context(), exp, Options{Target: &ep, ReportsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("err = %v, want the panic reported as a testbed failure", err)
	}
	if !sawFault {
		t.Fatal("the faults were not on when the panic happened: the test proves nothing")
	}
	if tx, dis := toxics(t, ep.ToxiproxyAPI); len(tx) > 0 || len(dis) > 0 {
		t.Fatalf("after the panic: toxics %v, disabled proxies %v", tx, dis)
	}
	if res == nil || res.Report.Passed || !strings.Contains(res.Report.Error, "panic") {
		t.Fatalf("report = %+v", res)
	}
	schematest.ValidateDir(t, res.Dir) // the report of a run that panicked keeps the published shape
}

// TestLatencyExperimentEndToEnd runs a latency experiment through the
// engine and reads what it did from the run's own traces
// (traces-full.json.gz), not from wall-clock bounds on whole orders:
//
//   - naive: while the fault held, order's calls to user spent at least
//     the injected 200 ms outside user's server span (on the wire, in the
//     proxies, in the toxic): the fault was on that link, for real. How
//     close to 200 ms is BENCHMARKS.md's accuracy promise, which
//     faults/toxiproxy's accuracy tests hold the toxic to against a clean
//     path sampled in turn; here the windows before and during the fault
//     are seconds apart, and on a loaded two-core machine the noise
//     between them (the clean link's p10 was measured moving from 0.7 ms
//     to 20 ms) exceeds the 4 ms of the promise, so the figure is logged;
//   - resilient: the 80 ms deadline cut the calls made while the fault
//     held (a response through the toxic takes at least 200 ms: a call
//     that got one was stalled past its deadline, and lasted that long),
//     and the calls lasted their deadline: p10 within
//     BENCHMARKS.md's 2% or 1 ms plus the timer floor measured beside the
//     run. Noise only ever adds time and no call ends before its
//     deadline, so the fast tail is what the noise spared.
func TestLatencyExperimentEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 9-second variants")
	}
	exp := mustParse(t, `
name: latency-e2e
fallacy: latency-is-zero
description: 200 ms on order→user
load: { rate: 40/s, duration: 9s }
variants:
  naive: { order.user.timeout: off }
  resilient: { order.user.timeout: 80ms, order.user.fallback: cached-profile }
faults:
  - { name: slow-user, at: 3s, for: 3s, target: user, kind: latency, latency: 200ms, direction: downstream }
hypotheses:
  - { when: always, check: "events.lost == 0" }
`)
	const (
		injected = 200 * time.Millisecond
		deadline = 80 * time.Millisecond
	)
	// accuracy is BENCHMARKS.md's bound for a requested duration: 2% or
	// 1 ms, whichever is larger, plus the machine's timer floor.
	accuracy := func(requested, floor time.Duration) time.Duration {
		return max(requested/50, time.Millisecond) + floor
	}
	floorDone := make(chan load.LatencySummary, 1)
	go func() {
		lag, err := load.TimerFloor(context.Background(), 200, 3000) // 15 s beside the run
		if err != nil {
			t.Errorf("timer floor: %v", err)
		}
		floorDone <- lag
	}()
	dir := t.TempDir()
	res, err := Run(t.Context(), exp, Options{ReportsDir: dir, FullTraces: true})
	if err != nil {
		t.Fatal(err)
	}
	floor := (<-floorDone).P50
	b := schematest.ValidateDir(t, res.Dir)
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || len(rep.Variants) != 2 {
		t.Fatalf("passed=%v variants=%d error=%q", rep.Passed, len(rep.Variants), rep.Error)
	}
	naive, resilient := rep.Variants[0], rep.Variants[1]
	// The load block accounts for every arrival of the 40/s schedule.
	for _, v := range rep.Variants {
		l, sent := v.Load, int64(0)
		for _, p := range v.Phases {
			sent += p.Requests
		}
		for _, op := range v.Ops {
			for _, p := range op {
				sent += p.Requests
			}
		}
		if l.Sent != sent || l.Sent+l.Dropped != 360 || l.Dropped == 0 && l.TargetPerSecond != 40 || l.AchievedPerSecond <= 0 || l.SendWindowSeconds <= 0 {
			t.Errorf("%s: load %+v, want 360 arrivals at 40/s, %d of them sent", v.Name, l, sent)
		}
		// The scheduler applies no fault before its time and removes none
		// before its end (how late, on a loaded machine, is no promise).
		if len(v.Faults) != 1 || v.Faults[0].StartOffset < 3 || v.Faults[0].EndOffset < 6 {
			t.Fatalf("%s: faults as applied = %+v, want one from 3 s (or later) to 6 s (or later)", v.Name, v.Faults)
		}
	}

	calls := linkCalls(t, res.Dir, "user.v1.UserService/GetUser")
	// window splits the calls of variant v into those made before its
	// fault and those made and ended while it held.
	window := func(v report.Variant, calls []linkCall) (before, during []linkCall) {
		f := v.Faults[0]
		varStart := f.Start.Add(-time.Duration(f.StartOffset * float64(time.Second)))
		for _, c := range calls {
			switch {
			case !c.start.Before(varStart) && c.end.Before(f.Start):
				before = append(before, c)
			case !c.start.Before(f.Start) && c.start.Add(injected).Before(f.End):
				during = append(during, c)
			}
		}
		return before, during
	}
	outside := func(c linkCall) time.Duration { return c.outside }
	took := func(c linkCall) time.Duration { return c.end.Sub(c.start) }

	before, during := window(naive, calls)
	if len(before) < 40 || len(during) < 40 {
		t.Fatalf("naive: %d calls to user before the fault and %d during it in the traces, want about 100 of each", len(before), len(during))
	}
	const q = 0.1
	added := quantileOf(during, q, outside) - quantileOf(before, q, outside)
	t.Logf("naive: order→user outside user's server span, p10 (p50): %v (%v) before, %v (%v) during, %d and %d calls: added %v (%+.2f%%); timer floor p50 %v",
		quantileOf(before, q, outside), quantileOf(before, 0.5, outside), quantileOf(during, q, outside), quantileOf(during, 0.5, outside),
		len(before), len(during), added, 100*(float64(added)/float64(injected)-1), floor)
	if fast := quantileOf(during, q, outside); fast < injected {
		t.Errorf("naive: calls to user spent %v outside user's server at p10 while the fault held, want at least the %v injected on the link", fast, injected)
	}
	_, during = window(resilient, calls)
	if len(during) < 40 {
		t.Fatalf("resilient: %d calls to user during the fault in the traces, want about 100", len(during))
	}
	// A call that came back without error while the fault held got its
	// response through the toxic, so it lasted the injected 200 ms at least:
	// the client was stalled past its deadline and found the answer there
	// (a machine this loaded does that). One that succeeded sooner would
	// mean the fault was not on the link.
	cut := 0
	for _, c := range during {
		if c.failed {
			cut++
		} else if took(c) < injected {
			t.Errorf("resilient: a call to user at %v came back after %v without error, under the %v the toxic holds every response", c.start, took(c), injected)
		}
	}
	fast := quantileOf(during, q, took)
	bound := accuracy(deadline, floor)
	t.Logf("resilient: order→user during the fault: p10 %v (p50 %v) over %d calls against an %v deadline; bound +%v; %d of them cut",
		fast, quantileOf(during, 0.5, took), len(during), deadline, bound, cut)
	if fast < deadline || fast > deadline+bound {
		t.Errorf("resilient: calls to user lasted %v at p10, want their %v deadline, at most %v later", fast, deadline, bound)
	}
	for _, f := range []string{"report.json", "junit.xml", "report.html", "traces.json", FileFullTraces} {
		if _, err := os.Stat(filepath.Join(res.Dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestAbortHypothesisStopsTheRunWhenBreached runs an experiment whose
// steady state cannot hold, as an abort hypothesis over a 10 s before
// phase: the run must stop within a second of the breach the runner
// records, long before the phase ends, and say when and why.
func TestAbortHypothesisStopsTheRunWhenBreached(t *testing.T) {
	exp := mustParse(t, `
name: abort
fallacy: latency-is-zero
description: an impossible steady state aborts the run as soon as it is seen
load: { rate: 20/s, duration: 14s }
variants: { first: {}, second: {} }
faults:
  - { name: slow, at: 10s, for: 2s, target: user, kind: latency, latency: 5ms }
hypotheses:
  - { when: before, check: "order.latency.p50 < 1us", abort: true, name: impossible }
  - { when: always, check: "events.lost == 0" }
`)
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if rep.Passed || len(rep.Variants) != 1 || rep.Error != "" {
		t.Fatalf("passed=%v variants=%d error=%q: want a failed first variant, the second skipped, no testbed error", rep.Passed, len(rep.Variants), rep.Error)
	}
	v := rep.Variants[0]
	st := v.Stopped
	if st == nil || st.Hypothesis != "order.latency.p50 < 1us" || st.Phase != "before" || st.Observed == "" {
		t.Fatalf("stopped = %+v; want the impossible hypothesis, before phase, an observed value", st)
	}
	// Causal bounds: the load stopped within a second of the breach the
	// runner saw, and the breach was seen inside the before phase, not at
	// its end (10 s) as a check at the phase's end would.
	if lag := st.StoppedOffset - st.BreachedOffset; lag < 0 || lag > 1 {
		t.Errorf("the load stopped %.3fs after the breach (at %.3fs, stopped at %.3fs); want within 1s", lag, st.BreachedOffset, st.StoppedOffset)
	}
	if st.StoppedOffset >= 10 || len(v.Faults) != 0 {
		t.Errorf("stopped at %.3fs with faults %v: the run went on to the end of its before phase (10s)", st.StoppedOffset, v.Faults)
	}
	if before := v.Phases["before"].Requests; before == 0 || before >= 200 {
		t.Errorf("before phase: %d requests; want the ones made until the stop, fewer than the phase's 200", before)
	}
	hs := v.Hypotheses
	if len(hs) != 2 || hs[0].Passed || !hs[0].Abort || hs[0].Observed != st.Observed || !hs[1].Skipped {
		t.Fatalf("hypotheses = %+v", hs)
	}
	if got := rep.ExitCode(); got != 1 {
		t.Errorf("exit code %d, want 1", got)
	}
	var text strings.Builder
	if err := report.Text(&text, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "stopped: abort hypothesis order.latency.p50 < 1us breached at") {
		t.Errorf("the text report does not say when and why the run stopped:\n%s", text.String())
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"breached_at"`) || !strings.Contains(string(b), `"stopped_offset"`) {
		t.Errorf("report.json has no stopped section:\n%.2000s", b)
	}
	t.Logf("breached at %.3fs (observed %s), load stopped at %.3fs", st.BreachedOffset, st.Observed, st.StoppedOffset)
}
