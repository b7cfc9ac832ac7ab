package runner

import (
	"slices"
	"strconv"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"github.com/fallacies/fallacies/tracing"
)

// This file computes the metrics that look at a run through windows other
// than the three phases (while a fault was on a proxy) and per order: how
// fast a breaker's rejection was, what each consumer lost, what the user
// call cost.
//
//	History (one attempt per PlaceOrder, by intended send time)
//	   │  ├── in a window of a fault on <proxy>  ─▶ while.<proxy>.order.*
//	   │  └── acknowledged, never applied by <consumer> ─▶ <consumer>.lost (per phase)
//	order traces ─┬─ a breaker.rejected event of <link> ─▶ breaker.<link>.rejected_latency.*
//	              └─ root attributes fallacies.user.* ─▶ transport.user.* (per phase)

// Root span attributes order sets about its call of user (see
// services/order: AttrUserBytes, AttrUserCallMicros). The runner reads
// them by name: it does not import the services.
const (
	attrUserBytes  = "fallacies.user.bytes"
	attrUserCallUS = "fallacies.user.call_us"
	attrOrderID    = "fallacies.order_id"
	// eventBreakerRejected and attrLink are resilience.EventBreakerRejected
	// and resilience.AttrLink.
	eventBreakerRejected = "breaker.rejected"
	attrLink             = "fallacies.link"
)

// window is a span of wall time, [from, to).
type window struct{ from, to time.Time }

func (w window) has(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }

func inAny(ws []window, t time.Time) bool {
	for _, w := range ws {
		if w.has(t) {
			return true
		}
	}
	return false
}

// faultWindows returns the windows of the faults on each target, as they
// really happened.
func faultWindows(fs []report.Fault) map[string][]window {
	out := map[string][]window{}
	for _, f := range fs {
		out[f.Target] = append(out[f.Target], window{f.Start, f.End})
	}
	return out
}

// lastEnd returns when the last fault on target ended, or zero.
func lastEnd(fs []report.Fault, target string) time.Time {
	var end time.Time
	for _, f := range fs {
		if f.Target == target {
			end = later(end, f.End)
		}
	}
	return end
}

// addWindowMetrics adds the metrics of this file to m.
func (m *metrics) addWindowMetrics(in measured) {
	if in.load == nil {
		return
	}
	hist := in.load.History

	// PlaceOrder while a fault was on a proxy.
	for target, ws := range faultWindows(in.faults) {
		var lat []time.Duration
		ok := 0
		for _, a := range hist {
			if !inAny(ws, a.Intended) {
				continue
			}
			lat = append(lat, a.Latency)
			if a.Outcome == check.OutcomeAcknowledged {
				ok++
			}
		}
		prefix := "while." + target + ".order."
		m.setRun(prefix+"requests", check.NumberValue(float64(len(lat))))
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		m.setRun(prefix+"success_rate", check.NumberValue(float64(ok)/float64(len(lat))))
		m.setRun(prefix+"latency.p50", check.DurationValue(quantile(lat, 0.50)))
		m.setRun(prefix+"latency.p99", check.DurationValue(quantile(lat, 0.99)))
	}

	// PlaceOrder requests a breaker rejected (the event the resilience
	// layer puts on order's spans), by phase: how fast failing fast is, as
	// the client saw it.
	latency := make(map[string]time.Duration, len(hist))
	for _, a := range hist {
		latency[a.OrderID] = a.Latency
	}
	for _, p := range phases {
		byLink := map[string][]time.Duration{}
		for _, t := range m.traces.orders[p] {
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
			m.values[p]["breaker."+link+".rejected_latency.p50"] = check.DurationValue(quantile(lat, 0.50))
			m.values[p]["breaker."+link+".rejected_latency.p99"] = check.DurationValue(quantile(lat, 0.99))
		}
	}

	// What each consumer lost, by the phase the order was sent in.
	if in.obs != nil {
		for name, apps := range in.obs.applied {
			applied := make(map[string]bool, len(apps))
			for _, a := range apps {
				applied[a.GetOrderId()] = true
			}
			lost := map[string]int{}
			for _, a := range hist {
				if a.Outcome != check.OutcomeAcknowledged || applied[a.OrderID] {
					continue
				}
				lost[phaseAt(in.exp, a.Intended.Sub(in.start))]++
				lost[string(definition.Always)]++
			}
			for _, p := range phases {
				m.values[p][name+".lost"] = check.NumberValue(float64(lost[p]))
			}
		}
	}

	// The cost of the user call, from the attributes order put on each
	// PlaceOrder span.
	for _, p := range phases {
		var bytes, n int
		var calls []time.Duration
		for _, t := range m.traces.orders[p] {
			if b, err := strconv.Atoi(t.Root.Attrs[attrUserBytes]); err == nil && b > 0 {
				bytes += b
				n++
			}
			if us, err := strconv.ParseInt(t.Root.Attrs[attrUserCallUS], 10, 64); err == nil && us > 0 {
				calls = append(calls, time.Duration(us)*time.Microsecond)
			}
		}
		if n > 0 {
			m.values[p]["transport.user.bytes_per_call"] = check.NumberValue(float64(bytes) / float64(n))
		}
		if len(calls) > 0 {
			slices.Sort(calls)
			m.values[p]["transport.user.latency.p50"] = check.DurationValue(quantile(calls, 0.50))
			m.values[p]["transport.user.latency.p99"] = check.DurationValue(quantile(calls, 0.99))
		}
	}
}

// drainTime is how long after its link healed the consumer had applied
// every event published before then: the end of the last fault on its
// proxy (nats-<consumer>), else of the last fault, to the first
// application of the last such event. 0 when nothing was left to catch up.
func drainTime(in measured, consumer string, apps []*consumerv1.Application) time.Duration {
	healed := in.faultsEnd
	if e := lastEnd(in.faults, "nats-"+consumer); !e.IsZero() {
		healed = e
	}
	if healed.IsZero() {
		return 0
	}
	first := map[string]int64{} // order id → first application
	for _, a := range apps {
		if a.GetPublishedUnixNano() == 0 || a.GetPublishedUnixNano() >= healed.UnixNano() {
			continue
		}
		if t, ok := first[a.GetOrderId()]; !ok || a.GetAppliedUnixNano() < t {
			first[a.GetOrderId()] = a.GetAppliedUnixNano()
		}
	}
	var caughtUp time.Time
	for _, t := range first {
		caughtUp = later(caughtUp, time.Unix(0, t))
	}
	if !caughtUp.After(healed) {
		return 0
	}
	return caughtUp.Sub(healed)
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
