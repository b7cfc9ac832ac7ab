package runner

import (
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
)

// This file hands what a variant measured to the metric families
// (experiments/metrics) as the plain data they compute from: the runner
// measures, the families name and compute.

// ops maps the metric prefix of each operation to the load generator's name.
var ops = map[string]load.Op{"order": load.OpPlaceOrder, "get_order": load.OpGetOrder}

// measured is everything a variant measured.
type measured struct {
	exp      *definition.Experiment
	start    time.Time      // the load's start: offset 0
	faults   []report.Fault // the faults as they really happened
	phases   *phaseClock    // the phases as they really happened; nil: as scheduled
	load     *load.Result
	obs      *observation // nil: the services were not read
	readings *phaseCounters
	cons     check.Consistency
	traces   traceSet
	sniffed  map[string][]byte // what each sniffer recorded
	rogue    *bool             // the rogue client's result; nil when not sent
}

// run is what was measured as the metric families read it.
func (in measured) run() *metrics.Run {
	exp, start := in.exp, in.start
	phases := in.phases
	if phases == nil {
		phases = onSchedule(exp, start)
	}
	r := &metrics.Run{
		Start:       start,
		PhaseAt:     phases.atTime,
		NoAfter:     !phaseHasTime(exp, definition.After),
		Consistency: in.cons,
		Traces:      metrics.Traces{Orders: in.traces.orders, Consumers: in.traces.consumers},
		Sniffed:     in.sniffed,
		Secret:      cardNumber,
		Rogue:       in.rogue,
	}
	for _, f := range in.faults {
		r.Faults = append(r.Faults, metrics.Fault{Name: f.Name, Target: f.Target, Start: f.Start, End: f.End, Counters: f.Counters})
	}
	if len(exp.Faults) > 0 {
		first := exp.Faults[0].At
		for _, f := range exp.Faults {
			first = min(first, f.At)
		}
		r.FirstFaultDue, r.LoadEnd = start.Add(first), start.Add(exp.Load.Duration)
	}
	if in.load != nil {
		r.Requests = loadRequests(in.load)
		r.History = in.load.History
	}
	if in.readings != nil {
		r.Readings = in.readings.all()
	}
	if in.obs != nil {
		r.Breakers, r.Applied = breakersOf(in.obs), applicationsOf(in.obs)
	}
	return r
}

// breakersOf is the history of the breaker of each of order's links.
func breakersOf(obs *observation) []metrics.Breaker {
	var out []metrics.Breaker
	for _, l := range obs.order.GetLinks() {
		b := metrics.Breaker{Link: l.GetLink(), State: l.GetBreakerState()}
		for _, tr := range l.GetTransitions() {
			b.Transitions = append(b.Transitions, metrics.Transition{At: time.Unix(0, tr.GetAtUnixNano()), To: tr.GetTo()})
		}
		out = append(out, b)
	}
	return out
}

// applicationsOf is what each consumer applied; an event whose publishing
// time is not known has a zero Published.
func applicationsOf(obs *observation) map[string][]metrics.Application {
	out := map[string][]metrics.Application{}
	for name, apps := range obs.applied {
		as := make([]metrics.Application, 0, len(apps))
		for _, a := range apps {
			app := metrics.Application{OrderID: a.GetOrderId(), Applied: time.Unix(0, a.GetAppliedUnixNano())}
			if a.GetPublishedUnixNano() > 0 {
				app.Published = time.Unix(0, a.GetPublishedUnixNano())
			}
			as = append(as, app)
		}
		out[name] = as
	}
	return out
}

// loadRequests are the load generator's figures of every phase and
// operation.
func loadRequests(res *load.Result) map[string]map[string]metrics.Requests {
	out := map[string]map[string]metrics.Requests{}
	for _, p := range metrics.Phases {
		lp := p
		if p == metrics.Always {
			lp = load.PhaseAll
		}
		out[p] = map[string]metrics.Requests{}
		for prefix, op := range ops {
			out[p][prefix] = requestsOf(res.Stats(lp, op))
		}
	}
	return out
}

// requestsOf is one operation's figures in one phase.
func requestsOf(st *load.Stats) metrics.Requests {
	return metrics.Requests{
		Requests: st.Requests, Successes: st.Successes, Dropped: st.Dropped, Errors: st.Errors,
		Throughput: st.Throughput, InFlightMax: st.InFlightMax,
		P50: st.P50(), P90: st.P90(), P99: st.P99(), P999: st.P999(), Max: st.Max(), Mean: st.Mean(),
	}
}

// loadMetrics are the request metrics alone: of a run stopped early, or
// of a phase so far, while the load runs.
func loadMetrics(byPhase map[string]map[string]metrics.Requests) *metrics.Values {
	v := metrics.NewValues(nil)
	for p, byOp := range byPhase {
		for op, st := range byOp {
			metrics.PutRequests(v, p, op, st)
		}
	}
	return v
}
