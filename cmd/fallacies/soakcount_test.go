package main

import (
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
)

// A soak counts an inconclusive hypothesis (an interval straddling its
// bound over trials, or not judged after a late fault removal) as
// inconclusive, the exit 4 of fallacies run, never as failed; and neither
// makes the soak fail, since its load is multiplied.
func TestSoakCountsInconclusiveApart(t *testing.T) {
	hyp := func(expr string, passed, skipped bool, verdict, skipReason string) report.Hypothesis {
		return report.Hypothesis{Expr: expr, Phase: report.PhaseDuring, Passed: passed, Skipped: skipped, Verdict: verdict, SkipReason: skipReason}
	}
	rep := &report.Report{Experiment: "x", Trials: 3, Variants: []report.Variant{{
		Name: "resilient",
		Phases: map[string]report.Phase{
			report.PhaseBefore: {Requests: 10}, report.PhaseDuring: {Requests: 20}, report.PhaseAfter: {Requests: 30},
		},
		Consistency: report.Consistency{Acknowledged: 55},
		Hypotheses: []report.Hypothesis{
			hyp("a < 1", true, false, report.VerdictPass, ""),
			hyp("b < 1", false, false, report.VerdictFail, ""),
			hyp("c < 1", false, false, report.VerdictInconclusive, ""),
			hyp("d < 1", false, false, report.VerdictInconclusive, "the after phase kept 1s of its 10s"),
			hyp("e < 1", false, true, report.VerdictSkipped, "no fault window"),
		},
	}}}
	var s soakSample
	countReport(&s, rep)
	if s.failed != 1 || s.inconclusive != 2 {
		t.Errorf("failed %d, inconclusive %d; want 1 failed and 2 inconclusive", s.failed, s.inconclusive)
	}
	if s.orders != 60 || s.acked != 55 {
		t.Errorf("orders %d, acknowledged %d; want 60 and 55", s.orders, s.acked)
	}

	base, last := s, s
	base.round, last.round = 1, 2
	v := judgeSoak([]soakSample{base, last}, 1)
	if v.failed != 2 || v.inconclusive != 4 {
		t.Errorf("verdict failed %d, inconclusive %d; want 2 and 4", v.failed, v.inconclusive)
	}
	if !v.ok() {
		t.Errorf("a soak with failed or inconclusive hypotheses and nothing grown or lost failed: %s", v.summary())
	}
	var out strings.Builder
	writeVerdict(&out, v)
	if !strings.Contains(out.String(), "hypotheses that failed 2, inconclusive 4") {
		t.Errorf("verdict does not tell failed from inconclusive:\n%s", out.String())
	}
}
