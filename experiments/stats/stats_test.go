package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Quantiles of Student's t from the published tables.
func TestTQuantileTable(t *testing.T) {
	for _, c := range []struct{ p, df, want float64 }{
		{0.975, 1, 12.7062}, {0.975, 2, 4.3027}, {0.975, 4, 2.7764}, {0.975, 10, 2.2281},
		{0.975, 30, 2.0423}, {0.95, 2, 2.9200}, {0.99, 4, 3.7469}, {0.975, 1e6, 1.9600},
		{0.5, 3, 0}, {0.025, 2, -4.3027},
	} {
		if got := TQuantile(c.p, c.df); math.Abs(got-c.want) > 5e-4 {
			t.Errorf("TQuantile(%v, %v) = %.5f, want %.4f", c.p, c.df, got, c.want)
		}
	}
}

// sampleP99 is one trial of a synthetic service: n request latencies,
// exponential with mean 20 ms plus a per-trial slowdown (the machine's
// load in that trial, normal with sd 8 ms): its p99. The truth its
// trials scatter around is the exponential's p99, 20·ln(100) ms, plus
// the mean slowdown 0, up to the small bias of a sample quantile.
func sampleP99(r *rand.Rand, n int) float64 {
	slow := r.NormFloat64() * 8
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = r.ExpFloat64()*20 + slow
	}
	slices.Sort(xs)
	return xs[int(0.99*float64(n))]
}

// The interval over trials covers the true p99 at about its stated rate,
// over many deterministic seeds: neither too narrow (false verdicts) nor
// so wide that it says nothing.
func TestMeanIntervalCoversTrueP99(t *testing.T) {
	truth := 20 * math.Log(100) // 92.1 ms
	const seeds, trials = 600, 3
	covered := 0
	width := 0.0
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 20))
		xs := make([]float64, trials)
		for i := range xs {
			xs[i] = sampleP99(r, 2000)
		}
		iv := MeanInterval(xs, 0.95)
		if iv.Low <= truth && truth <= iv.High {
			covered++
		}
		width += iv.High - iv.Low
	}
	rate := float64(covered) / seeds
	// 95% over 600 seeds: binomial sd 0.9%; the sample p99's bias and the
	// non-normal tail take a little more.
	if rate < 0.92 || rate > 0.985 {
		t.Errorf("the 95%% interval covered the true p99 in %.1f%% of %d seeds", rate*100, seeds)
	}
	if w := width / seeds; w > 80 {
		t.Errorf("mean width %.1f ms: the interval says nothing", w)
	}
}

// A normal series with a known mean: coverage at 90% and 99% too.
func TestMeanIntervalLevels(t *testing.T) {
	for _, level := range []float64{0.9, 0.99} {
		covered := 0
		const seeds = 2000
		for seed := range seeds {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			xs := []float64{250 + 30*r.NormFloat64(), 250 + 30*r.NormFloat64(), 250 + 30*r.NormFloat64(), 250 + 30*r.NormFloat64()}
			if iv := MeanInterval(xs, level); iv.Low <= 250 && 250 <= iv.High {
				covered++
			}
		}
		rate := float64(covered) / seeds
		if math.Abs(rate-level) > 0.02 {
			t.Errorf("level %.2f: covered %.3f", level, rate)
		}
	}
}

func TestMeanIntervalOneSample(t *testing.T) {
	iv := MeanInterval([]float64{212}, 0.95)
	if iv.Mean != 212 || !iv.Point() || iv.Level != 0 || iv.N != 1 {
		t.Errorf("one sample: %+v, want the point 212 without level", iv)
	}
}

// Welch: two series from one distribution differ "significantly" at
// about alpha; a real difference of two standard deviations is found.
func TestWelchFalseAndTruePositives(t *testing.T) {
	const seeds = 2000
	falsePos, found := 0, 0
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 3))
		draw := func(mean float64) []float64 {
			xs := make([]float64, 5)
			for i := range xs {
				xs[i] = mean + 10*r.NormFloat64()
			}
			return xs
		}
		if Welch(draw(100), draw(100), 0.95).Significant(0.05) {
			falsePos++
		}
		if Welch(draw(100), draw(130), 0.95).Significant(0.05) {
			found++
		}
	}
	if rate := float64(falsePos) / seeds; rate > 0.065 {
		t.Errorf("false positives %.3f, want about 0.05", rate)
	}
	if rate := float64(found) / seeds; rate < 0.8 {
		t.Errorf("a 3-sd difference found in %.3f of seeds", rate)
	}
	if p := Welch([]float64{1}, []float64{2, 3}, 0.95).P; !math.IsNaN(p) {
		t.Errorf("one sample: p = %v, want NaN", p)
	}
}

func TestPaired(t *testing.T) {
	before := []float64{5, 6, 5.5}
	during := []float64{305, 310, 301}
	tt := Paired(before, during, 0.95)
	if !tt.Significant(0.01) || tt.Diff.Low < 250 {
		t.Errorf("a 300 ms fault: %+v", tt)
	}
	if tt := Paired([]float64{5, 6, 5.5}, []float64{5.2, 5.8, 5.6}, 0.95); tt.Significant(0.05) {
		t.Errorf("no fault: %+v is significant", tt)
	}
}

func TestPoissonRates(t *testing.T) {
	// 0 lost in 10 s before, 480 lost in 10 s during: no doubt.
	if p := PoissonRates(0, 10, 480, 10).P; p > 1e-10 {
		t.Errorf("0 against 480: p = %g", p)
	}
	// 3 against 5 in equal time: nothing to see. Exact: P(X<=3 or X>=5 | n=8, 1/2) = 0.7266.
	if p := PoissonRates(3, 10, 5, 10).P; math.Abs(p-0.7265625) > 1e-6 {
		t.Errorf("3 against 5: p = %g, want 0.7266", p)
	}
	if p := PoissonRates(0, 10, 0, 10).P; p != 1 {
		t.Errorf("nothing at all: p = %g, want 1", p)
	}
}

// The prediction bound is exceeded by a new trial at about the stated
// false-alarm rate.
func TestPredictionBoundFalseAlarmRate(t *testing.T) {
	const seeds = 4000
	alarms := 0
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		xs := make([]float64, 5)
		for i := range xs {
			xs[i] = 120 + 15*r.NormFloat64()
		}
		bound := PredictionBound(xs, 0.05, true)
		if next := 120 + 15*r.NormFloat64(); next >= bound {
			alarms++
		}
	}
	if rate := float64(alarms) / seeds; math.Abs(rate-0.05) > 0.015 {
		t.Errorf("false alarms %.3f, want 0.05", rate)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if q := Quantile(xs, 0.5); q != 3 {
		t.Errorf("median %v", q)
	}
	if q := Quantile(xs, 1); q != 5 {
		t.Errorf("max %v", q)
	}
	if xs[0] != 5 {
		t.Error("Quantile sorted its input")
	}
}

// Mann-Whitney: the known p-value of a small example, outliers that do
// not drown an effect, and about alpha false positives on one
// distribution.
func TestMannWhitney(t *testing.T) {
	// Every b above every a, 10 a side: U = 100, z = (50−0.5)/13.23: p = 0.00018.
	a := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	b := []float64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if p := MannWhitney(a, b).P; math.Abs(p-0.000183) > 2e-5 {
		t.Errorf("p = %g, want 0.00018", p)
	}
	// A busy machine: before mostly 5 ms with two 2 s spikes, during
	// mostly 300 ms: the t test drowns in the spikes, the ranks do not.
	before := []float64{5, 6, 4, 2000, 5, 7, 6, 2400, 5, 4}
	during := []float64{300, 310, 305, 2200, 320, 330, 301, 299, 315, 340}
	if rank, welch := MannWhitney(before, during).P, Welch(before, during, 0.95).P; rank > 0.05 || welch < 0.05 {
		t.Errorf("outliers: rank-sum p = %g (want below 0.05), Welch p = %g (drowned: above 0.05)", rank, welch)
	}
	falsePos := 0
	const seeds = 1000
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 5))
		x, y := make([]float64, 10), make([]float64, 10)
		for i := range x {
			x[i], y[i] = r.ExpFloat64(), r.ExpFloat64()
		}
		if MannWhitney(x, y).Significant(0.05) {
			falsePos++
		}
	}
	if rate := float64(falsePos) / seeds; rate > 0.065 {
		t.Errorf("false positives %.3f, want about 0.05 or less", rate)
	}
}

// Exceedances against probabilities counted by hand: one before value
// and one during value, the during one is the larger with probability
// 1/2; with two before values, above their max 1/3, above their min 2/3.
func TestExceedancesExact(t *testing.T) {
	for _, c := range []struct {
		j, na, d, nb int
		want         float64 // P(D ≥ d)
	}{
		{0, 1, 1, 1, 1.0 / 2}, {0, 2, 1, 1, 1.0 / 3}, {1, 2, 1, 1, 2.0 / 3}, {0, 2, 0, 1, 1},
		{0, 3, 2, 2, 1.0 / 10}, // both during values the top two of five
	} {
		if got := hypergeomUpper(c.d, c.na+c.nb, c.nb, c.d+c.j); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("P(D ≥ %d | j=%d of %d, %d during) = %v, want %v", c.d, c.j, c.na, c.nb, got, c.want)
		}
	}
	for _, bad := range [][4]int{{0, 0, 1, 1}, {1, 1, 0, 0}, {2, 1, 0, 1}, {0, 1, 2, 1}, {-1, 1, 0, 1}} {
		if p := Exceedances(bad[0], bad[1], bad[2], bad[3]).P; !math.IsNaN(p) {
			t.Errorf("Exceedances%v: P = %v, want NaN", bad, p)
		}
	}
}

// exceedanceTrial is one run of a synthetic service, n requests before
// and n during, latencies log-normal around 3 ms (a p99 near 8 ms); a
// share slow of the during requests stalls 300 ms more. It counts, as
// the runner does, the requests of each phase slower than the before
// phase's q quantile (nearest rank: 0.99 for the p99), and tests them.
func exceedanceTrial(r *rand.Rand, n int, slow, q float64) Test {
	lat := func() float64 { return 3 * math.Exp(0.4*r.NormFloat64()) }
	before, during := make([]float64, n), make([]float64, n)
	for i := range n {
		before[i], during[i] = lat(), lat()
		if r.Float64() < slow {
			during[i] += 300
		}
	}
	sorted := slices.Sorted(slices.Values(before))
	threshold := sorted[int(math.Ceil(q*float64(n)))-1]
	above := func(xs []float64) (k int) {
		for _, x := range xs {
			if x > threshold {
				k++
			}
		}
		return k
	}
	return Exceedances(above(before), n, above(during), n)
}

// A stall of 2% of the requests is found, at the threshold of one of
// nine figures tested together (Bonferroni, as in a fault effect with
// two variants), in nearly every run: over the p99 with 2,000 requests a
// phase, over the p999 (the second slowest request before) with 1,000
// (with 500, the catalogue's 10 s at 50/s, in about three runs of four),
// although it raises the p99 of only the seconds it falls in. With no
// stall the test alarms at most at its nominal rate (it is exact, so
// conservative by its discreteness).
func TestExceedancesTailShift(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	const runs, alpha = 400, 0.05 / 9
	for _, c := range []struct {
		n int
		q float64
	}{{2000, 0.99}, {1000, 0.999}} {
		found, alarms := 0, 0
		for range runs {
			if exceedanceTrial(r, c.n, 0.02, c.q).Significant(alpha) {
				found++
			}
			if exceedanceTrial(r, c.n, 0, c.q).Significant(alpha) {
				alarms++
			}
		}
		if found < runs*95/100 {
			t.Errorf("q %v, %d requests: a 2%% stall found in %d of %d runs, want ≥ 95%%", c.q, c.n, found, runs)
		}
		if rate := float64(alarms) / runs; rate > alpha*2 {
			t.Errorf("q %v, %d requests: no stall, false alarms in %d of %d runs (%.3f), want ≤ %.3f", c.q, c.n, alarms, runs, rate, alpha*2)
		}
	}
	// At the 5% level, over many runs of 500 requests a phase (the
	// catalogue's 10 s at 50/s): near alpha, not above it.
	for _, q := range []float64{0.99, 0.999} {
		alarms := 0
		for range 2000 {
			if exceedanceTrial(r, 500, 0, q).Significant(0.05) {
				alarms++
			}
		}
		if rate := float64(alarms) / 2000; rate > 0.06 || rate < 0.01 {
			t.Errorf("q %v, no stall, 500 requests: false-alarm rate %.3f at 5%%, want 0.01–0.06", q, rate)
		}
	}
}
