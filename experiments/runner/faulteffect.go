package runner

import (
	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/compare"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
)

// NaiveVariant is the variant of a report a fault must visibly hurt:
// the one named naive, else the first (the fault effect's, and the one
// whose hypotheses calibrate --control expects to need the fault).
func NaiveVariant(rep *report.Report) string {
	for _, v := range rep.Variants {
		if v.Name == "naive" {
			return v.Name
		}
	}
	if len(rep.Variants) > 0 {
		return rep.Variants[0].Name
	}
	return ""
}

// faultEffect says whether the fault changed the naive variant
// measurably (compare.FaultEffect): the request figures and every
// numeric metric its hypotheses read during the fault, during against
// before; the metrics they read over the whole run, against the other
// variants. Nil for an experiment without faults, a run without a
// variant that ran to its end, or nothing testable.
func faultEffect(exp *definition.Experiment, rep *report.Report) *report.FaultEffect {
	naive := NaiveVariant(rep)
	if len(exp.Faults) == 0 || naive == "" || rep.Interrupted != nil {
		return nil
	}
	for _, v := range rep.Variants {
		if v.Name == naive && (v.Error != "" || v.Stopped != nil) {
			return nil
		}
	}
	var during, across []compare.Figure
	for _, h := range exp.Hypotheses {
		if h.Variant != naive {
			continue
		}
		for _, written := range h.Expr.Metrics() {
			phase, name := check.SplitPhase(written)
			if phase == "" {
				phase = string(h.When)
			}
			info, ok := metrics.Lookup(name)
			if !ok || metrics.Unit(info.Type) == "" {
				continue // strings and sets are not in report.json
			}
			f := compare.Figure{Metric: name, Unit: metrics.Unit(info.Type), Count: info.Type == check.TypeCount}
			switch phase {
			case string(definition.During):
				during = append(during, f)
				if count, ok := metrics.CountBehind(name); ok {
					during = append(during, compare.Figure{Metric: count, Unit: metrics.Unit(check.TypeCount), Count: true})
				}
				f.Phase = phase
				across = append(across, f)
			case string(definition.Always):
				f.Phase = phase
				across = append(across, f)
			}
		}
	}
	return compare.FaultEffect(rep, naive, during, across)
}
