package check

import "fmt"

// This file keeps whole-run metrics out of phases. A metric marked
// WholeRun in the vocabulary (a fault window, a consistency total counted
// after the drain, a time measured from the heal) has one value for the
// run; reading it "before" or "during" would show a figure that does not
// belong to that phase, so a hypothesis may read it only with when:
// always, and never with a before./during./after. prefix.

// WhenAlways is the hypothesis phase that means the whole run.
const WhenAlways = "always"

// CheckWhen checks that an expression evaluated in the phase when
// ("before", "during", "after" or "always") binds no whole-run metric to a
// phase. The error, if any, is an *ExprError at the metric's column, with
// a hint naming the form that works.
func CheckWhen(e Expr, when string) error {
	for _, m := range exprMetricRefs(e) {
		if !m.info.WholeRun {
			continue
		}
		switch {
		case m.phase != "":
			return &ExprError{
				Col:  m.col,
				Msg:  fmt.Sprintf("%s is one figure for the whole run: it has no %s value", m.name, m.phase),
				Hint: fmt.Sprintf("write %s in a hypothesis with when: always", m.name),
			}
		case when != WhenAlways:
			return &ExprError{
				Col: m.col,
				Msg: fmt.Sprintf("%s is one figure for the whole run: it cannot be checked when: %s", m.name, when),
				Hint: "check it in a hypothesis with when: always; a metric of a phase reads there with its prefix, e.g. " +
					when + ".order.success_rate",
			}
		}
	}
	return nil
}

// exprMetricRefs lists every metric reference of e, left to right.
func exprMetricRefs(e Expr) []*exprMetric {
	switch x := e.(type) {
	case *exprLogic:
		return append(exprMetricRefs(x.l), exprMetricRefs(x.r)...)
	case *exprNot:
		return exprMetricRefs(x.x)
	case *exprParen:
		return exprMetricRefs(x.x)
	case *exprTruth:
		return []*exprMetric{x.m}
	case *exprContains:
		return []*exprMetric{x.m}
	case *exprCompare:
		if x.rhs != nil {
			return []*exprMetric{x.m, x.rhs}
		}
		return []*exprMetric{x.m}
	}
	return nil
}
