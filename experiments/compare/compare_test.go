package compare

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
)

// variant builds a variant of n trials whose place_order p50/p99 is base
// before the fault (seconds 0–9) and base+bump while it is on (10–19),
// with noise of sd ms second to second, and the given whole-run metrics.
func variant(name string, n int, base, bump, sd float64, seed uint64, always map[string]float64) report.Variant {
	r := rand.New(rand.NewPCG(seed, 1))
	v := report.Variant{Name: name, Faults: []report.Fault{{Name: "slow", StartOffset: 10, EndOffset: 20}}}
	for t := range n {
		tr := report.Trial{Trial: t + 1, Metrics: map[string]float64{}}
		var b50, d50 float64
		for s := range 20 {
			sec := report.Second{T: s, Requests: 50, Successes: 50, SuccessRate: 1}
			lat := base + sd*r.NormFloat64()
			if s >= 10 {
				lat += bump
				sec.ActiveFaults = []string{"slow"}
				d50 += lat / 10
			} else {
				b50 += lat / 10
			}
			sec.P50Ms, sec.P99Ms = lat, 2*lat
			tr.Timeseries = append(tr.Timeseries, sec)
		}
		tr.Metrics["before.order.latency.p50"], tr.Metrics["during.order.latency.p50"] = b50, d50
		tr.Metrics["before.order.latency.p99"], tr.Metrics["during.order.latency.p99"] = 2*b50, 2*d50
		tr.Metrics["before.order.success_rate"], tr.Metrics["during.order.success_rate"] = 1, 1
		tr.Metrics["before.order.throughput"], tr.Metrics["during.order.throughput"] = 50, 50
		for k, x := range always {
			tr.Metrics[k] = x
		}
		v.Trials = append(v.Trials, tr)
	}
	v.Timeseries = v.Trials[0].Timeseries
	v.Metrics = v.Trials[0].Metrics
	return v
}

func TestFaultEffect(t *testing.T) {
	for _, trials := range []int{1, 3} {
		bit := &report.Report{Variants: []report.Variant{variant("naive", trials, 5, 300, 2, 1, nil), variant("resilient", trials, 5, 0, 2, 2, nil)}}
		fe := FaultEffect(bit, "naive", nil, nil)
		if fe == nil || !fe.Significant || !fe.Effects[0].Significant || fe.Effects[0].Change < 250 {
			t.Errorf("%d trial(s): a 300 ms fault: %+v", trials, fe)
		}
		none := &report.Report{Variants: []report.Variant{variant("naive", trials, 5, 0, 2, 3, nil)}}
		fe = FaultEffect(none, "naive", nil, nil)
		if fe == nil || fe.Significant {
			t.Errorf("%d trial(s): a fault that did nothing: %+v", trials, fe)
		}
	}
	// Counts across variants with one trial each: Poisson rates.
	dup := &report.Report{Variants: []report.Variant{
		variant("naive", 1, 5, 0, 2, 4, map[string]float64{"always.payments.duplicated": 40}),
		variant("resilient", 1, 5, 0, 2, 5, map[string]float64{"always.payments.duplicated": 0}),
	}}
	fe := FaultEffect(dup, "naive", nil, []Figure{{Metric: "payments.duplicated", Unit: "1", Count: true, Phase: "always"}})
	if fe == nil || !fe.Significant {
		t.Fatalf("40 duplicates against 0: %+v", fe)
	}
	if e := fe.Effects[len(fe.Effects)-1]; e.Compare != "naive vs resilient" || !e.Significant || !strings.Contains(e.Method, "Poisson") {
		t.Errorf("effect %+v", e)
	}
}

func TestDiffWarnsOfARegressionWithinBounds(t *testing.T) {
	hyp := []report.Hypothesis{{Name: "the fix held", Expr: "order.latency.p99 < 250ms", Phase: "during", Passed: true, Verdict: report.VerdictPass}}
	mk := func(bump float64, seed uint64, trials int) *report.Report {
		v := variant("resilient", trials, 50, bump, 3, seed, nil)
		v.Hypotheses = hyp
		return &report.Report{Experiment: "latency", Trials: trials, Variants: []report.Variant{v}}
	}
	for _, trials := range []int{1, 3} {
		// during p99: 2·(50+50) = 200 ms against 2·(50+90) = 280 ms: +40%.
		d := Reports([]*report.Report{mk(50, 1, trials)}, []*report.Report{mk(90, 2, trials)})
		if len(d.Warnings) != 2 || d.Warnings[0].Phase != "during" || d.Warnings[1].Phase != "during" || d.Warnings[0].Relative < 0.3 {
			t.Errorf("%d trial(s): warnings %+v, want the during p50 and p99, +40%%", trials, d.Warnings)
		}
		var b strings.Builder
		if err := Text(&b, d, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "WARNING") || !strings.Contains(b.String(), "regression") {
			t.Errorf("%d trial(s): text:\n%s", trials, b.String())
		}
		// The same system twice: nothing to report.
		same := Reports([]*report.Report{mk(50, 3, trials)}, []*report.Report{mk(50, 4, trials)})
		for _, c := range same.Changes {
			if c.Regression || c.Improvement {
				t.Errorf("%d trial(s): noise called a change: %+v", trials, c)
			}
		}
	}
	// A verdict that changed is listed, and the regression is then no
	// warning: the verdict says it.
	next := mk(150, 5, 1)
	next.Variants[0].Hypotheses = []report.Hypothesis{{Name: "the fix held", Expr: "order.latency.p99 < 250ms", Phase: "during", Verdict: report.VerdictFail}}
	d := Reports([]*report.Report{mk(50, 6, 1)}, []*report.Report{next})
	if len(d.Verdicts) != 1 || d.Verdicts[0].Base != "pass" || d.Verdicts[0].New != "fail" || len(d.Warnings) != 0 {
		t.Errorf("verdicts %+v, warnings %+v", d.Verdicts, d.Warnings)
	}
}

// packetLoss is a report shaped like a run of experiments/packet-loss.yaml
// whose fault bit lightly: 50 requests a second, a p99 near 8 ms, and
// during the fault retransmission timeouts that stall a few dozen
// requests in three seconds only (their p99 400–800 ms, the other
// seconds' unchanged). counted says whether the phases carry the counts
// over the before phase's tail (a report of this version).
func packetLoss(counted bool) *report.Report {
	r := rand.New(rand.NewPCG(5, 5))
	v := report.Variant{Name: "naive", Faults: []report.Fault{{Name: "lossy-payment", StartOffset: 10, EndOffset: 20}}}
	for s := range 20 {
		sec := report.Second{T: s, Requests: 50, Successes: 50, SuccessRate: 1, P50Ms: 2.7 + 0.2*r.NormFloat64(), P99Ms: 8 + r.NormFloat64()}
		if s >= 10 {
			sec.ActiveFaults = []string{"lossy-payment"}
		}
		if s == 12 || s == 15 || s == 18 {
			sec.P99Ms = 400 * float64(s-9) / 3
		}
		v.Timeseries = append(v.Timeseries, sec)
	}
	m := map[string]float64{
		"before.order.latency.p50": 2.7, "during.order.latency.p50": 2.8,
		"before.order.latency.p99": 8, "during.order.latency.p99": 420,
		"before.order.latency.p999": 11.9, "during.order.latency.p999": 800,
		"before.order.success_rate": 1, "during.order.success_rate": 1,
	}
	v.Metrics, v.Trials = m, []report.Trial{{Trial: 1, Metrics: m, Timeseries: v.Timeseries}}
	v.Phases = map[string]report.Phase{report.PhaseBefore: {Requests: 500}, report.PhaseDuring: {Requests: 500}}
	if counted {
		v.Phases[report.PhaseBefore] = report.Phase{Requests: 500, OverBeforeP99: count(5), OverBeforeP999: count(0)}
		v.Phases[report.PhaseDuring] = report.Phase{Requests: 500, OverBeforeP99: count(24), OverBeforeP999: count(18)}
	}
	return &report.Report{Variants: []report.Variant{v}}
}

func count(n int64) *int64 { return &n }

// The packet-loss case: a p99 up by hundreds of ms in three seconds of
// eleven. Over the seconds (a report without the counts) the rank-sum
// misses it; over the requests it is significant, and the method says
// which test judged it.
func TestFaultEffectOfATailStall(t *testing.T) {
	old := FaultEffect(packetLoss(false), "naive", nil, nil)
	if old == nil || old.Significant || len(old.Effects) != 3 || !strings.HasPrefix(old.Effects[1].Method, "rank-sum over seconds") {
		t.Fatalf("without the counts, the rank-sum over seconds: %+v", old)
	}
	fe := FaultEffect(packetLoss(true), "naive", nil, nil)
	if fe == nil || !fe.Significant || len(fe.Effects) != 4 {
		t.Fatalf("with the counts: %+v", fe)
	}
	if e := fe.Effects[1]; e.Metric != "order.latency.p99" || !e.Significant || !strings.HasPrefix(e.Method, "exceedances over requests: 24 of 500 during, 5 of 500 before slower than before's p99") {
		t.Errorf("p99: %+v", e)
	}
	if e := fe.Effects[3]; e.Metric != "order.latency.p999" || !e.Significant || !strings.Contains(e.Method, "18 of 500 during, 0 of 500 before slower than before's p999") {
		t.Errorf("p999: %+v", e)
	}
	if e := fe.Effects[0]; e.Metric != "order.latency.p50" || e.Significant || !strings.HasPrefix(e.Method, "rank-sum") {
		t.Errorf("p50 (unchanged, still over seconds): %+v", e)
	}
	// With no stall the counts are near 1% on both sides: no effect.
	calm := packetLoss(true)
	calm.Variants[0].Phases[report.PhaseDuring] = report.Phase{Requests: 500, OverBeforeP99: count(6), OverBeforeP999: count(1)}
	if e := FaultEffect(calm, "naive", nil, nil).Effects[1]; e.Significant {
		t.Errorf("6 against 5 over the p99 is noise: %+v", e)
	}
}
