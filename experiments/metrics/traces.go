package metrics

import (
	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/tracing"
)

// criticalPath is the one metric computed when it is read, for the root
// span its argument names.
const criticalPath = "trace.critical_path"

// tracesFamily: the analyses of the captured traces (package tracing),
// per phase of the order's root span.
var tracesFamily = Family{
	Name: "traces",
	Metrics: []check.MetricInfo{
		{Name: criticalPath, Arg: "SPAN", Traces: true, Type: check.TypeSet, Doc: `"service.Method" names on the critical path of the slowest root span named SPAN in the phase`},
		{Name: "trace.error_origin", Traces: true, Type: check.TypeString, Doc: "service whose span first had an error status in failed orders (the most common)"},
		{Name: "trace.error_inherited", Traces: true, Type: check.TypeRatio, Doc: "failed orders whose root span inherited the error from a descendant"},
		{Name: "trace.retry_amplification.p50", Traces: true, Type: check.TypeNumber, Doc: "median attempts reaching a service per root request"},
		{Name: "trace.retry_amplification.p99", Traces: true, Type: check.TypeNumber, Doc: "99th percentile attempts reaching a service per root request"},
		{Name: "trace.retry_amplification.max", Traces: true, Type: check.TypeNumber, Doc: "most attempts reaching a service per root request"},
		{Name: "trace.async_isolated", Traces: true, Type: check.TypeBool, Doc: "no consumer span is on the critical path of any order"},
		{Name: "trace.count", Traces: true, Type: check.TypeCount, Doc: "root spans captured in the phase"},
		// Client amplification joins the traces of one order id (after the
		// other trace metrics, so that hints list those first).
		{Name: "trace.client_amplification.p50", Traces: true, Type: check.TypeNumber, Doc: "median attempts reaching a service per client request: every trace of one order id (the client's retries included), per phase of its first attempt"},
		{Name: "trace.client_amplification.p99", Traces: true, Type: check.TypeNumber, Doc: "99th percentile attempts reaching a service per client request"},
		{Name: "trace.client_amplification.max", Traces: true, Type: check.TypeNumber, Doc: "most attempts reaching a service per client request"},
		{Name: "trace.client_amplification.mean", Traces: true, Type: check.TypeNumber, Doc: "mean attempts reaching a service per client request"},
	},
	Compute: func(r *Run, out *Values) {
		traceSummary(r, out)
		clientAmplification(r, out)
	},
}

// traceSummary sets the figures tracing.Metrics computes per phase.
func traceSummary(r *Run, out *Values) {
	for _, p := range Phases {
		sum := tracing.Metrics(r.Traces.Orders[p], r.Traces.Consumers[p])
		out.Set(p, "trace.count", count(sum.Count))
		out.Set(p, "trace.async_isolated", check.BoolValue(sum.AsyncIsolated))
		out.Set(p, "trace.error_inherited", check.NumberValue(sum.ErrorInherited))
		if sum.ErrorOrigin != "" {
			out.Set(p, "trace.error_origin", check.StringValue(sum.ErrorOrigin))
		} else if sum.Count > 0 {
			out.Set(p, "trace.error_origin", check.StringValue("none"))
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
			out.Set(p, "trace.retry_amplification.p50", count(p50))
			out.Set(p, "trace.retry_amplification.p99", count(p99))
			out.Set(p, "trace.retry_amplification.max", count(mx))
		}
	}
}

// clientAmplification: every PlaceOrder of one order id, the client's
// retries included, is one client request; its phase is its first
// attempt's.
func clientAmplification(r *Run, out *Values) {
	byPhase := map[string][]tracing.ClientRequest{}
	for _, req := range tracing.ClientRequests(r.Traces.Orders[Always]) {
		p := r.PhaseAt(req.Start())
		byPhase[p] = append(byPhase[p], req)
		byPhase[Always] = append(byPhase[Always], req)
	}
	for p, reqs := range byPhase {
		var p50, p99, mx int
		var mean float64
		for svc, a := range tracing.ClientAmplification(reqs) {
			if svc == "order" {
				continue // order itself sees one attempt per client attempt
			}
			p50, p99, mx, mean = max(p50, a.P50), max(p99, a.P99), max(mx, a.Max), max(mean, a.Mean)
		}
		out.Set(p, "trace.client_amplification.p50", count(p50))
		out.Set(p, "trace.client_amplification.p99", count(p99))
		out.Set(p, "trace.client_amplification.max", count(mx))
		out.Set(p, "trace.client_amplification.mean", check.NumberValue(mean))
	}
}

// criticalPath reads trace.critical_path(root) in a phase: the critical
// path of the slowest order trace whose root is named root.
func (v *Values) criticalPath(phase, root string) (check.Value, bool) {
	var candidates []tracing.Trace
	for _, t := range v.orders[phase] {
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
