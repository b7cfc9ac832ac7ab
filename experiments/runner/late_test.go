package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/faults"
)

// TestLateRemovalShiftsTheAfterPhase runs a fault on the order→user link
// with orders flowing whose removal takes 1.5 s (testHookRemove), so the
// fault due off at 2 s comes off at about 3.5 s. The after phase must begin then, not at 2 s: no request,
// trace or consumer event of the after phase may come from a moment the
// fault was still on, the load generator's figures and the metric
// families must agree on the boundary, and the report must say how late
// the fault came off.
func TestLateRemovalShiftsTheAfterPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 6-second variant")
	}
	exp := mustParse(t, `
name: late
fallacy: network-is-reliable
description: a fault whose removal is slow
load: { rate: 40/s, duration: 6s }
variants: { only: {} }
faults:
  - { name: slow-off, at: 1s, for: 1s, target: user, kind: latency, latency: 1ms }
hypotheses:
  - { when: after, check: "order.success_rate >= 0%" }
`)
	var run *metrics.Run
	testHookMetrics = func(_ string, r *metrics.Run, _ *metrics.Values) { run = r }
	testHookRemove = func(faults.Fault) { time.Sleep(1500 * time.Millisecond) }
	t.Cleanup(func() { testHookMetrics, testHookRemove = nil, nil })
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Variants) != 1 || run == nil {
		t.Fatalf("report %+v: want one variant measured", res.Report)
	}
	v := res.Report.Variants[0]
	if v.Error != "" || len(v.Faults) != 1 {
		t.Fatalf("variant error %q, faults %+v", v.Error, v.Faults)
	}
	off := v.Faults[0].EndOffset
	t.Logf("fault due off at 2.00s, came off at %.3fs; late removal: %+v", off, v.LateRemoval)
	if off < 2.5 {
		t.Fatalf("the fault came off at %.3fs, less than 0.5 s late: the hook did not hold its removal, the test proves nothing", off)
	}
	faultEnd := v.Faults[0].End

	// Requests: the metric families' phase of every request's intended
	// time agrees with the load generator's, which classified it as it
	// was sent, and none of the after phase was sent with the fault on.
	var after int64
	for _, a := range run.History {
		p := run.PhaseAt(a.Intended)
		if p == string(definition.After) {
			after++
			if a.Intended.Before(faultEnd) {
				t.Fatalf("request %s sent at %.3fs, with the fault on (off at %.3fs), counted in the after phase", a.OrderID, a.Intended.Sub(run.Start).Seconds(), off)
			}
		}
	}
	lr := v.LateRemoval
	if lr == nil || lr.AfterOffset < off || lr.ScheduledOffset != 2 || !lr.Judged ||
		len(lr.Faults) != 1 || lr.Faults[0] != "slow-off" || !strings.Contains(lr.Note, "slow-off (latency on user) came off") {
		t.Fatalf("late removal = %+v; want the after phase from %.3fs on, judged, naming slow-off", lr, off)
	}
	removed := run.Start.Add(time.Duration(lr.AfterOffset * float64(time.Second)))

	for _, a := range run.History {
		if d := a.Intended.Sub(removed); run.PhaseAt(a.Intended) == string(definition.During) && d >= 0 {
			t.Fatalf("request %s sent %v after the after phase began counted in during", a.OrderID, d)
		}
	}
	if got := v.Phases[report.PhaseAfter].Requests; got != after || after == 0 {
		t.Fatalf("after phase: the load generator counted %d requests, the phase of their send times says %d", got, after)
	}
	if want := 40 * (6 - lr.AfterOffset); float64(after) > want+5 {
		t.Errorf("after phase: %d requests; at 40/s from %.3fs to 6s, want about %.0f", after, lr.AfterOffset, want)
	}
	// Traces: every order trace of the after phase began once the fault was off.
	for _, tr := range run.Traces.Orders[string(definition.After)] {
		if tr.Root.Start.Before(faultEnd) {
			t.Fatalf("trace %s began at %.3fs, with the fault on, sorted into the after phase", tr.ID, tr.Root.Start.Sub(run.Start).Seconds())
		}
	}
	if len(run.Traces.Orders[string(definition.After)]) == 0 {
		t.Error("no order trace in the after phase")
	}
	// The counters were read at the after phase's start.
	if rd := run.Readings[string(definition.After)]; rd == nil {
		t.Error("no counter reading at the start of the after phase")
	}
	if h := v.Hypotheses; len(h) != 1 || h[0].Verdict != report.VerdictPass {
		t.Errorf("hypotheses = %+v: want the after phase judged", h)
	}
	var text strings.Builder
	if err := report.Text(&text, res.Report); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "late removal: slow-off (latency on user) came off") {
		t.Errorf("the text report does not note the late removal:\n%s", text.String())
	}
	schematest.ValidateDir(t, res.Dir)
}
