package check_test

import (
	"math"
	"testing"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/metrics"
)

// spread is an estimator for tests: the range of the values, widened by
// pad on each side when they differ.
func spread(pad float64) check.Estimator {
	return func(xs []float64) check.Estimate {
		lo, hi, s := math.Inf(1), math.Inf(-1), 0.0
		for _, x := range xs {
			lo, hi, s = math.Min(lo, x), math.Max(hi, x), s+x
		}
		if hi > lo { // values without spread are a point, as with stats.MeanInterval
			lo, hi = lo-pad, hi+pad
		}
		return check.Estimate{Mean: s / float64(len(xs)), Low: lo, High: hi}
	}
}

func trials(p99s []float64, isolated []bool) []check.Env {
	var envs []check.Env
	for i, p := range p99s {
		env := mapEnv{"order.latency.p99": check.NumberValue(p / 1000), "order.success_rate": check.NumberValue(0.995)}
		if isolated != nil {
			env["trace.async_isolated"] = check.BoolValue(isolated[i])
		}
		envs = append(envs, env)
	}
	return envs
}

func TestEvalTrials(t *testing.T) {
	est := spread(0.010) // ±10 ms around the trials' range
	for _, tt := range []struct {
		expr     string
		p99s     []float64 // ms, one per trial
		isolated []bool
		want     check.Truth
	}{
		{"order.latency.p99 < 250ms", []float64{120, 130, 140}, nil, check.True},
		{"order.latency.p99 < 250ms", []float64{300, 310, 320}, nil, check.False},
		{"order.latency.p99 < 250ms", []float64{230, 245, 256}, nil, check.Unknown},  // straddles
		{"order.latency.p99 < 250ms", []float64{235, 238, 242}, nil, check.Unknown},  // every trial held, the interval reaches the bound
		{"order.latency.p99 >= 250ms", []float64{230, 245, 256}, nil, check.Unknown}, // negation of the above: still unknown
		{"not order.latency.p99 < 250ms", []float64{300, 310}, nil, check.True},
		{"order.latency.p99 < 250ms and order.success_rate >= 99%", []float64{230, 245, 256}, nil, check.Unknown},
		{"order.latency.p99 < 250ms and order.success_rate >= 99.9%", []float64{230, 245, 256}, nil, check.False}, // false and unknown
		{"order.latency.p99 < 250ms or order.success_rate >= 99%", []float64{230, 245, 256}, nil, check.True},     // unknown or true
		{"order.latency.p99 < 2 * order.latency.p99", []float64{100, 120}, nil, check.True},                       // relative: p99 − 2·p99 < 0
		// relative with an offset: p99 − p99 = 0 against the offset
		{"order.latency.p99 < order.latency.p99 + 50ms", []float64{100, 120}, nil, check.True},
		{"order.latency.p99 >= order.latency.p99 + 50ms", []float64{100, 120}, nil, check.False},
		{"order.latency.p99 < order.latency.p99 + 0ms", []float64{100, 120}, nil, check.False},
		{"trace.async_isolated", []float64{1, 1, 1}, []bool{true, true, true}, check.True},
		{"trace.async_isolated", []float64{1, 1, 1}, []bool{true, false, true}, check.Unknown},
		{"not trace.async_isolated", []float64{1, 1}, []bool{true, true}, check.False},
		// One trial: exactly Eval's verdict, the estimator's padding aside.
		{"order.latency.p99 < 250ms", []float64{249}, nil, check.True},
		{"order.latency.p99 < 250ms", []float64{250}, nil, check.False},
	} {
		e, err := check.ParseExpr(tt.expr, metrics.Vocabulary)
		if err != nil {
			t.Fatal(err)
		}
		got, cmps, err := check.EvalTrials(e, trials(tt.p99s, tt.isolated), est)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got != tt.want {
			t.Errorf("%s over %v: %v, want %v (%+v)", tt.expr, tt.p99s, got, tt.want, cmps)
		}
		if len(tt.p99s) == 1 {
			ok, _, _ := check.Eval(e, trials(tt.p99s, tt.isolated)[0])
			if ok != (got == check.True) {
				t.Errorf("%s, one trial: EvalTrials %v, Eval %v", tt.expr, got, ok)
			}
		}
	}
}

func TestEvalTrialsComparisons(t *testing.T) {
	e, _ := check.ParseExpr("order.latency.p99 < 250ms and order.success_rate >= 99%", metrics.Vocabulary)
	_, cmps, err := check.EvalTrials(e, trials([]float64{230, 245, 256}, nil), spread(0.010))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmps) != 2 || cmps[0].Metric != "order.latency.p99" || cmps[0].Truth != check.Unknown || len(cmps[0].Values) != 3 {
		t.Fatalf("comparisons %+v", cmps)
	}
	if got, want := cmps[0].Describe(), "order.latency.p99 = 243.7ms [220ms, 266ms] < 250ms"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	// A metric one trial lacks: no evidence, no verdict.
	envs := trials([]float64{100, 120}, nil)
	delete(envs[1].(mapEnv), "order.latency.p99")
	if _, _, err := check.EvalTrials(e, envs, spread(0)); err == nil {
		t.Error("a trial without the metric: no error")
	}
}

func TestBoundsAndWithBounds(t *testing.T) {
	e, _ := check.ParseExpr("order.latency.p99 < 250ms and order.success_rate >= 99% and events.lost == 0 and order.throughput >= 0.9 * before.order.throughput", metrics.Vocabulary)
	bs := check.Bounds(e)
	if len(bs) != 2 || bs[0].Bound != 0.25 || bs[1].Bound != 0.99 {
		t.Fatalf("Bounds = %+v", bs)
	}
	got := check.WithBounds(e, []float64{0.1412, 0.9725})
	want := "order.latency.p99 < 141.2ms and order.success_rate >= 97.25% and events.lost == 0 and order.throughput >= 0.9 * before.order.throughput"
	if got != want {
		t.Errorf("WithBounds = %q, want %q", got, want)
	}
	if _, err := check.ParseExpr(got, metrics.Vocabulary); err != nil {
		t.Errorf("WithBounds wrote what does not parse: %v", err)
	}
	if got := check.WithBounds(e, []float64{math.NaN()}); got != e.String() {
		t.Errorf("NaN keeps the bound: %q", got)
	}

	// A relative comparison's bound is its offset; one without an offset
	// has no bound to learn.
	e, _ = check.ParseExpr("order.latency.p99 < before.order.latency.p99 + 200ms and order.throughput >= 0.9 * before.order.throughput", metrics.Vocabulary)
	bs = check.Bounds(e)
	if len(bs) != 1 || !bs[0].Relative || bs[0].Bound != 0.2 || bs[0].Right != "before.order.latency.p99" || bs[0].Factor != 1 {
		t.Fatalf("Bounds = %+v", bs)
	}
	got = check.WithBounds(e, []float64{0.15})
	if want := "order.latency.p99 < before.order.latency.p99 + 150ms and order.throughput >= 0.9 * before.order.throughput"; got != want {
		t.Errorf("WithBounds = %q, want %q", got, want)
	}
	if _, err := check.ParseExpr(got, metrics.Vocabulary); err != nil {
		t.Errorf("WithBounds wrote what does not parse: %v", err)
	}
}
