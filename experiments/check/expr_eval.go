package check

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ValueKind is the representation of a metric's value.
type ValueKind int

// Value kinds. Every numeric metric type (duration, ratio, count, rate,
// number) is a KindNumber.
const (
	KindNumber ValueKind = iota + 1
	KindString
	KindSet
	KindBool
)

// String names the kind.
func (k ValueKind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	case KindSet:
		return "set"
	case KindBool:
		return "bool"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is the value of one metric in one phase. Num holds durations in
// seconds and ratios as 0..1.
type Value struct {
	Kind ValueKind
	Num  float64
	Str  string
	Set  []string
	Bool bool
}

// NumberValue returns a numeric value (a count, rate, ratio or number).
func NumberValue(f float64) Value { return Value{Kind: KindNumber, Num: f} }

// DurationValue returns a duration value, stored in seconds.
func DurationValue(d time.Duration) Value { return Value{Kind: KindNumber, Num: d.Seconds()} }

// StringValue returns a string value.
func StringValue(s string) Value { return Value{Kind: KindString, Str: s} }

// SetValue returns a set value.
func SetValue(members ...string) Value { return Value{Kind: KindSet, Set: members} }

// BoolValue returns a boolean value.
func BoolValue(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Env gives an expression the metrics of a run. Lookup receives the metric
// as written, with any phase prefix ("before.order.latency.p99"; without
// prefix it means the phase of the hypothesis, see SplitPhase), and the
// call argument or "". It reports false when the metric has no value
// (for example a percentile of a phase without requests). Implementations
// need not be safe for concurrent use; Eval calls Lookup from the calling
// goroutine only.
type Env interface {
	Lookup(metric string, arg string) (Value, bool)
}

// Eval evaluates the expression; ok is false whenever err is not nil.
// observed describes what the left-hand
// side (and any right-hand metric) of every test measured, for example
// "order.latency.p99 = 312.4ms", joined with "; ". Both sides of and/or
// are evaluated so that observed is complete. err reports a metric the
// Env does not have or whose value has the wrong kind.
func Eval(e Expr, env Env) (ok bool, observed string, err error) {
	var obs []string
	ok, err = exprEval(e, env, &obs)
	// A metric without a value decides nothing, negated or not: no
	// evidence, no pass.
	return ok && err == nil, strings.Join(exprUnique(obs), "; "), err
}

func exprEval(e Expr, env Env, obs *[]string) (bool, error) {
	switch x := e.(type) {
	case *exprLogic:
		l, err := exprEval(x.l, env, obs)
		if err != nil {
			return false, err
		}
		r, err := exprEval(x.r, env, obs)
		if err != nil {
			return false, err
		}
		if x.op == "and" {
			return l && r, nil
		}
		return l || r, nil
	case *exprNot:
		v, err := exprEval(x.x, env, obs)
		return !v, err
	case *exprParen:
		return exprEval(x.x, env, obs)
	case *exprTruth:
		v, err := exprLookup(x.m, env, obs)
		if err != nil {
			return false, err
		}
		return v.Bool, nil
	case *exprContains:
		v, err := exprLookup(x.m, env, obs)
		if err != nil {
			return false, err
		}
		return slices.Contains(v.Set, x.value) != x.neg, nil
	case *exprCompare:
		v, err := exprLookup(x.m, env, obs)
		if err != nil {
			return false, err
		}
		if x.lit != nil {
			switch x.lit.kind {
			case KindBool:
				return (v.Bool == x.lit.b) == (x.op == "=="), nil
			case KindString:
				return (v.Str == x.lit.str) == (x.op == "=="), nil
			}
			return exprCmp(v.Num, x.op, x.lit.num), nil
		}
		r, err := exprLookup(x.rhs, env, obs)
		if err != nil {
			return false, err
		}
		rhs := x.factor * r.Num
		if x.offset != nil {
			rhs += x.offset.num
		}
		return exprCmp(v.Num, x.op, rhs), nil
	}
	return false, fmt.Errorf("evaluate %T: not an expression of this package", e)
}

// Compare says whether l op r holds for one of the comparison operators
// of the language (<, <=, >, >=, ==, !=).
func Compare(l float64, op string, r float64) bool { return exprCmp(l, op, r) }

func exprCmp(l float64, op string, r float64) bool {
	switch op {
	case "<":
		return l < r
	case "<=":
		return l <= r
	case ">":
		return l > r
	case ">=":
		return l >= r
	case "==":
		return l == r
	case "!=":
		return l != r
	}
	return false
}

func exprWantKind(t MetricType) ValueKind {
	switch t {
	case TypeBool:
		return KindBool
	case TypeString:
		return KindString
	case TypeSet:
		return KindSet
	}
	return KindNumber
}

func exprLookup(m *exprMetric, env Env, obs *[]string) (Value, error) {
	v, ok := env.Lookup(m.written, m.arg)
	if !ok {
		*obs = append(*obs, m.String()+" = (no data)")
		return Value{}, fmt.Errorf("metric %s: no value", m.String())
	}
	if want := exprWantKind(m.info.Type); v.Kind != want {
		return Value{}, fmt.Errorf("metric %s: value is a %s, want a %s", m.String(), v.Kind, want)
	}
	*obs = append(*obs, m.String()+" = "+FormatValue(m.info.Type, v))
	return v, nil
}

// FormatValue renders a value for reports in the units of its metric type:
// 312.4ms, 99.2%, 48.5/s, 1204, a name, or a set as [a, b].
func FormatValue(t MetricType, v Value) string {
	switch v.Kind {
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindString:
		return v.Str
	case KindSet:
		return "[" + strings.Join(v.Set, ", ") + "]"
	}
	f := v.Num
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	switch t {
	case TypeDuration:
		return exprFormatDuration(f)
	case TypeRatio:
		return exprRound(f*100, 2) + "%"
	case TypeRate:
		return exprRound(f, 1) + "/s"
	case TypeCount:
		return exprRound(f, 2)
	}
	return exprRound(f, 3)
}

func exprRound(f float64, decimals int) string {
	p := math.Pow(10, float64(decimals))
	return strconv.FormatFloat(math.Round(f*p)/p, 'f', -1, 64)
}

func exprFormatDuration(sec float64) string {
	a := math.Abs(sec)
	switch {
	case a == 0:
		return "0s"
	case a < 1e-3:
		return exprRound(sec*1e6, 1) + "µs"
	case a < 1:
		return exprRound(sec*1e3, 1) + "ms"
	}
	return exprRound(sec, 3) + "s"
}
