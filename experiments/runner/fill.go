package runner

import (
	"context"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// cardNumber is the secret every order carries to payment: what a sniffer
// on an unencrypted link can read.
const cardNumber = "4111 1111 1111 1111"

// toChecker turns what the services recorded into the checker's input.
func (o *observation) toChecker() check.Observed {
	obs := check.Observed{Charges: map[string]int{}, Applied: map[string]map[string]int{}, Published: o.published}
	for _, c := range o.charges {
		obs.Charges[c.GetOrderId()]++
	}
	for name, apps := range o.applied {
		m := map[string]int{}
		for _, a := range apps {
			m[a.GetOrderId()]++
		}
		obs.Applied[name] = m
	}
	return obs
}

// fillVariant copies the measurements into the report's shape.
func fillVariant(rv *report.Variant, res *load.Result, obs *observation, cons check.Consistency, m *metrics.Values, start time.Time) {
	rv.Timeseries, rv.Breakers = nil, nil
	rv.Phases = map[string]report.Phase{}
	rv.Ops = map[string]map[string]report.Phase{}
	beforePO, beforeGO := res.Stats(report.PhaseBefore, load.OpPlaceOrder), res.Stats(report.PhaseBefore, load.OpGetOrder)
	for _, p := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter} {
		rv.Phases[p] = phaseReport(res.Stats(p, load.OpPlaceOrder), beforePO)
		if g := res.Stats(p, load.OpGetOrder); g.Requests > 0 {
			if rv.Ops["get_order"] == nil {
				rv.Ops["get_order"] = map[string]report.Phase{}
			}
			rv.Ops["get_order"][p] = phaseReport(g, beforeGO)
		}
	}
	lag := res.SendLag
	rv.Load = report.Load{
		TargetPerSecond: res.Target, AchievedPerSecond: res.Achieved, SendWindowSeconds: res.SendWindow.Seconds(),
		Sent: res.Sent, Dropped: res.Dropped,
		SendLagMs: report.Latency{P50: ms(lag.P50), P90: ms(lag.P90), P99: ms(lag.P99), P999: ms(lag.P999), Max: ms(lag.Max), Mean: ms(lag.Mean)},
	}
	for _, s := range res.Seconds {
		po := s.PlaceOrder
		sec := report.Second{
			T: s.Offset, Requests: po.Requests, Successes: po.Successes, Errors: po.Errors, Dropped: po.Dropped,
			P50Ms: ms(po.P50), P99Ms: ms(po.P99), InFlight: po.InFlight,
		}
		if po.Requests > 0 {
			sec.SuccessRate = float64(po.Successes) / float64(po.Requests)
		}
		for _, f := range rv.Faults {
			t0, t1 := float64(s.Offset), float64(s.Offset+1)
			if f.StartOffset < t1 && f.EndOffset > t0 {
				sec.ActiveFaults = append(sec.ActiveFaults, f.Name)
			}
		}
		rv.Timeseries = append(rv.Timeseries, sec)
	}
	rv.Consistency = report.Consistency{
		Acknowledged: cons.Acknowledged, Lost: cons.Lost, Duplicated: cons.Duplicated, Ghost: cons.Ghost,
		Recovered: cons.Recovered, Unexpected: cons.Unexpected, Consumers: map[string]report.ConsumerConsistency{},
		Payments: report.PaymentConsistency{Lost: cons.Payments.Lost, Duplicated: cons.Payments.Duplicated, Ghost: cons.Payments.Ghost},
	}
	for name, c := range cons.Consumers {
		rv.Consistency.Consumers[name] = report.ConsumerConsistency{Applied: c.Applied, Lost: c.Lost, Duplicated: c.Duplicated, Unexpected: c.Unexpected}
	}
	var links []*orderv1.LinkStats
	if obs != nil {
		links = obs.order.GetLinks()
	}
	for _, l := range links {
		for _, tr := range l.GetTransitions() {
			at := time.Unix(0, tr.GetAtUnixNano())
			rv.Breakers = append(rv.Breakers, report.BreakerTransition{
				Link: "order." + l.GetLink(), From: tr.GetFrom(), To: tr.GetTo(), At: at, Offset: at.Sub(start).Seconds(),
			})
		}
	}
	slices.SortFunc(rv.Breakers, func(a, b report.BreakerTransition) int { return a.At.Compare(b.At) })
	rv.Metrics = m.Scalars()
}

// phaseReport is one phase of one operation in the report's shape;
// before is the same operation's before phase, whose tail the phase's
// requests are counted against.
func phaseReport(st, before *load.Stats) report.Phase {
	p := report.Phase{
		Requests: st.Requests, Successes: st.Successes, Errors: st.Errors, Dropped: st.Dropped, Throughput: st.Throughput,
	}
	if st.Requests > 0 {
		p.SuccessRate = st.SuccessRate()
		p.LatencyMs = report.Latency{
			P50: ms(st.P50()), P90: ms(st.P90()), P99: ms(st.P99()), P999: ms(st.P999()), Max: ms(st.Max()), Mean: ms(st.Mean()),
		}
	}
	if before.Requests > 0 {
		p.OverBeforeP99, p.OverBeforeP999 = slowerThan(st, before.P99()), slowerThan(st, before.P999())
	}
	return p
}

// slowerThan counts the requests of st slower than d, a quantile of a
// latency histogram: those in the histogram's buckets above d's (a
// quantile is the highest value of its bucket).
func slowerThan(st *load.Stats, d time.Duration) *int64 {
	n := int64(0)
	if st.Latency != nil {
		for _, b := range st.Latency.Distribution() {
			if b.From > d.Microseconds() {
				n += b.Count
			}
		}
	}
	return &n
}

// sniffed reads what each sniffer fault of the experiment recorded.
func sniffed(ctx context.Context, inj *toxiproxy.Injector, fs []faults.Fault) map[string][]byte {
	out := map[string][]byte{}
	for _, f := range fs {
		if !toxiproxy.IsSniffer(f.Kind) {
			continue
		}
		b, err := inj.Sniffed(ctx, f.Target)
		if err == nil {
			out[f.Target] = append(out[f.Target], b...)
		}
	}
	return out
}
