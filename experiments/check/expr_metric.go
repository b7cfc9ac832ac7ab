package check

import "strings"

// MetricType is the type of a metric's value; it decides which literals a
// hypothesis may compare the metric with.
type MetricType string

// Metric types.
const (
	TypeDuration MetricType = "duration" // compared with durations: 150ms, 1.5s, 300us
	TypeRatio    MetricType = "ratio"    // 0..1, compared with percentages (99%) or fractions (0.99)
	TypeCount    MetricType = "count"    // a whole number of things
	TypeRate     MetricType = "rate"     // per second: 45, 45/s, 2700/m
	TypeNumber   MetricType = "number"   // a plain number
	TypeBool     MetricType = "bool"     // used bare (or with not), or compared with true/false
	TypeString   MetricType = "string"   // compared with == or != and a name
	TypeSet      MetricType = "set"      // tested with contains / not contains
)

// numeric reports whether values of the type are numbers.
func (t MetricType) numeric() bool {
	switch t {
	case TypeDuration, TypeRatio, TypeCount, TypeRate, TypeNumber:
		return true
	}
	return false
}

// MetricInfo is what the expression language knows of a metric.
type MetricInfo struct {
	// Name is the metric's name; in a pattern, placeholders in angle
	// brackets (<op>, <link>, <consumer>, <proxy>, <CODE>) stand for one
	// dotted segment each.
	Name string
	Type MetricType
	Doc  string
	// Pattern reports whether Name contains placeholders.
	Pattern bool
	// Arg names the one argument the metric takes in parentheses, as in
	// trace.critical_path(order.PlaceOrder); "" when it takes none.
	Arg string
	// WholeRun reports whether the metric is one figure for the whole run
	// (a fault window, a total counted after the drain, a time measured
	// from the heal) rather than a figure computed from each phase's own
	// window. A whole-run metric is read in a hypothesis with when: always
	// and never bound to a phase (see CheckWhen).
	WholeRun bool
	// Traces reports whether the metric is computed from the spans the
	// runner captured: in a phase without a captured order trace it has
	// no value, whatever it would read on nothing (no evidence, no pass).
	Traces bool
}

// Vocabulary is the set of metrics expressions may read, given to
// ParseExpr: experiments/metrics holds the one the testbed computes.
type Vocabulary interface {
	// Lookup finds a metric by its name as written, without phase prefix
	// or argument: a concrete name such as breaker.user.opened returns the
	// MetricInfo of its pattern, breaker.<link>.opened.
	Lookup(name string) (MetricInfo, bool)
	// Near returns what an unknown name may have meant, for the error's
	// hint: up to three known names close to it, else the metrics of the
	// family its first segment names.
	Near(name string) (similar, family []string)
}

// Phase prefixes a metric can carry to read another phase than the
// hypothesis's own.
var exprPhasePrefixes = []string{"before", "during", "after"}

// SplitPhase splits a metric name as written in an expression into its
// phase prefix ("before", "during", "after" or "") and the metric name.
func SplitPhase(metric string) (phase, name string) {
	for _, p := range exprPhasePrefixes {
		if rest, ok := strings.CutPrefix(metric, p+"."); ok {
			return p, rest
		}
	}
	return "", metric
}
