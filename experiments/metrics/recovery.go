package metrics

import (
	"time"

	"github.com/fallacies/fallacies/experiments/check"
)

// recoveryFamily: how long order took to answer again after the first
// fault.
var recoveryFamily = Family{
	Name: "recovery",
	Metrics: []check.MetricInfo{
		{Name: "recovery.order.time", WholeRun: true, Type: check.TypeDuration, Doc: "from the start of the first fault to the first PlaceOrder answered OK after the outage it caused (0: nothing failed; the rest of the run: never recovered)"},
	},
	Compute: func(r *Run, out *Values) {
		if len(r.Faults) == 0 || r.FirstFaultDue.IsZero() {
			return
		}
		// From when the first fault was due: applying one can take a while
		// (a restart is done when the replacement is up), and the outage
		// begins when it starts.
		out.SetRun("recovery.order.time", check.DurationValue(RecoveryTime(r.History, r.FirstFaultDue, r.LoadEnd)))
	},
}

// RecoveryTime is how long order took to recover from a fault that began
// at from: from then to the first acknowledged order answered after the
// outage began (the first failed order intended at or after from). It is
// 0 when no order failed, and end−from when none succeeded again before
// end (the end of the load): a lower bound.
func RecoveryTime(history []check.Attempt, from, end time.Time) time.Duration {
	var outage time.Time
	for _, a := range history {
		if !a.Intended.Before(from) && a.Outcome != check.OutcomeAcknowledged && (outage.IsZero() || a.Intended.Before(outage)) {
			outage = a.Intended
		}
	}
	if outage.IsZero() {
		return 0
	}
	var back time.Time
	for _, a := range history {
		if a.Outcome != check.OutcomeAcknowledged || !a.Intended.After(outage) {
			continue
		}
		if done := a.Intended.Add(a.Latency); back.IsZero() || done.Before(back) {
			back = done
		}
	}
	if back.IsZero() {
		return max(0, end.Sub(from))
	}
	return max(0, back.Sub(from))
}
