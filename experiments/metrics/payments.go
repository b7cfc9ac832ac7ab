package metrics

import "github.com/fallacies/fallacies/experiments/check"

// paymentsFamily: the Charge calls payment received, from its counter.
var paymentsFamily = Family{
	Name: "payment attempts",
	Metrics: []check.MetricInfo{
		{Name: "payment.attempts", Type: check.TypeCount, Doc: "Charge calls payment received, on every replica, retries and hedges included"},
	},
	Compute: func(r *Run, out *Values) {
		for _, p := range Phases {
			if from, to := r.counterWindow(p); from != nil && to != nil {
				out.Set(p, "payment.attempts", count(Delta(from.PaymentAttempts, to.PaymentAttempts)))
			}
		}
	},
}
