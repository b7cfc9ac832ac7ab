package runner

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/report"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/tracing"
)

// phases are the phase names metrics are kept for; "always" is the run.
var phases = []string{string(definition.Before), string(definition.During), string(definition.After), string(definition.Always)}

// ops maps the metric prefix of each operation to the load generator's name.
var ops = map[string]load.Op{"order": load.OpPlaceOrder, "get_order": load.OpGetOrder}

// metrics holds every value a hypothesis can read, by phase.
type metrics struct {
	values map[string]map[string]check.Value
	traces traceSet
}

// env is the metrics seen from one phase: what check.Eval reads.
type env struct {
	m     *metrics
	phase string
}

// Lookup implements check.Env.
func (e env) Lookup(metric, arg string) (check.Value, bool) {
	phase, name := check.SplitPhase(metric)
	if phase == "" {
		phase = e.phase
	}
	if !e.m.evidence(phase, name) {
		return check.Value{}, false
	}
	if name == "trace.critical_path" {
		return e.m.criticalPath(phase, arg)
	}
	if v, ok := e.m.values[phase][name]; ok {
		return v, true
	}
	// <op>.errors.<CODE> for a code that never happened is zero.
	for op := range ops {
		if code, ok := strings.CutPrefix(name, op+".errors."); ok && code != "" && strings.ToUpper(code) == code {
			return check.NumberValue(0), true
		}
	}
	return check.Value{}, false
}

// evidence reports whether a metric can have a value in a phase: one
// computed from traces (check.MetricInfo.Traces) has none in a phase
// without a captured order trace, whatever it would read on nothing (no
// consumer on the critical path of no order is no proof of isolation).
func (m *metrics) evidence(phase, name string) bool {
	info, ok := check.LookupMetric(name)
	return !ok || !info.Traces || len(m.traces.orders[phase]) > 0
}

func (m *metrics) criticalPath(phase, root string) (check.Value, bool) {
	var candidates []tracing.Trace
	for _, t := range m.traces.orders[phase] {
		if root == "" || tracing.ShortName(t.Root) == root {
			candidates = append(candidates, t)
		}
	}
	t, ok := tracing.Slowest(candidates)
	if !ok {
		return check.Value{}, false
	}
	return check.SetValue(tracing.CriticalPathNames(t)...), true
}

// measured is everything a variant measured, the input of computeMetrics.
type measured struct {
	exp       *definition.Experiment
	start     time.Time      // the load's start: offset 0
	faultsEnd time.Time      // when the last fault was removed (zero: no faults)
	faults    []report.Fault // the faults as they really happened
	load      *load.Result
	obs       *observation
	counters  *phaseCounters // the services' counters at the phase boundaries
	cons      check.Consistency
	traces    traceSet
}

// eventPhase names the phase in which something the system did at t
// happened: before the first fault went on, until the last one came off,
// after; the faults as they really happened, as the boundary readings of
// the counters. Without faults it is the schedule's phase.
func (in measured) eventPhase(t time.Time) string {
	if len(in.faults) == 0 {
		return phaseAt(in.exp, t.Sub(in.start))
	}
	first, last := in.faults[0].Start, in.faults[0].End
	for _, f := range in.faults {
		if f.Start.Before(first) {
			first = f.Start
		}
		last = later(last, f.End)
	}
	switch {
	case t.Before(first):
		return string(definition.Before)
	case t.Before(last) || !phaseHasTime(in.exp, definition.After):
		return string(definition.During)
	}
	return string(definition.After)
}

func computeMetrics(in measured) *metrics {
	m := newMetrics(in.traces)
	set := func(phase, name string, v check.Value) { m.values[phase][name] = v }
	num := func(f float64) check.Value { return check.NumberValue(f) }

	// Load, per phase and operation.
	for _, p := range phases {
		lp := p
		if p == string(definition.Always) {
			lp = load.PhaseAll
		}
		for prefix, op := range ops {
			m.putLoad(p, prefix, in.load.Stats(lp, op))
		}
	}

	// The services' counters, per phase.
	m.addCounters(in.counters)

	// Breakers, per phase by when they changed state; how long after the
	// heal they closed, for the whole run.
	if in.obs != nil && in.obs.order != nil {
		for _, l := range in.obs.order.GetLinks() {
			link := l.GetLink()
			opened := map[string]int{}
			closed := map[string]int{}
			var recovery time.Duration = -1
			// Recovery counts from the end of the last fault on the link's
			// own proxy (named like the link), else of the last fault.
			healed := in.faultsEnd
			if e := lastEnd(in.faults, link); !e.IsZero() {
				healed = e
			}
			for _, tr := range l.GetTransitions() {
				at := time.Unix(0, tr.GetAtUnixNano())
				if at.Before(in.start) {
					continue // an earlier run's, on a --target
				}
				p := in.eventPhase(at)
				switch tr.GetTo() {
				case "open":
					opened[p]++
					opened[string(definition.Always)]++
				case "closed":
					closed[p]++
					closed[string(definition.Always)]++
					if !healed.IsZero() && !at.Before(healed) && recovery < 0 {
						recovery = at.Sub(healed)
					}
				}
			}
			for _, p := range phases {
				set(p, "breaker."+link+".opened", num(float64(opened[p])))
				set(p, "breaker."+link+".closed", num(float64(closed[p])))
			}
			switch {
			case recovery >= 0:
				m.setRun("breaker."+link+".recovery_time", check.DurationValue(recovery))
			case opened[string(definition.Always)] == 0:
				m.setRun("breaker."+link+".recovery_time", check.DurationValue(0))
			case l.GetBreakerState() == "closed":
				m.setRun("breaker."+link+".recovery_time", check.DurationValue(0))
			}
		}
	}

	// Consumers: lag by the phase their event was published in, and how
	// long after the last fault they had caught up.
	if in.obs != nil {
		for name, apps := range in.obs.applied {
			lags := map[string][]time.Duration{}
			for _, a := range apps {
				pub, app := time.Unix(0, a.GetPublishedUnixNano()), time.Unix(0, a.GetAppliedUnixNano())
				if a.GetPublishedUnixNano() > 0 {
					p := phaseAt(in.exp, pub.Sub(in.start))
					lags[p] = append(lags[p], app.Sub(pub))
					lags[string(definition.Always)] = append(lags[string(definition.Always)], app.Sub(pub))
				}
			}
			for p, ls := range lags {
				slices.Sort(ls)
				set(p, name+".lag.p50", check.DurationValue(quantile(ls, 0.50)))
				set(p, name+".lag.p99", check.DurationValue(quantile(ls, 0.99)))
				set(p, name+".lag.max", check.DurationValue(ls[len(ls)-1]))
			}
			m.setRun(name+".drain_time", check.DurationValue(drainTime(in, name, apps)))
		}
	}

	// Consistency, after the drain: one figure for the whole run.
	c := in.cons
	m.setRun("orders.acknowledged", num(float64(c.Acknowledged)))
	m.setRun("orders.recovered", num(float64(c.Recovered)))
	m.setRun("events.lost", num(float64(c.Events.Lost)))
	m.setRun("events.duplicated", num(float64(c.Events.Duplicated)))
	m.setRun("events.published", num(float64(c.Events.Published)))
	m.setRun("payments.lost", num(float64(c.Payments.Lost)))
	m.setRun("payments.duplicated", num(float64(c.Payments.Duplicated)))
	m.setRun("payments.ghost", num(float64(c.Payments.Ghost)))
	m.setRun("records.unexpected", num(float64(c.Unexpected)))

	// Windows other than the phases, per-consumer losses, transport cost.
	m.addWindowMetrics(in)

	// Traces, per phase.
	for _, p := range phases {
		sum := tracing.Metrics(in.traces.orders[p], in.traces.consumers[p])
		set(p, "trace.count", num(float64(sum.Count)))
		set(p, "trace.async_isolated", check.BoolValue(sum.AsyncIsolated))
		set(p, "trace.error_inherited", num(sum.ErrorInherited))
		if sum.ErrorOrigin != "" {
			set(p, "trace.error_origin", check.StringValue(sum.ErrorOrigin))
		} else if sum.Count > 0 {
			set(p, "trace.error_origin", check.StringValue("none"))
		}
		if len(sum.RetryAmplification) > 0 {
			// Attempts reaching a service per order: the most amplified
			// service speaks for the trace (order itself always has one).
			var p50, p99, mx int
			for svc, a := range sum.RetryAmplification {
				if svc == "order" {
					continue
				}
				p50, p99, mx = max(p50, a.P50), max(p99, a.P99), max(mx, a.Max)
			}
			set(p, "trace.retry_amplification.p50", num(float64(p50)))
			set(p, "trace.retry_amplification.p99", num(float64(p99)))
			set(p, "trace.retry_amplification.max", num(float64(mx)))
		}
	}
	return m
}

// setRun sets a whole-run metric (check.MetricInfo.WholeRun): it has one
// value, under "always", and none in the phases.
func (m *metrics) setRun(name string, v check.Value) {
	m.values[string(definition.Always)][name] = v
}

// putLoad sets the load generator's metrics of one operation in one phase.
func (m *metrics) putLoad(p, prefix string, st *load.Stats) {
	set := func(name string, v check.Value) { m.values[p][prefix+"."+name] = v }
	num := func(f float64) check.Value { return check.NumberValue(f) }
	set("requests", num(float64(st.Requests)))
	set("successes", num(float64(st.Successes)))
	set("errors", num(float64(st.ErrorCount())))
	set("dropped", num(float64(st.Dropped)))
	set("throughput", num(st.Throughput))
	set("in_flight.max", num(float64(st.InFlightMax)))
	for code, n := range st.Errors {
		set("errors."+code, num(float64(n)))
	}
	if st.Requests == 0 {
		return // no rates or percentiles of nothing
	}
	set("success_rate", num(st.SuccessRate()))
	set("error_rate", num(st.ErrorRate()))
	for q, d := range map[string]time.Duration{"p50": st.P50(), "p90": st.P90(), "p99": st.P99(), "p999": st.P999(), "max": st.Max(), "mean": st.Mean()} {
		set("latency."+q, check.DurationValue(d))
	}
}

// newMetrics returns empty metrics for every phase.
func newMetrics(ts traceSet) *metrics {
	m := &metrics{values: map[string]map[string]check.Value{}, traces: ts}
	for _, p := range phases {
		m.values[p] = map[string]check.Value{}
	}
	return m
}

// scalars flattens the metrics of one phase into numbers for report.json:
// durations in milliseconds, ratios as fractions, booleans as 0 or 1.
func (m *metrics) scalars() map[string]float64 {
	out := map[string]float64{}
	for _, p := range phases {
		for _, name := range slices.Sorted(maps.Keys(m.values[p])) {
			v := m.values[p][name]
			if !m.evidence(p, name) {
				continue
			}
			key := p + "." + name
			switch v.Kind {
			case check.KindNumber:
				n := v.Num
				if info, ok := check.LookupMetric(name); ok && info.Type == check.TypeDuration {
					n *= 1000
				}
				out[key] = n
			case check.KindBool:
				out[key] = 0
				if v.Bool {
					out[key] = 1
				}
			}
		}
	}
	return out
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// breakerLinks returns the order stats of every link, for the report.
func breakerLinks(st *orderv1.GetStatsResponse) []*orderv1.LinkStats {
	if st == nil {
		return nil
	}
	return st.GetLinks()
}
