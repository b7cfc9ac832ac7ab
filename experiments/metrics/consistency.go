package metrics

import "github.com/fallacies/fallacies/experiments/check"

// consistencyFamily: the consistency checker's account of every order
// after the drain (check.CheckConsistency), one figure for the whole run.
var consistencyFamily = Family{
	Name: "consistency",
	Metrics: []check.MetricInfo{
		{Name: "orders.acknowledged", WholeRun: true, Type: check.TypeCount, Doc: "orders the client was told succeeded"},
		{Name: "orders.recovered", WholeRun: true, Type: check.TypeCount, Doc: "orders whose outcome the client never learned (its own deadline expired) that were nonetheless charged"},
		{Name: "events.published", WholeRun: true, Type: check.TypeCount, Doc: "orders.created events in the stream"},
		{Name: "events.lost", WholeRun: true, Type: check.TypeCount, Doc: "acknowledged orders some consumer never applied"},
		{Name: "events.duplicated", WholeRun: true, Type: check.TypeCount, Doc: "orders some consumer applied more than once"},
		{Name: "payments.lost", WholeRun: true, Type: check.TypeCount, Doc: "acknowledged orders with no charge"},
		{Name: "payments.duplicated", WholeRun: true, Type: check.TypeCount, Doc: "orders charged more than once"},
		{Name: "payments.ghost", WholeRun: true, Type: check.TypeCount, Doc: "charges for orders the client was told failed"},
		{Name: "records.unexpected", WholeRun: true, Type: check.TypeCount, Doc: "records for orders the load generator never sent"},
	},
	Compute: func(r *Run, out *Values) {
		c := r.Consistency
		out.SetRun("orders.acknowledged", count(c.Acknowledged))
		out.SetRun("orders.recovered", count(c.Recovered))
		out.SetRun("events.lost", count(c.Events.Lost))
		out.SetRun("events.duplicated", count(c.Events.Duplicated))
		out.SetRun("events.published", count(c.Events.Published))
		out.SetRun("payments.lost", count(c.Payments.Lost))
		out.SetRun("payments.duplicated", count(c.Payments.Duplicated))
		out.SetRun("payments.ghost", count(c.Payments.Ghost))
		out.SetRun("records.unexpected", count(c.Unexpected))
	},
}
