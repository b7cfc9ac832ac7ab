package metrics

import "github.com/fallacies/fallacies/experiments/check"

// opErrorsByCode is the one metric of a pattern that reads 0 when it has
// no value: no request failed with that code.
const opErrorsByCode = "<op>.errors.<CODE>"

// requestsFamily: the load generator's figures per phase and operation;
// <op> is order (PlaceOrder) or get_order (GetOrder).
var requestsFamily = Family{
	Name: "requests, per operation",
	Metrics: []check.MetricInfo{
		{Name: "<op>.latency.p50", Type: check.TypeDuration, Doc: "median latency, timed from the intended send time"},
		{Name: "<op>.latency.p90", Type: check.TypeDuration, Doc: "90th percentile latency"},
		{Name: "<op>.latency.p99", Type: check.TypeDuration, Doc: "99th percentile latency"},
		{Name: "<op>.latency.p999", Type: check.TypeDuration, Doc: "99.9th percentile latency"},
		{Name: "<op>.latency.max", Type: check.TypeDuration, Doc: "highest latency"},
		{Name: "<op>.latency.mean", Type: check.TypeDuration, Doc: "mean latency"},
		{Name: "<op>.success_rate", Type: check.TypeRatio, Doc: "successful requests / requests"},
		{Name: "<op>.error_rate", Type: check.TypeRatio, Doc: "failed requests / requests"},
		{Name: "<op>.requests", Type: check.TypeCount, Doc: "requests sent"},
		{Name: "<op>.successes", Type: check.TypeCount, Doc: "requests answered with OK"},
		{Name: "<op>.errors", Type: check.TypeCount, Doc: "requests answered with an error"},
		{Name: "<op>.dropped", Type: check.TypeCount, Doc: "requests not sent because max_in_flight was reached"},
		{Name: opErrorsByCode, Type: check.TypeCount, Doc: "requests that failed with this gRPC code, e.g. order.errors.DEADLINE_EXCEEDED"},
		{Name: "<op>.throughput", Type: check.TypeRate, Doc: "successful requests per second"},
		{Name: "<op>.in_flight.max", Type: check.TypeCount, Doc: "most requests in flight at once"},
	},
	Compute: func(r *Run, out *Values) {
		for phase, byOp := range r.Requests {
			for op, st := range byOp {
				PutRequests(out, phase, op, st)
			}
		}
	},
}

// PutRequests sets the request metrics of one operation (its prefix:
// order, get_order) in one phase. The runner also calls it on the figures
// of a phase so far, to judge abort hypotheses while the load runs.
func PutRequests(out *Values, phase, op string, st Requests) {
	set := func(name string, v check.Value) { out.Set(phase, op+"."+name, v) }
	set("requests", count(st.Requests))
	set("successes", count(st.Successes))
	set("errors", count(st.Requests-st.Successes))
	set("dropped", count(st.Dropped))
	set("throughput", check.NumberValue(st.Throughput))
	set("in_flight.max", count(st.InFlightMax))
	for code, n := range st.Errors {
		set("errors."+code, count(n))
	}
	if st.Requests == 0 {
		return // no rates or percentiles of nothing
	}
	set("success_rate", check.NumberValue(float64(st.Successes)/float64(st.Requests)))
	set("error_rate", check.NumberValue(float64(st.Requests-st.Successes)/float64(st.Requests)))
	set("latency.p50", check.DurationValue(st.P50))
	set("latency.p90", check.DurationValue(st.P90))
	set("latency.p99", check.DurationValue(st.P99))
	set("latency.p999", check.DurationValue(st.P999))
	set("latency.max", check.DurationValue(st.Max))
	set("latency.mean", check.DurationValue(st.Mean))
}
