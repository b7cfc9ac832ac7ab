package report

import (
	"fmt"
	"math"
	"time"
)

// sampleStart is the start of the sample run, with nanoseconds so that
// tests see them survive a round trip.
var sampleStart = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// sampleReport builds a realistic report: the latency experiment with two
// variants over 30 seconds at 50 requests per second, one fault window from
// 10 s to 20 s, a breaker that opens in the resilient variant, exemplar
// traces and consistency accounting. The naive variant's hypotheses pass (the
// fault bit); the resilient variant has one failed and one skipped.
func sampleReport() *Report {
	fault := Fault{
		Name: "user-latency", Kind: "latency", Target: "user", Direction: "downstream",
		Attrs: map[string]int64{"latency": 300, "jitter": 50},
		Start: sampleStart.Add(10 * time.Second), End: sampleStart.Add(20 * time.Second),
		StartOffset: 10, EndOffset: 20,
	}
	r := &Report{
		Experiment:      "latency",
		Fallacy:         "latency-is-zero",
		Description:     "300 ms on the order→user link; sync callers inherit it, the async path does not.",
		File:            "experiments/latency.yaml",
		Topology:        "embedded",
		Seed:            42,
		StartedAt:       sampleStart,
		DurationSeconds: 31.8,
		JaegerUI:        "http://127.0.0.1:16686",
	}
	naive := Variant{
		Name:   "naive",
		Passed: true,
		Knobs:  []Knob{{"order.user.timeout", "0"}, {"order.user.breaker", "off"}},
		Phases: map[string]Phase{
			PhaseBefore: samplePhase(500, 500, nil, Latency{2.1, 3.4, 5.3, 8.9, 9.7, 2.4}),
			PhaseDuring: samplePhase(500, 497, map[string]int64{"DEADLINE_EXCEEDED": 3}, Latency{305, 338, 349, 361, 362, 306}),
			PhaseAfter:  samplePhase(500, 500, nil, Latency{2.3, 3.9, 6.1, 9.8, 11.2, 2.6}),
		},
		Ops: map[string]map[string]Phase{
			"get_order": {
				PhaseBefore: samplePhase(100, 100, nil, Latency{0.8, 1.1, 1.9, 2.2, 2.3, 0.9}),
				PhaseDuring: samplePhase(100, 100, nil, Latency{0.9, 1.2, 2.0, 2.4, 2.5, 1.0}),
			},
		},
		Load: Load{TargetPerSecond: 50, AchievedPerSecond: 49.9, SendWindowSeconds: 29.98, Sent: 1500,
			SendLagMs: Latency{0.45, 0.8, 1.13, 2.1, 2.4, 0.5}},
		Hypotheses: []Hypothesis{
			{Expr: "order.success_rate >= 99%", Phase: PhaseBefore, Variant: "naive", Passed: true, Observed: "order.success_rate = 100%"},
			{Name: "the fault bit", Expr: "order.latency.p50 >= 300ms", Phase: PhaseDuring, Variant: "naive", Passed: true, Observed: "order.latency.p50 = 305ms"},
			{Expr: "events.lost == 0", Phase: PhaseAfter, Variant: "naive", Passed: true, Observed: "events.lost = 0"},
			{Expr: "trace.critical_path(order.PlaceOrder) contains user.GetUser", Phase: PhaseDuring, Variant: "naive", Passed: true, Observed: "trace.critical_path(order.PlaceOrder) = [order.PlaceOrder, user.GetUser, payment.Charge, order.orders.created publish]"},
		},
		Faults:     []Fault{fault},
		Timeseries: sampleSeconds(false),
		Consistency: Consistency{
			Acknowledged: 1497, Recovered: 0,
			Consumers: map[string]ConsumerConsistency{"notification": {Applied: 1497}, "ledger": {Applied: 1497}},
		},
		Metrics: map[string]float64{
			"always.order.success_rate": 0.998, "before.order.latency.p50": 2.1, "during.order.latency.p50": 305, "during.order.latency.p99": 349,
			"always.events.lost": 0, "during.retries.user": 0,
		},
		Exemplars: []Exemplar{sampleExemplar(PhaseDuring, ExemplarSlowest, "4bf92f3577b34da6a3ce929d0e0e4736", 362, false)},
	}
	resilient := Variant{
		Name:   "resilient",
		Passed: false,
		Knobs:  []Knob{{"order.user.timeout", "100ms"}, {"order.user.fallback", "cached-profile"}, {"order.user.breaker", "on"}},
		Phases: map[string]Phase{
			PhaseBefore: samplePhase(500, 500, nil, Latency{2.2, 3.5, 5.6, 9.1, 9.9, 2.5}),
			PhaseDuring: samplePhase(500, 473, map[string]int64{"UNAVAILABLE": 19, "DEADLINE_EXCEEDED": 6, "RESOURCE_EXHAUSTED": 2}, Latency{3.1, 101, 142, 160, 171, 18.2}),
			PhaseAfter:  samplePhase(500, 500, nil, Latency{2.4, 4.0, 6.3, 9.9, 12.5, 2.7}),
		},
		Hypotheses: []Hypothesis{
			{Expr: "order.success_rate >= 99%", Phase: PhaseBefore, Variant: "resilient", Passed: true, Observed: "order.success_rate = 100%"},
			{Name: "the fix held", Expr: "order.latency.p99 < 100ms", Phase: PhaseDuring, Variant: "resilient", Passed: false, Observed: "order.latency.p99 = 142ms", Abort: false},
			{Expr: "events.lost == 0", Phase: PhaseAfter, Variant: "resilient", Passed: true, Observed: "events.lost = 0"},
			{Expr: "trace.retry_amplification.p99 <= 2", Phase: PhaseAfter, Variant: "resilient", Skipped: true, SkipReason: "not checked: the run was stopped at 12.4s by the abort hypothesis order.success_rate >= 99%"},
		},
		Faults:     []Fault{fault},
		Timeseries: sampleSeconds(true),
		Consistency: Consistency{
			Acknowledged: 1473, Ghost: 2, Recovered: 27,
			Consumers: map[string]ConsumerConsistency{"notification": {Applied: 1473, Duplicated: 1}, "ledger": {Applied: 1473}},
			Payments:  PaymentConsistency{Ghost: 2},
		},
		Breakers: []BreakerTransition{
			{Link: "order.user", From: BreakerClosed, To: BreakerOpen, At: sampleStart.Add(11200 * time.Millisecond), Offset: 11.2},
			{Link: "order.user", From: BreakerOpen, To: BreakerHalfOpen, At: sampleStart.Add(16200 * time.Millisecond), Offset: 16.2},
			{Link: "order.user", From: BreakerHalfOpen, To: BreakerOpen, At: sampleStart.Add(16500 * time.Millisecond), Offset: 16.5},
			{Link: "order.user", From: BreakerOpen, To: BreakerHalfOpen, At: sampleStart.Add(21500 * time.Millisecond), Offset: 21.5},
			{Link: "order.user", From: BreakerHalfOpen, To: BreakerClosed, At: sampleStart.Add(21600 * time.Millisecond), Offset: 21.6},
		},
		Metrics: map[string]float64{
			"always.order.success_rate": 0.981, "during.order.latency.p50": 3.1, "during.order.latency.p99": 142,
			"always.events.lost": 0, "during.retries.user": 155, "during.fallback.user": 412,
		},
		Exemplars: []Exemplar{
			sampleExemplar(PhaseDuring, ExemplarSlowest, "0af7651916cd43dd8448eb211c80319c", 171, false),
			sampleExemplar(PhaseDuring, ExemplarFailed, "b7ad6b7169203331b7ad6b7169203331", 104, true),
		},
	}
	r.Variants = []Variant{naive, resilient}
	return r
}

func samplePhase(req, ok int64, errs map[string]int64, l Latency) Phase {
	return Phase{
		Requests: req, Successes: ok, SuccessRate: float64(ok) / float64(req),
		Errors: errs, Throughput: float64(ok) / 10, LatencyMs: l,
	}
}

// sampleSeconds is 30 seconds at 50 requests per second with the fault
// active from second 10 to 19.
func sampleSeconds(resilient bool) []Second {
	out := make([]Second, 30)
	for t := range out {
		s := Second{T: t, Requests: 50, P50Ms: 2 + 0.3*math.Sin(float64(t)), P99Ms: 5 + math.Cos(float64(t)), ActiveFaults: []string{}}
		if t >= 10 && t < 20 {
			s.ActiveFaults = []string{"user-latency"}
			if resilient {
				s.P50Ms, s.P99Ms = 3+float64(t%3), 120+float64(t%5)*5
				if t == 10 || t == 11 || t == 16 {
					s.Errors = 9
				}
				s.InFlight = 6
			} else {
				s.P50Ms, s.P99Ms = 300+float64(t%4)*2, 340+float64(t%3)*4
				s.InFlight = 16
				if t == 19 {
					s.Errors, s.Dropped = 3, 4
				}
			}
		}
		s.Successes = s.Requests - s.Errors
		s.SuccessRate = float64(s.Successes) / float64(s.Requests)
		out[t] = s
	}
	return out
}

func sampleExemplar(phase, kind, id string, dur float64, failed bool) Exemplar {
	userDur := dur - 4
	spans := []WaterfallSpan{
		{Service: "order", Name: "order.PlaceOrder", StartMs: 0, DurationMs: dur, Depth: 0, Error: failed},
		{Service: "order", Name: "user.GetUser", StartMs: 0.3, DurationMs: userDur * 0.5, Depth: 1, Error: failed},
		{Service: "user", Name: "user.GetUser", StartMs: 0.7, DurationMs: userDur*0.5 - 1, Depth: 2},
	}
	if !failed {
		spans = append(spans,
			WaterfallSpan{Service: "order", Name: "payment.Charge", StartMs: userDur*0.5 + 1, DurationMs: 1.2, Depth: 1},
			WaterfallSpan{Service: "payment", Name: "payment.Charge", StartMs: userDur*0.5 + 1.2, DurationMs: 0.8, Depth: 2},
			WaterfallSpan{Service: "order", Name: "order.orders.created publish", StartMs: userDur*0.5 + 2.5, DurationMs: 0.4, Depth: 1},
		)
	} else {
		spans = append(spans, WaterfallSpan{Service: "order", Name: "user.GetUser", StartMs: userDur * 0.5, DurationMs: 0.1, Depth: 1, Error: true, Note: "breaker.rejected"})
	}
	return Exemplar{
		Phase: phase, Kind: kind, TraceID: id, Root: "order.PlaceOrder",
		DurationMs: dur, Error: failed, JaegerURL: fmt.Sprintf("http://127.0.0.1:16686/trace/%s", id), Spans: spans,
	}
}
