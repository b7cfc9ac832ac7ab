package metrics

import (
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/internal/semconv"
	"github.com/fallacies/fallacies/tracing"
)

// Names order and its resilience layer write on their spans, defined once
// in internal/semconv: this package does not import the services.
const (
	eventBreakerRejected = semconv.EventBreakerRejected
	attrLink             = semconv.Link
	attrOrderID          = semconv.OrderID
)

// linksFamily: the resilience mechanisms of order's links (<link> is user
// or payment), from the breakers' state changes, the counters order keeps
// per link, and the breaker.rejected events on order's spans.
var linksFamily = Family{
	Name: "resilience of order's links",
	Metrics: []check.MetricInfo{
		{Name: "breaker.<link>.opened", Type: check.TypeCount, Doc: "times the circuit breaker opened"},
		{Name: "breaker.<link>.closed", Type: check.TypeCount, Doc: "times the circuit breaker closed again"},
		{Name: "breaker.<link>.rejected", Type: check.TypeCount, Doc: "calls the open breaker rejected without sending"},
		{Name: "breaker.<link>.recovery_time", WholeRun: true, Type: check.TypeDuration, Doc: "from the end of the last fault on the link's proxy (else of the last fault) to the breaker closing"},
		{Name: "breaker.<link>.rejected_latency.p50", Traces: true, Type: check.TypeDuration, Doc: "median latency, as the client saw it, of the orders the breaker rejected: how fast failing fast is (from order's traces)"},
		{Name: "breaker.<link>.rejected_latency.p99", Traces: true, Type: check.TypeDuration, Doc: "99th percentile latency of the orders the breaker rejected"},
		{Name: "bulkhead.<link>.rejected", Type: check.TypeCount, Doc: "calls the bulkhead rejected because the link was full"},
		{Name: "retries.<link>", Type: check.TypeCount, Doc: "retry attempts sent (not counting first attempts)"},
		{Name: "fallback.<link>", Type: check.TypeCount, Doc: "calls answered by the fallback"},
		{Name: "retry.<link>.amplification", Type: check.TypeNumber, Doc: "attempts on the wire per logical call"},
	},
	Compute: func(r *Run, out *Values) {
		breakerTransitions(r, out)
		linkCounters(r, out)
		rejectedLatency(r, out)
	},
}

// breakerTransitions counts the breakers' state changes by the phase they
// happened in, and how long after the heal each breaker closed.
func breakerTransitions(r *Run, out *Values) {
	for _, b := range r.Breakers {
		opened := map[string]int{}
		closed := map[string]int{}
		var recovery time.Duration = -1
		// Recovery counts from the end of the last fault on the link's
		// own proxy (named like the link), else of the last fault.
		healed := r.healed(b.Link)
		for _, tr := range b.Transitions {
			if tr.At.Before(r.Start) {
				continue // an earlier run's, on a --target
			}
			p := r.eventPhase(tr.At)
			switch tr.To {
			case "open":
				opened[p]++
				opened[Always]++
			case "closed":
				closed[p]++
				closed[Always]++
				if !healed.IsZero() && !tr.At.Before(healed) && recovery < 0 {
					recovery = tr.At.Sub(healed)
				}
			}
		}
		for _, p := range Phases {
			out.Set(p, "breaker."+b.Link+".opened", count(opened[p]))
			out.Set(p, "breaker."+b.Link+".closed", count(closed[p]))
		}
		switch {
		case recovery >= 0:
			out.SetRun("breaker."+b.Link+".recovery_time", check.DurationValue(recovery))
		case opened[Always] == 0, b.State == "closed":
			out.SetRun("breaker."+b.Link+".recovery_time", check.DurationValue(0))
		}
	}
}

// CountBehind names the count a ratio metric moves with, for the tests
// that can judge a count but not a ratio from one trial (a count's rate
// over a phase's length): retry.<link>.amplification is above 1 exactly
// when retries.<link> counted retries.
func CountBehind(metric string) (string, bool) {
	link, ok := strings.CutPrefix(metric, "retry.")
	if !ok {
		return "", false
	}
	if link, ok = strings.CutSuffix(link, ".amplification"); !ok {
		return "", false
	}
	return "retries." + link, true
}

// linkCounters gives each phase its share of order's counters per link.
func linkCounters(r *Run, out *Values) {
	for _, p := range Phases {
		from, to := r.counterWindow(p)
		if from == nil || to == nil {
			continue
		}
		for link, l := range to.Links {
			f := from.Links[link] // missing reads as zeros
			out.Set(p, "breaker."+link+".rejected", count(Delta(f.BreakerRejected, l.BreakerRejected)))
			out.Set(p, "bulkhead."+link+".rejected", count(Delta(f.BulkheadRejected, l.BulkheadRejected)))
			out.Set(p, "retries."+link, count(Delta(f.Retries, l.Retries)))
			out.Set(p, "fallback."+link, count(Delta(f.Fallbacks, l.Fallbacks)))
			if calls := Delta(f.Calls, l.Calls); calls > 0 {
				out.Set(p, "retry."+link+".amplification", check.NumberValue(float64(Delta(f.Attempts, l.Attempts))/float64(calls)))
			}
		}
	}
}

// rejectedLatency is the latency of the PlaceOrder requests a breaker
// rejected (the event the resilience layer puts on order's spans), by
// phase: how fast failing fast is, as the client saw it.
func rejectedLatency(r *Run, out *Values) {
	latency := make(map[string]time.Duration, len(r.History))
	for _, a := range r.History {
		latency[a.OrderID] = a.Latency
	}
	for _, p := range Phases {
		byLink := map[string][]time.Duration{}
		for _, t := range r.Traces.Orders[p] {
			link := rejectedBy(t)
			if link == "" {
				continue
			}
			lat, ok := latency[t.Root.Attrs[attrOrderID]]
			if !ok {
				lat = t.Duration()
			}
			byLink[link] = append(byLink[link], lat)
		}
		for link, lat := range byLink {
			slices.Sort(lat)
			out.Set(p, "breaker."+link+".rejected_latency.p50", check.DurationValue(Quantile(lat, 0.50)))
			out.Set(p, "breaker."+link+".rejected_latency.p99", check.DurationValue(Quantile(lat, 0.99)))
		}
	}
}

// rejectedBy returns the link whose breaker rejected a call of the order
// (a breaker.rejected event on any of its spans), or "".
func rejectedBy(t tracing.Trace) string {
	for _, s := range t.Spans {
		for _, e := range s.Events {
			if e.Name == eventBreakerRejected && e.Attrs[attrLink] != "" {
				return e.Attrs[attrLink]
			}
		}
	}
	return ""
}
