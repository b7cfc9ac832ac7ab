// Package metrics defines every metric a hypothesis can read, each family
// where it is computed: its name pattern (breaker.<link>.opened), type,
// unit, doc line, and the function that computes it from a Run, the plain
// data the runner measured. The vocabulary the loader checks hypotheses
// against (Vocabulary, for check.ParseExpr) is the list of the families'
// metrics, so a metric cannot be documented and not computed by its
// family.
//
//	runner ── fills ──▶ Run ── Compute ──▶ Values ──▶ check.Eval, report.json
//	                    │                   ▲
//	                    └─ each Family ─────┘ (one file per family)
//
// The package does no I/O and imports neither the runner nor the loader:
// the loader (experiments/definition) reads the vocabulary from here.
package metrics

import (
	"maps"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/tracing"
)

// Phase names a window of the run metrics are kept for: the three phases
// of the schedule and Always, the whole run.
const (
	Before = "before"
	During = "during"
	After  = "after"
	Always = check.WhenAlways
)

// Phases lists every phase metrics are kept for, Always last.
var Phases = []string{Before, During, After, Always}

// Family is one family of metrics: the names it produces and the function
// that computes them.
type Family struct {
	// Name says what the family measures, in a few words.
	Name string
	// Metrics are the metrics the family produces, in documentation order.
	Metrics []check.MetricInfo
	// Compute puts the family's values for the run into out. A metric
	// without a value (nothing to measure it on) is left out.
	Compute func(r *Run, out *Values)
}

// Unit is how report.json writes a metric of type t: durations in
// milliseconds, ratios as fractions 0..1, rates per second, booleans as
// 0 or 1; counts and numbers as they are. Strings and sets are not in
// report.json ("").
func Unit(t check.MetricType) string {
	switch t {
	case check.TypeDuration:
		return "ms"
	case check.TypeRatio:
		return "fraction"
	case check.TypeRate:
		return "1/s"
	case check.TypeBool:
		return "0 or 1"
	case check.TypeCount, check.TypeNumber:
		return "1"
	}
	return ""
}

// Compute computes every family's metrics from the run.
func Compute(r *Run) *Values {
	v := NewValues(r.Traces.Orders)
	for _, f := range families {
		f.Compute(r, v)
	}
	return v
}

// Values holds every value a hypothesis can read, by phase.
type Values struct {
	byPhase map[string]map[string]check.Value
	// orders are the order traces by phase: a metric computed from
	// traces has no value in a phase without one, and
	// trace.critical_path is computed from them when it is read.
	orders map[string][]tracing.Trace
}

// NewValues returns empty values for every phase, over the order traces
// of each phase (nil: none were captured).
func NewValues(orders map[string][]tracing.Trace) *Values {
	v := &Values{byPhase: map[string]map[string]check.Value{}, orders: orders}
	for _, p := range Phases {
		v.byPhase[p] = map[string]check.Value{}
	}
	return v
}

// Set sets a metric of one phase.
func (v *Values) Set(phase, name string, x check.Value) { v.byPhase[phase][name] = x }

// SetRun sets a whole-run metric (check.MetricInfo.WholeRun): it has one
// value, under Always, and none in the phases.
func (v *Values) SetRun(name string, x check.Value) { v.byPhase[Always][name] = x }

// Names lists the metrics that have a value in phase, sorted.
func (v *Values) Names(phase string) []string { return slices.Sorted(maps.Keys(v.byPhase[phase])) }

// Env is the values seen from one phase: what check.Eval reads. A name
// with a phase prefix (before.order.latency.p99) reads that phase.
func (v *Values) Env(phase string) check.Env { return env{v: v, phase: phase} }

type env struct {
	v     *Values
	phase string
}

// Lookup implements check.Env.
func (e env) Lookup(metric, arg string) (check.Value, bool) {
	phase, name := check.SplitPhase(metric)
	if phase == "" {
		phase = e.phase
	}
	return e.v.Get(phase, name, arg)
}

// Get reads one metric of one phase, with its argument if it takes one.
func (v *Values) Get(phase, name, arg string) (check.Value, bool) {
	if !v.evidence(phase, name) {
		return check.Value{}, false
	}
	if name == criticalPath {
		return v.criticalPath(phase, arg)
	}
	if x, ok := v.byPhase[phase][name]; ok {
		return x, true
	}
	// <op>.errors.<CODE> for a code that never happened is zero.
	if info, ok := Lookup(name); ok && info.Name == opErrorsByCode {
		return check.NumberValue(0), true
	}
	return check.Value{}, false
}

// evidence reports whether a metric can have a value in a phase: one
// computed from traces (check.MetricInfo.Traces) has none in a phase
// without a captured order trace, whatever it would read on nothing (no
// consumer on the critical path of no order is no proof of isolation).
func (v *Values) evidence(phase, name string) bool {
	info, ok := Lookup(name)
	return !ok || !info.Traces || len(v.orders[phase]) > 0
}

// Scalars flattens the values into numbers for report.json, keyed
// "<phase>.<metric>", in the unit of their type (Unit): durations in
// milliseconds, ratios as fractions, booleans as 0 or 1; strings and sets
// are left out.
func (v *Values) Scalars() map[string]float64 {
	out := map[string]float64{}
	for _, p := range Phases {
		for _, name := range v.Names(p) {
			x := v.byPhase[p][name]
			if !v.evidence(p, name) {
				continue
			}
			key := p + "." + name
			switch x.Kind {
			case check.KindNumber:
				n := x.Num
				if info, ok := Lookup(name); ok && Unit(info.Type) == "ms" { // durations are kept in seconds
					n *= 1000
				}
				out[key] = n
			case check.KindBool:
				out[key] = 0
				if x.Bool {
					out[key] = 1
				}
			}
		}
	}
	return out
}

// Quantile returns the q quantile (0..1) of sorted durations, 0 of none.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// count is a whole number as a value.
func count[N int | int64](n N) check.Value { return check.NumberValue(float64(n)) }
