package runner

import (
	"fmt"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
)

// evaluate checks every hypothesis that applies to the variant. When
// afterUnjudged says why the after phase cannot be judged (a late fault
// removal left it too short: unjudgedAfter), the hypotheses that read it
// are inconclusive with that reason, not judged on what little is left.
func evaluate(exp *definition.Experiment, variant string, target bool, m *metrics.Values, afterUnjudged string) []report.Hypothesis {
	var out []report.Hypothesis
	for _, h := range exp.Hypotheses {
		if h.Variant != "" && h.Variant != variant && !target {
			continue
		}
		rh := report.Hypothesis{Name: h.Name, Expr: h.Check, Phase: string(h.When), Variant: variant, Abort: h.Abort}
		switch {
		case target && h.Variant != "":
			rh.Skipped, rh.SkipReason = true, fmt.Sprintf("bound to variant %s; a --target run has no variants", h.Variant)
		case !phaseHasTime(exp, h.When):
			rh.Skipped, rh.SkipReason = true, fmt.Sprintf("the %s phase is empty in this experiment", h.When)
		case afterUnjudged != "" && readsAfter(h):
			rh.Verdict, rh.SkipReason = report.VerdictInconclusive, afterUnjudged
		default:
			ok, observed, err := check.Eval(h.Expr, m.Env(string(h.When)))
			rh.Passed, rh.Observed = ok && err == nil, observed
			if err != nil {
				rh.Observed = "no value: " + err.Error()
			}
		}
		out = append(out, rh)
	}
	return out
}

// notJudged lists the hypotheses that apply to the variant, each skipped
// for reason.
func notJudged(exp *definition.Experiment, variant string, target bool, reason string) []report.Hypothesis {
	var out []report.Hypothesis
	for _, h := range exp.Hypotheses {
		if h.Variant != "" && h.Variant != variant && !target {
			continue
		}
		out = append(out, report.Hypothesis{
			Name: h.Name, Expr: h.Check, Phase: string(h.When), Variant: variant, Abort: h.Abort,
			Skipped: true, SkipReason: reason,
		})
	}
	return out
}

func phaseHasTime(exp *definition.Experiment, p definition.Phase) bool {
	return !exp.Window(p).Empty()
}

func verdictWord(ok bool) string {
	if ok {
		return "hypotheses held"
	}
	return "a hypothesis failed"
}
