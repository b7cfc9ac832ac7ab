package runner

import (
	"github.com/fallacies/fallacies/experiments/metrics"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/report"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/tracing"
)

// windowsRun is a synthetic run of 10 s: payment cut at [2 s, 4 s), the
// ledger's link cut at [5 s, 7 s), so before is [0, 2 s), during [2 s,
// 7 s) and after [7 s, 10 s).
const windowsRun = `
name: windows
fallacy: network-is-reliable
description: synthetic
load: { rate: 10/s, duration: 10s }
variants: { naive: {} }
faults:
  - { at: 2s, for: 2s, target: payment, kind: blackhole }
  - { at: 5s, for: 2s, target: nats-ledger, kind: partition }
`

func TestWindowMetrics(t *testing.T) {
	exp := mustParse(t, windowsRun)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	ms := time.Millisecond
	s := time.Second

	// The history: id, intended offset, outcome, latency.
	type att struct {
		id  string
		off time.Duration
		ok  bool
		lat time.Duration
	}
	atts := []att{
		{"o-01", 500 * ms, true, 2 * ms},  // before
		{"o-02", 1 * s, true, 2 * ms},     // before, never reached notification
		{"o-03", 2100 * ms, false, 2 * s}, // payment cut
		{"o-04", 2500 * ms, false, 3 * ms},
		{"o-05", 3 * s, false, 4 * ms},
		{"o-06", 3900 * ms, true, 5 * ms},
		{"o-07", 5500 * ms, true, 2 * ms}, // ledger cut: lost by notification
		{"o-08", 6 * s, true, 2 * ms},     // ledger cut: lost by notification
		{"o-09", 8 * s, true, 2 * ms},     // after
	}
	res := &load.Result{Start: start}
	for _, a := range atts {
		o := check.OutcomeFailed
		if a.ok {
			o = check.OutcomeAcknowledged
		}
		res.History = append(res.History, check.Attempt{OrderID: a.id, Outcome: o, Intended: at(a.off), Latency: a.lat})
	}

	app := func(id string, pub, applied time.Duration) *consumerv1.Application {
		return &consumerv1.Application{OrderId: id, PublishedUnixNano: at(pub).UnixNano(), AppliedUnixNano: at(applied).UnixNano()}
	}
	tr := func(to string, off time.Duration) *orderv1.BreakerTransition {
		return &orderv1.BreakerTransition{AtUnixNano: at(off).UnixNano(), To: to}
	}
	obs := &observation{
		applied: map[string][]*consumerv1.Application{
			"notification": {app("o-01", 501*ms, 502*ms), app("o-06", 3905*ms, 3906*ms), app("o-09", 8*s, 8*s+ms)},
			"ledger": {
				app("o-01", 501*ms, 502*ms), app("o-02", 1*s, 1*s+ms), app("o-06", 3905*ms, 3906*ms),
				app("o-07", 5501*ms, 7300*ms), app("o-08", 6001*ms, 7200*ms),
				app("o-07", 5501*ms, 9*s), // a redelivery, later: not when it caught up
				app("o-09", 8*s, 9500*ms), // published after the heal: not backlog
			},
		},
		order: &orderv1.GetStatsResponse{Links: []*orderv1.LinkStats{{
			Link: "payment", BreakerState: "closed",
			Transitions: []*orderv1.BreakerTransition{
				tr("open", 2200*ms), tr("half-open", 3200*ms), tr("open", 3200*ms), tr("half-open", 4200*ms), tr("closed", 4200*ms),
			},
		}}},
	}
	faults := []report.Fault{
		{Name: "cut-payment", Target: "payment", Start: at(2 * s), End: at(4 * s)},
		{Name: "cut-ledger", Target: "nats-ledger", Start: at(5 * s), End: at(7 * s)},
	}

	// Order traces of the during phase: two rejected by the payment
	// breaker, two carrying the user call's cost.
	root := func(id string, attrs map[string]string, events ...tracing.Event) tracing.Trace {
		a := map[string]string{"fallacies.order_id": id}
		for k, v := range attrs {
			a[k] = v
		}
		r := tracing.Span{TraceID: "t-" + id, SpanID: "s-" + id, Name: tracing.PlaceOrderSpan, Kind: tracing.KindServer,
			Service: "order", Start: at(3 * s), End: at(3*s + ms), Attrs: a, Events: events}
		return tracing.Trace{ID: r.TraceID, Root: r, Spans: []tracing.Span{r}}
	}
	rejected := tracing.Event{Name: "breaker.rejected", Attrs: map[string]string{"fallacies.link": "payment"}}
	ts := traceSet{orders: map[string][]tracing.Trace{
		"during": {
			root("o-04", nil, rejected),
			root("o-05", nil, rejected),
			root("o-06", map[string]string{"fallacies.user.bytes": "1000", "fallacies.user.call_us": "1500"}),
			root("o-07", map[string]string{"fallacies.user.bytes": "3000", "fallacies.user.call_us": "2500"}),
		},
	}}

	m := metrics.Compute(measured{exp: exp, start: start, faults: faults, load: res, obs: obs, traces: ts}.run())

	// Each check, evaluated in its phase as a hypothesis would be.
	checks := []struct{ phase, check string }{
		{"always", "while.payment.order.requests == 4 and while.payment.order.success_rate == 25%"},
		{"always", "while.payment.order.latency.p99 == 2s and while.payment.order.latency.p50 == 4ms"},
		{"always", "while.nats-ledger.order.requests == 2 and while.nats-ledger.order.success_rate == 100%"},
		{"before", "notification.lost == 1"}, // o-02
		{"during", "notification.lost == 2"}, // o-07, o-08
		{"after", "notification.lost == 0"},
		{"always", "notification.lost == 3 and ledger.lost == 0"},
		// The ledger's link healed at 7 s; its backlog was applied by 7.3 s.
		{"always", "ledger.drain_time == 300ms"},
		// Notification had nothing to catch up after the last fault.
		{"always", "notification.drain_time == 0"},
		// The breaker closed 200 ms after payment's link healed, though the
		// last fault (on nats-ledger) ended later.
		{"always", "breaker.payment.recovery_time == 200ms"},
		{"during", "breaker.payment.rejected_latency.p50 == 3ms and breaker.payment.rejected_latency.p99 == 4ms"},
		{"during", "transport.user.bytes_per_call == 2000"},
		{"during", "transport.user.latency.p50 == 1500us and transport.user.latency.p99 == 2500us"},
	}
	for _, c := range checks {
		e, err := check.ParseExpr(c.check, metrics.Vocabulary)
		if err != nil {
			t.Fatalf("parse %q: %v", c.check, err)
		}
		ok, observed, err := check.Eval(e, m.Env(c.phase))
		if err != nil || !ok {
			t.Errorf("%s: %s: observed %s, err %v", c.phase, c.check, observed, err)
		}
	}
	for _, absent := range []struct{ phase, name string }{
		{"before", "breaker.payment.rejected_latency.p99"}, // nothing rejected before
		{"before", "transport.user.bytes_per_call"},
		// Whole-run metrics have no value in a phase.
		{"during", "while.payment.order.requests"},
		{"before", "while.payment.order.requests"},
		{"after", "ledger.drain_time"},
		{"after", "breaker.payment.recovery_time"},
	} {
		if v, ok := m.Env(absent.phase).Lookup(absent.name, ""); ok {
			t.Errorf("%s %s = %v, want no value", absent.phase, absent.name, v)
		}
	}
}
