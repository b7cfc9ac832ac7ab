package explore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
)

// scripted is a RunFunc that judges each run by a rule instead of running
// it: the search's bookkeeping (controls, findings, stop) is what is
// tested here; the e2e tests run the real system.
func scripted(fails func(exp *definition.Experiment) bool) RunFunc {
	return func(_ context.Context, exp *definition.Experiment, h Hooks) (*report.Report, error) {
		if h.Spans != nil {
			var spans = order("a", false)
			h.Spans(exp.Variants[0].Name, spans, proxies)
		}
		v := report.Variant{Name: exp.Variants[0].Name, Passed: true}
		for _, hyp := range exp.Hypotheses {
			r := report.Hypothesis{Name: hyp.Name, Expr: hyp.Check, Phase: string(hyp.When), Passed: true, Observed: "0"}
			if hyp.Name == "no lost event" && fails(exp) {
				r.Passed, r.Observed, v.Passed = false, "events.lost = 7", false
			}
			v.Hypotheses = append(v.Hypotheses, r)
		}
		return &report.Report{Experiment: exp.Name, Variants: []report.Variant{v}}, nil
	}
}

// inert reports whether every fault of exp is the inert one: a control.
func inert(exp *definition.Experiment) bool {
	kind, _, _ := faults.Inert()
	return len(exp.Faults) > 0 && !slices.ContainsFunc(exp.Faults, func(f faults.Fault) bool { return f.Kind != kind })
}

// TestControlTellsTheMachineFromTheFault: a scenario that fails while
// its fault-free control fails the same hypothesis is no finding (the
// machine or the system failed it, not the fault); one whose control
// holds is, and --stop-on ends the search on it.
func TestControlTellsTheMachineFromTheFault(t *testing.T) {
	for _, tc := range []struct {
		name        string
		controlFail bool
		findings    int
		outcome     string
		parallel    int
	}{
		{"control holds", false, 1, Failed, 1},
		{"control fails too", true, 0, Unjudged, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := scripted(func(exp *definition.Experiment) bool {
				if inert(exp) {
					return tc.controlFail
				}
				return len(exp.Faults) > 0
			})
			res, err := Explore(t.Context(), Options{Run: run, Out: t.TempDir(), MaxFaults: 1, Only: []string{"user"},
				StopOn: []string{"no lost event"}, Budget: time.Minute, Parallel: tc.parallel})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Findings) != tc.findings {
				t.Fatalf("findings %+v, want %d", res.Findings, tc.findings)
			}
			if len(res.Scenarios) == 0 || res.Scenarios[0].Outcome != tc.outcome {
				t.Fatalf("first scenario %+v, want %s", res.Scenarios, tc.outcome)
			}
			if res.Counts.Controls == 0 {
				t.Error("no control run counted")
			}
			if tc.controlFail {
				if res.Stopped != "" || res.Counts.Run != res.Counts.Planned {
					t.Errorf("stopped %q after %d of %d scenarios: a control failure is no finding to stop on", res.Stopped, res.Counts.Run, res.Counts.Planned)
				}
				return
			}
			if res.Counts.Run != 1 || res.Stopped == "" {
				t.Errorf("ran %d scenarios, stopped %q: want the search stopped at its first finding", res.Counts.Run, res.Stopped)
			}
		})
	}
}

// TestNotJudgedIsUnjudged: a run whose after phase the runner could not
// judge (a fault came off so late that too little of it was left) is
// unjudged, not tolerated, unless another hypothesis failed on its own
// clean phase.
func TestNotJudgedIsUnjudged(t *testing.T) {
	reason := "not judged: f1 (reset_peer on nats-ledger) came off 2.9s after its scheduled end: too short to judge"
	rep := func(other bool) *report.Report {
		hs := []report.Hypothesis{
			{Name: "recovers", Phase: "after", Verdict: report.VerdictInconclusive, SkipReason: reason},
			{Name: "fast", Phase: "during", Passed: !other, Verdict: report.HypothesisVerdict(!other, false, false), Observed: "300ms"},
		}
		return &report.Report{Variants: []report.Variant{{Hypotheses: hs}}}
	}
	if j := judge(rep(false)); j.outcome != Unjudged || j.note != reason {
		t.Errorf("nothing failed, after not judged: %+v, want unjudged with the runner's reason", j)
	}
	if j := judge(rep(true)); j.outcome != Failed || len(j.failed) != 1 || j.failed[0].Name != "fast" {
		t.Errorf("during failed, after not judged: %+v, want failed on the during hypothesis alone", j)
	}
}
