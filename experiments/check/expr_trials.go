package check

import (
	"fmt"
	"strings"
)

// Truth is a three-valued verdict: a hypothesis judged over several
// trials holds, fails, or cannot be told apart from its bound.
type Truth int

// Truth values.
const (
	False Truth = iota
	True
	Unknown // the trials do not decide: an interval straddles a bound, or trials disagree
)

func (t Truth) String() string {
	switch t {
	case True:
		return "true"
	case False:
		return "false"
	}
	return "unknown"
}

// Estimate is what an Estimator makes of the trials' values of one side
// of a comparison: a mean and the interval the true value lies in at the
// estimator's confidence. One trial gives a point (Low = High = Mean).
type Estimate struct {
	Mean, Low, High float64
}

// Estimator turns the per-trial values of a number into an Estimate; the
// runner's is experiments/stats.MeanInterval at 95%.
type Estimator func(values []float64) Estimate

// Comparison is one numeric comparison of an expression as judged over
// trials: the left side (minus the scaled right side, when the bound is
// another metric) against its bound.
type Comparison struct {
	Expr   string     // the comparison as written, e.g. order.latency.p99 < 250ms
	Metric string     // the left-hand metric as written
	Type   MetricType // its type (durations are in seconds here)
	Op     string
	Bound  float64 // the literal; when Relative, the offset (0 without one)
	// Relative is set when the bound is another metric: Values are then
	// left − factor·right, compared with the offset (e.g. 200ms of
	// order.latency.p99 < before.order.latency.p99 + 200ms).
	Relative bool
	Right    string    // when Relative, the right-hand metric as written
	Factor   float64   // when Relative, its factor (1 when none is written)
	Values   []float64 // per trial
	Estimate Estimate
	Truth    Truth
}

// Describe renders the comparison's estimate for a report: the mean with
// its interval in the metric's unit and the bound, e.g.
// "order.latency.p99 = 212ms [180ms, 244ms] < 250ms".
func (c Comparison) Describe() string {
	f := func(x float64) string { return FormatValue(c.Type, NumberValue(x)) }
	name := c.Metric
	if c.Relative {
		name = "(" + c.Expr + ") left − right"
	}
	s := name + " = " + f(c.Estimate.Mean)
	if c.Estimate.Low != c.Estimate.High {
		s += " [" + f(c.Estimate.Low) + ", " + f(c.Estimate.High) + "]"
	}
	return s + " " + c.Op + " " + f(c.Bound)
}

// EvalTrials judges e over the environments of several trials of one
// variant. A numeric comparison with a bound (a literal, or another
// metric times a factor) is decided on the Estimate of its per-trial
// values: for <, true when the whole interval is below the bound, false
// when the whole interval is at or above it, Unknown when it straddles
// (and alike for <=, >, >=). Any other test (booleans, strings, sets,
// == and !=) is decided trial by trial: true when every trial says true,
// false when every trial says false, Unknown otherwise. and, or and not
// follow Kleene's three-valued logic. With one trial the result is
// Eval's exactly. err reports a metric some trial has no value for: no
// evidence, no verdict (the result is then False).
func EvalTrials(e Expr, envs []Env, est Estimator) (Truth, []Comparison, error) {
	if len(envs) == 0 {
		return False, nil, fmt.Errorf("no trial to judge")
	}
	var cmps []Comparison
	t, err := evalTrials(e, envs, est, &cmps)
	if err != nil {
		return False, cmps, err
	}
	return t, cmps, nil
}

func evalTrials(e Expr, envs []Env, est Estimator, cmps *[]Comparison) (Truth, error) {
	switch x := e.(type) {
	case *exprLogic:
		l, err := evalTrials(x.l, envs, est, cmps)
		if err != nil {
			return False, err
		}
		r, err := evalTrials(x.r, envs, est, cmps)
		if err != nil {
			return False, err
		}
		if x.op == "and" {
			return kleeneAnd(l, r), nil
		}
		return kleeneNot(kleeneAnd(kleeneNot(l), kleeneNot(r))), nil
	case *exprNot:
		v, err := evalTrials(x.x, envs, est, cmps)
		return kleeneNot(v), err
	case *exprParen:
		return evalTrials(x.x, envs, est, cmps)
	case *exprCompare:
		if x.m.info.Type.numeric() && x.op != "==" && x.op != "!=" {
			return compareTrials(x, envs, est, cmps)
		}
	}
	// Decided in each trial on its own.
	seen := map[bool]bool{}
	for _, env := range envs {
		var obs []string
		ok, err := exprEval(e, env, &obs)
		if err != nil {
			return False, err
		}
		seen[ok] = true
	}
	switch {
	case seen[true] && seen[false]:
		return Unknown, nil
	case seen[true]:
		return True, nil
	}
	return False, nil
}

func compareTrials(x *exprCompare, envs []Env, est Estimator, cmps *[]Comparison) (Truth, error) {
	c := comparisonOf(x)
	for _, env := range envs {
		var obs []string
		v, err := exprLookup(x.m, env, &obs)
		if err != nil {
			return False, err
		}
		n := v.Num
		if c.Relative {
			r, err := exprLookup(x.rhs, env, &obs)
			if err != nil {
				return False, err
			}
			n -= x.factor * r.Num
		}
		c.Values = append(c.Values, n)
	}
	c.Estimate = est(c.Values)
	if !c.Relative && c.Type != TypeNumber { // durations, counts, rates are never below 0; ratios never above 1
		c.Estimate.Low = max(0, c.Estimate.Low)
		if c.Type == TypeRatio {
			c.Estimate.High = min(1, c.Estimate.High)
		}
	}
	lo, hi := c.Estimate.Low, c.Estimate.High
	if len(c.Values) == 1 {
		lo, hi = c.Values[0], c.Values[0] // one trial: exactly Eval's verdict
	}
	switch {
	case exprCmp(lo, x.op, c.Bound) && exprCmp(hi, x.op, c.Bound):
		c.Truth = True
	case !exprCmp(lo, x.op, c.Bound) && !exprCmp(hi, x.op, c.Bound):
		c.Truth = False
	default:
		c.Truth = Unknown
	}
	*cmps = append(*cmps, c)
	return c.Truth, nil
}

func kleeneNot(t Truth) Truth {
	switch t {
	case True:
		return False
	case False:
		return True
	}
	return Unknown
}

func kleeneAnd(a, b Truth) Truth {
	switch {
	case a == False || b == False:
		return False
	case a == True && b == True:
		return True
	}
	return Unknown
}

// comparisonOf is the Comparison of x as written, without values.
func comparisonOf(x *exprCompare) Comparison {
	c := Comparison{Expr: x.String(), Metric: x.m.String(), Type: x.m.info.Type, Op: x.op, Relative: x.lit == nil}
	switch {
	case !c.Relative:
		c.Bound = x.lit.num
	default:
		c.Right, c.Factor = x.rhs.String(), x.factor
		if x.offset != nil {
			c.Bound = x.offset.num
		}
	}
	return c
}

// bounded says whether x is a numeric comparison with a literal bound:
// metric OP literal, or metric OP [factor *] metric + offset (the offset
// is its bound).
func bounded(x *exprCompare) bool {
	return x.m.info.Type.numeric() && x.op != "==" && x.op != "!=" && (x.lit != nil || x.offset != nil)
}

// Bounds lists the numeric comparisons of e with a literal bound, in
// order, for calibration: each as written and its bound (a relative
// comparison's offset: 200ms of p99 < before.p99 + 200ms).
func Bounds(e Expr) []Comparison {
	var out []Comparison
	var walk func(Expr)
	walk = func(e Expr) {
		switch x := e.(type) {
		case *exprLogic:
			walk(x.l)
			walk(x.r)
		case *exprNot:
			walk(x.x)
		case *exprParen:
			walk(x.x)
		case *exprCompare:
			if bounded(x) {
				out = append(out, comparisonOf(x))
			}
		}
	}
	walk(e)
	return out
}

// WithBounds renders e in canonical form with the literal bounds of its
// numeric comparisons (in the order Bounds lists them) replaced by
// bounds, each written in its metric's unit (FormatValue's forms, which
// parse back). A NaN keeps the bound as written.
func WithBounds(e Expr, bounds []float64) string {
	i := 0
	var render func(Expr) string
	render = func(e Expr) string {
		switch x := e.(type) {
		case *exprLogic:
			return render(x.l) + " " + x.op + " " + render(x.r)
		case *exprNot:
			return "not " + render(x.x)
		case *exprParen:
			return "(" + render(x.x) + ")"
		case *exprCompare:
			if bounded(x) {
				lit := x.lit
				if lit == nil {
					lit = x.offset
				}
				b := lit.text
				if i < len(bounds) && bounds[i] == bounds[i] {
					b = strings.ReplaceAll(FormatValue(x.m.info.Type, NumberValue(bounds[i])), "µ", "u")
				}
				i++
				if x.lit != nil {
					return x.m.String() + " " + x.op + " " + b
				}
				y := *x
				y.offset = &exprLiteral{text: b}
				return y.String()
			}
		}
		return e.String()
	}
	return render(e)
}
