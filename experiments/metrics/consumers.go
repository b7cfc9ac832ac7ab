package metrics

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
)

// consumersFamily: the asynchronous consumers (<consumer> is notification
// or ledger), from their counters, the events they applied and the
// orders the client was told succeeded.
var consumersFamily = Family{
	Name: "asynchronous consumers",
	Metrics: []check.MetricInfo{
		{Name: "<consumer>.applied", Type: check.TypeCount, Doc: "events applied"},
		{Name: "<consumer>.duplicates_applied", Type: check.TypeCount, Doc: "events applied again for an order already applied"},
		{Name: "<consumer>.duplicates_recognised", Type: check.TypeCount, Doc: "duplicates recognised and skipped"},
		{Name: "<consumer>.redeliveries", Type: check.TypeCount, Doc: "JetStream redeliveries received"},
		{Name: "<consumer>.lag.p50", Type: check.TypeDuration, Doc: "median time from publish to apply"},
		{Name: "<consumer>.lag.p99", Type: check.TypeDuration, Doc: "99th percentile time from publish to apply"},
		{Name: "<consumer>.lag.max", Type: check.TypeDuration, Doc: "longest time from publish to apply"},
		{Name: "<consumer>.drain_time", WholeRun: true, Type: check.TypeDuration, Doc: "from the end of the last fault on the consumer's proxy (else of the last fault) until it had applied every event published before then"},
		{Name: "<consumer>.lost", Type: check.TypeCount, Doc: "acknowledged orders sent in the phase that the consumer never applied"},
		{Name: "<consumer>.stale_applied", Type: check.TypeCount, Doc: "events older than the account state already applied for their user, applied anyway: the account went back (ledger.ordering: arrival); 0 for notification"},
		{Name: "<consumer>.stale_skipped", Type: check.TypeCount, Doc: "such events recognised by their version and skipped (ledger.ordering: version); 0 for notification"},
		{Name: "<consumer>.keys_behind", WholeRun: true, Type: check.TypeCount, Doc: "accounts whose applied state is older than the newest event received for them, after the drain: the ledger ended wrong; 0 for notification"},
	},
	Compute: func(r *Run, out *Values) {
		consumerCounters(r, out)
		for name, apps := range r.Applied {
			consumerLag(r, out, name, apps)
			out.SetRun(name+".drain_time", check.DurationValue(drainTime(r, name, apps)))
			consumerLost(r, out, name, apps)
		}
	},
}

// consumerCounters gives each phase its share of the consumers' counters.
func consumerCounters(r *Run, out *Values) {
	for _, p := range Phases {
		from, to := r.counterWindow(p)
		if from == nil || to == nil {
			continue
		}
		for name, st := range to.Consumers {
			f := from.Consumers[name]
			out.Set(p, name+".applied", count(Delta(f.Applied, st.Applied)))
			out.Set(p, name+".duplicates_applied", count(Delta(f.DuplicatesApplied, st.DuplicatesApplied)))
			out.Set(p, name+".duplicates_recognised", count(Delta(f.DuplicatesRecognised, st.DuplicatesRecognised)))
			out.Set(p, name+".redeliveries", count(Delta(f.Redeliveries, st.Redeliveries)))
			out.Set(p, name+".stale_applied", count(Delta(f.StaleApplied, st.StaleApplied)))
			out.Set(p, name+".stale_skipped", count(Delta(f.StaleSkipped, st.StaleSkipped)))
			if p == Always {
				out.SetRun(name+".keys_behind", count(st.KeysBehind))
			}
		}
	}
}

// consumerLag is the time from publish to apply, by the phase the event
// was published in.
func consumerLag(r *Run, out *Values, name string, apps []Application) {
	lags := map[string][]time.Duration{}
	for _, a := range apps {
		if a.Published.IsZero() {
			continue
		}
		p := r.PhaseAt(a.Published)
		lags[p] = append(lags[p], a.Applied.Sub(a.Published))
		lags[Always] = append(lags[Always], a.Applied.Sub(a.Published))
	}
	for p, ls := range lags {
		slices.Sort(ls)
		out.Set(p, name+".lag.p50", check.DurationValue(Quantile(ls, 0.50)))
		out.Set(p, name+".lag.p99", check.DurationValue(Quantile(ls, 0.99)))
		out.Set(p, name+".lag.max", check.DurationValue(ls[len(ls)-1]))
	}
}

// drainTime is how long after its link healed the consumer had applied
// every event published before then: the end of the last fault on its
// proxy (nats-<consumer>), else of the last fault, to the first
// application of the last such event. 0 when nothing was left to catch up.
func drainTime(r *Run, consumer string, apps []Application) time.Duration {
	healed := r.healed("nats-" + consumer)
	if healed.IsZero() {
		return 0
	}
	first := map[string]time.Time{} // order id → first application
	for _, a := range apps {
		if a.Published.IsZero() || !a.Published.Before(healed) {
			continue
		}
		if t, ok := first[a.OrderID]; !ok || a.Applied.Before(t) {
			first[a.OrderID] = a.Applied
		}
	}
	var caughtUp time.Time
	for _, t := range first {
		caughtUp = later(caughtUp, t)
	}
	if !caughtUp.After(healed) {
		return 0
	}
	return caughtUp.Sub(healed)
}

// consumerLost counts the acknowledged orders the consumer never applied,
// by the phase the order was sent in.
func consumerLost(r *Run, out *Values, name string, apps []Application) {
	applied := make(map[string]bool, len(apps))
	for _, a := range apps {
		applied[a.OrderID] = true
	}
	lost := map[string]int{}
	for _, a := range r.History {
		if a.Outcome != check.OutcomeAcknowledged || applied[a.OrderID] {
			continue
		}
		lost[r.PhaseAt(a.Intended)]++
		lost[Always]++
	}
	for _, p := range Phases {
		out.Set(p, name+".lost", count(lost[p]))
	}
}
