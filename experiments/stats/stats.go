// Package stats is the arithmetic of repeated trials: the mean of a
// series with its Student t confidence interval (MeanInterval), the
// difference of two series (Welch: unpaired, Paired: trial by trial,
// MannWhitney: by ranks, for seconds with outliers), the
// comparison of two counts over their exposures (PoissonRates), and the
// bound a new trial stays within at a stated false-alarm rate
// (PredictionBound), which calibration proposes.
//
// Every function takes plain numbers and does no I/O; it imports nothing
// of this module. The model behind each is stated where it is defined and
// in docs/experiments.md ("Trials and confidence"): the trials of a
// variant are independent draws of the same quantity (each runs on a
// fresh topology), roughly normal when few. Requests within a trial are
// not independent (a noisy neighbour slows a stretch of seconds at once),
// so the intervals are over trials, never over the requests of one.
package stats

import (
	"math"
	"slices"
)

// DefaultLevel is the confidence level of the intervals reports show.
const DefaultLevel = 0.95

// Interval is an estimate of a mean with its confidence interval.
type Interval struct {
	Mean, Low, High float64
	N               int     // samples
	SD              float64 // sample standard deviation; 0 for one sample
	Level           float64 // confidence level; 0 when N < 2 (a point, no interval)
}

// Point reports whether the interval is a single value (one sample, or
// samples without spread).
func (iv Interval) Point() bool { return iv.Low == iv.High }

// Mean is the arithmetic mean of xs, NaN of none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// SD is the sample standard deviation of xs (n−1 in the denominator), 0
// for fewer than two.
func SD(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := Mean(xs)
	s := 0.0
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

// MeanInterval is the mean of xs with its two-sided Student t confidence
// interval at level (e.g. 0.95): mean ± t(1−(1−level)/2, n−1)·sd/√n. It
// covers the true mean at the stated rate when the samples are
// independent and normal; with a few trials of a skewed figure (a p99) it
// is approximate. One sample is a point: Low = High = the value.
func MeanInterval(xs []float64, level float64) Interval {
	iv := Interval{Mean: Mean(xs), N: len(xs)}
	iv.Low, iv.High = iv.Mean, iv.Mean
	if len(xs) < 2 {
		return iv
	}
	iv.SD, iv.Level = SD(xs), level
	half := TQuantile(1-(1-level)/2, float64(len(xs)-1)) * iv.SD / math.Sqrt(float64(len(xs)))
	iv.Low, iv.High = iv.Mean-half, iv.Mean+half
	return iv
}

// Test is the outcome of a test of a difference: the estimated
// difference (b − a) with its interval, and the two-sided p-value of "no
// difference".
type Test struct {
	Diff Interval
	P    float64
}

// Significant reports whether the test rejects "no difference" at alpha.
func (t Test) Significant(alpha float64) bool { return t.P < alpha }

// Welch compares the means of two independent series (b − a) with
// Welch's unequal-variance t test. Each needs two samples or more; with
// fewer, P is NaN (nothing can be said). Two series without any spread
// are significant when their means differ.
func Welch(a, b []float64, level float64) Test {
	t := Test{Diff: Interval{Mean: Mean(b) - Mean(a), N: len(a) + len(b)}, P: math.NaN()}
	t.Diff.Low, t.Diff.High = t.Diff.Mean, t.Diff.Mean
	if len(a) < 2 || len(b) < 2 {
		return t
	}
	va, vb := sq(SD(a))/float64(len(a)), sq(SD(b))/float64(len(b))
	se := math.Sqrt(va + vb)
	if se == 0 {
		t.P = 1
		if t.Diff.Mean != 0 {
			t.P = 0
		}
		return t
	}
	df := sq(va+vb) / (sq(va)/float64(len(a)-1) + sq(vb)/float64(len(b)-1))
	half := TQuantile(1-(1-level)/2, df) * se
	t.Diff.Low, t.Diff.High, t.Diff.Level, t.Diff.SD = t.Diff.Mean-half, t.Diff.Mean+half, level, se
	t.P = 2 * (1 - TCDF(math.Abs(t.Diff.Mean)/se, df))
	return t
}

// Paired compares two series trial by trial (b[i] − a[i], e.g. a figure
// during a fault against the same trial's before): a one-sample t test
// of the differences. Fewer than two pairs: P is NaN.
func Paired(a, b []float64, level float64) Test {
	n := min(len(a), len(b))
	d := make([]float64, n)
	for i := range n {
		d[i] = b[i] - a[i]
	}
	iv := MeanInterval(d, level)
	t := Test{Diff: iv, P: math.NaN()}
	if n < 2 {
		return t
	}
	if iv.SD == 0 {
		t.P = 1
		if iv.Mean != 0 {
			t.P = 0
		}
		return t
	}
	t.P = 2 * (1 - TCDF(math.Abs(iv.Mean)/(iv.SD/math.Sqrt(float64(n))), float64(n-1)))
	return t
}

// PoissonRates compares two counts over their exposures (events in
// seconds, say: ka in ta against kb in tb) under the model that each is a
// Poisson count at a steady rate: conditional on the total, kb is
// binomial with p = tb/(ta+tb) when the rates are equal. The two-sided
// p-value is exact (sum of the binomial probabilities no likelier than
// the one seen). Diff is the difference of the rates (per unit of
// exposure), without interval.
func PoissonRates(ka, ta, kb, tb float64) Test {
	t := Test{Diff: Interval{Mean: kb/tb - ka/ta, N: 2}, P: math.NaN()}
	t.Diff.Low, t.Diff.High = t.Diff.Mean, t.Diff.Mean
	if ta <= 0 || tb <= 0 || ka < 0 || kb < 0 {
		return t
	}
	n, k := int(math.Round(ka+kb)), int(math.Round(kb))
	if n == 0 {
		t.P = 1
		return t
	}
	p := tb / (ta + tb)
	seen := binomLogPMF(k, n, p)
	sum := 0.0
	for i := 0; i <= n; i++ {
		if lp := binomLogPMF(i, n, p); lp <= seen+1e-9 {
			sum += math.Exp(lp)
		}
	}
	t.P = math.Min(1, sum)
	return t
}

func binomLogPMF(k, n int, p float64) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	switch {
	case p == 0:
		if k == 0 {
			return 0
		}
		return math.Inf(-1)
	case p == 1:
		if k == n {
			return 0
		}
		return math.Inf(-1)
	}
	return lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
}

// PredictionBound is the bound one new sample stays below (upper true)
// or above (upper false) with probability 1 − falseAlarm, from the
// samples xs under the normal model: mean ± t(1−falseAlarm, n−1)·sd·√(1+1/n).
// It needs two samples or more; with fewer it returns NaN.
func PredictionBound(xs []float64, falseAlarm float64, upper bool) float64 {
	if len(xs) < 2 {
		return math.NaN()
	}
	n := float64(len(xs))
	half := TQuantile(1-falseAlarm, n-1) * SD(xs) * math.Sqrt(1+1/n)
	if upper {
		return Mean(xs) + half
	}
	return Mean(xs) - half
}

// Quantile is the q quantile (0..1) of xs by linear interpolation
// between order statistics; NaN of none. xs is not changed.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func sq(x float64) float64 { return x * x }

// MannWhitney compares two independent series by ranks (the Wilcoxon
// rank-sum test): whether a value of b tends to be larger or smaller than
// one of a, whatever the shape of either, so that a few huge outliers (a
// second of a busy machine) weigh as one rank each, not by their size.
// The two-sided p-value is the normal approximation of U with the
// correction for ties and for continuity, fair from about eight values a
// side. Diff is the difference of the medians (b − a), without interval.
// Fewer than two values a side: P is NaN.
func MannWhitney(a, b []float64) Test {
	t := Test{Diff: Interval{Mean: Quantile(b, 0.5) - Quantile(a, 0.5), N: len(a) + len(b)}, P: math.NaN()}
	t.Diff.Low, t.Diff.High = t.Diff.Mean, t.Diff.Mean
	if len(a) < 2 || len(b) < 2 {
		return t
	}
	type obs struct {
		x    float64
		isB  bool
		rank float64
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, x := range a {
		all = append(all, obs{x: x})
	}
	for _, x := range b {
		all = append(all, obs{x: x, isB: true})
	}
	slices.SortFunc(all, func(p, q obs) int {
		switch {
		case p.x < q.x:
			return -1
		case p.x > q.x:
			return 1
		}
		return 0
	})
	n := float64(len(all))
	ties := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].x == all[i].x {
			j++
		}
		for k := i; k < j; k++ {
			all[k].rank = float64(i+j+1) / 2 // the mean of ranks i+1 … j
		}
		tn := float64(j - i)
		ties += tn*tn*tn - tn
		i = j
	}
	rb := 0.0
	for _, o := range all {
		if o.isB {
			rb += o.rank
		}
	}
	na, nb := float64(len(a)), float64(len(b))
	u := rb - nb*(nb+1)/2
	mean := na * nb / 2
	sd := math.Sqrt(na * nb / 12 * ((n + 1) - ties/(n*(n-1))))
	if sd == 0 {
		t.P = 1
		return t
	}
	z := (math.Abs(u-mean) - 0.5) / sd
	if z < 0 {
		z = 0
	}
	t.P = math.Erfc(z / math.Sqrt2)
	return t
}

// Exceedances tests whether a tail moved, over requests rather than over
// seconds: of phase b's nb requests, d are slower than a quantile of
// phase a (a's p99, say), and of phase a's own na requests, j are. If every latency of both phases came
// from one distribution (exchangeable), the threshold is a's (j+1)-th
// largest value, and at least d of b's lie above it exactly when, among
// the d+j largest of all na+nb values, at most j are a's: so
// P(D ≥ d) = P(H ≥ d) for H hypergeometric (na+nb values, nb of them
// b's, d+j drawn), whatever the distribution. A slow tail in a few
// percent of b's requests moves d far above its expected nb·j/na even
// when only a few seconds' p99 rose, which a test over the seconds
// misses. The two-sided p-value doubles the smaller tail; ties at the
// threshold (a histogram's precision) only make the upper tail
// conservative. Requests are taken as independent, which overstates the
// evidence when slow requests come in bursts. Diff is the difference of
// the exceeding fractions (d/nb − j/na), without interval; P is NaN
// without requests on either side or with counts out of range.
func Exceedances(j, na, d, nb int) Test {
	t := Test{P: math.NaN()}
	if na <= 0 || nb <= 0 || j < 0 || d < 0 || j > na || d > nb {
		return t
	}
	t.Diff = Interval{Mean: float64(d)/float64(nb) - float64(j)/float64(na), N: na + nb}
	t.Diff.Low, t.Diff.High = t.Diff.Mean, t.Diff.Mean
	n := na + nb
	atLeast := func(k int) float64 { return hypergeomUpper(k, n, nb, k+j) }
	upper, lower := atLeast(d), 1.0
	if d < nb {
		lower = 1 - atLeast(d+1)
	}
	t.P = math.Min(1, 2*math.Min(upper, lower))
	return t
}

// hypergeomUpper is P(H ≥ k) for H the number of marked values among
// draws drawn without replacement from n values, marked of them marked.
func hypergeomUpper(k, n, marked, draws int) float64 {
	draws = min(draws, n)
	if k <= max(0, draws-(n-marked)) {
		return 1
	}
	lc := func(a, b int) float64 { // log of a choose b
		la, _ := math.Lgamma(float64(a) + 1)
		lb, _ := math.Lgamma(float64(b) + 1)
		lab, _ := math.Lgamma(float64(a-b) + 1)
		return la - lb - lab
	}
	sum, whole := 0.0, lc(n, draws)
	for i := k; i <= min(marked, draws); i++ {
		sum += math.Exp(lc(marked, i) + lc(n-marked, draws-i) - whole)
	}
	return math.Min(1, sum)
}
