// Package compare puts the figures of runs side by side with the
// statistics of experiments/stats: whether an experiment's fault changed
// its naive variant at all (FaultEffect: during against before, or the
// naive variant against the others), and what changed between two
// reports of the same experiment, e.g. main's and a pull request's
// (Diff, DiffText). It reads only report data, so that `fallacies diff`
// works on any two report.json files, and does no I/O of its own.
package compare

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/stats"
)

// Alpha is the family-wise false-alarm rate of a set of tests: each of m
// tests is significant below Alpha/m (Bonferroni).
const Alpha = 0.05

// How an Effect compares.
const (
	DuringVsBefore = "during vs before"
	VariantVs      = " vs " // "naive vs resilient"
)

// Figure is a metric to compare, as report.json keys it without the
// phase: order.latency.p50.
type Figure struct {
	Metric string
	Unit   string // as report.json writes it: ms, fraction, 1/s, 1, "0 or 1"
	// Count marks a count of events: with one trial per side, two counts
	// are compared as Poisson rates over their phases' lengths.
	Count bool
	// Phase is the phase the figure is compared in across variants
	// (always, during); DuringVsBefore figures leave it empty.
	Phase string
}

// RequestFigures are compared during against before in every fault
// effect: how place_order answered.
var RequestFigures = []Figure{
	{Metric: "order.latency.p50", Unit: "ms"},
	{Metric: "order.latency.p99", Unit: "ms"},
	{Metric: "order.success_rate", Unit: "fraction"},
}

// TailFigures are compared during against before as well when the
// report counts the requests over the before phase's tail (one trial of
// a version that records them): the p99 of a thousand requests is
// about their tenth slowest, the p999 their slowest, so a stall of a
// dozen requests, too few to move a p99 count far from its expected 1%,
// stands out above the before phase's slowest.
var TailFigures = []Figure{
	{Metric: "order.latency.p999", Unit: "ms"},
}

// FaultEffect compares the figures of variant naive of rep during the
// fault against before it (during, plus RequestFigures and, where the
// report counts them, TailFigures), and against
// every other variant in the same phase (across), and says whether any
// changed significantly. With one trial, a tail figure (the p99, the
// p999) during vs before is tested over the requests (stats.Exceedances:
// how many were slower than the before phase's value of it, in each
// phase).
// Over two trials or more a figure is tested
// over the trials (paired t during vs before, Welch t across variants);
// with one trial, the other request figures are tested over the seconds of
// each phase (a rank-sum test: the seconds are taken as independent,
// which overstates the evidence a little when neighbouring seconds are
// alike),
// counts as Poisson rates, yes/no figures as exact observations (a
// difference in every trial counts). The seconds are compared by ranks
// (stats.MannWhitney): a busy machine's seconds carry spikes of seconds
// that would drown a t test. Figures no test applies to are named
// in the note. Nil when nothing could be tested.
func FaultEffect(rep *report.Report, naive string, during, across []Figure) *report.FaultEffect {
	var v *report.Variant
	for i := range rep.Variants {
		if rep.Variants[i].Name == naive {
			v = &rep.Variants[i]
		}
	}
	if v == nil {
		return nil
	}
	fe := &report.FaultEffect{Variant: naive, Alpha: Alpha}
	var untested []string
	figures := slices.Clone(RequestFigures)
	for _, f := range TailFigures {
		if _, _, _, _, ok := exceedances(v, f.Metric); ok {
			figures = append(figures, f)
		}
	}
	for _, f := range uniqueFigures(append(figures, during...)) {
		e, ok := duringVsBefore(v, f)
		if !ok {
			untested = append(untested, f.Metric+" "+DuringVsBefore)
			continue
		}
		fe.Effects = append(fe.Effects, e)
	}
	for _, f := range uniqueFigures(across) {
		for i := range rep.Variants {
			o := &rep.Variants[i]
			if o.Name == naive || o.Error != "" {
				continue
			}
			e, ok := variantVsVariant(v, o, f)
			if !ok {
				untested = append(untested, f.Phase+"."+f.Metric+" "+naive+VariantVs+o.Name)
				continue
			}
			fe.Effects = append(fe.Effects, e)
		}
	}
	if len(fe.Effects) == 0 {
		return nil
	}
	m := float64(len(fe.Effects))
	for i := range fe.Effects {
		e := &fe.Effects[i]
		e.Significant = e.P < Alpha/m
		fe.Significant = fe.Significant || e.Significant
	}
	if len(untested) > 0 {
		fe.Note = "not testable: " + strings.Join(untested, ", ")
	}
	return fe
}

func uniqueFigures(fs []Figure) []Figure {
	var out []Figure
	seen := map[string]bool{}
	for _, f := range fs {
		k := f.Phase + "|" + f.Metric
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}

// trialValues is key's value in every trial of v that has it.
func trialValues(v *report.Variant, key string) []float64 {
	var xs []float64
	for _, t := range v.Trials {
		if x, ok := t.Metrics[key]; ok && t.Error == "" {
			xs = append(xs, x)
		}
	}
	if len(v.Trials) == 0 { // a report of an older version
		if x, ok := v.Metrics[key]; ok {
			xs = append(xs, x)
		}
	}
	return xs
}

func duringVsBefore(v *report.Variant, f Figure) (report.Effect, bool) {
	before, during := trialValues(v, report.PhaseBefore+"."+f.Metric), trialValues(v, report.PhaseDuring+"."+f.Metric)
	e := report.Effect{Metric: f.Metric, Compare: DuringVsBefore, Unit: f.Unit, Base: stats.Mean(before), Value: stats.Mean(during)}
	e.Change = e.Value - e.Base
	var t stats.Test
	b, d, secondsOK := phaseSeconds(v, f.Metric)
	j, nb, k, nd, tailOK := exceedances(v, f.Metric)
	switch {
	case len(before) == 0 || len(during) == 0:
		return e, false
	case tailOK:
		t, e.Method = stats.Exceedances(j, nb, k, nd), fmt.Sprintf("exceedances over requests: %d of %d during, %d of %d before slower than before's %s (1 trial)", k, nd, j, nb, tailName[f.Metric])
	case secondsOK:
		t, e.Method = stats.MannWhitney(b, d), fmt.Sprintf("rank-sum over seconds (%d before, %d during; %d trial(s))", len(b), len(d), max(1, len(v.Trials)))
	case len(before) >= 2 && len(before) == len(during):
		t, e.Method = stats.Paired(before, during, stats.DefaultLevel), fmt.Sprintf("paired t over %d trials", len(before))
	case f.Unit == "0 or 1":
		return yesNo(e, before, during)
	case f.Count:
		bs, ds := phaseLengths(v)
		t, e.Method = stats.PoissonRates(before[0], bs, during[0], ds), "Poisson rates over the phases' lengths (1 trial)"
	default:
		return e, false
	}
	if math.IsNaN(t.P) {
		return e, false
	}
	e.P = t.P
	return e, true
}

func variantVsVariant(naive, other *report.Variant, f Figure) (report.Effect, bool) {
	key := f.Phase + "." + f.Metric
	a, b := trialValues(other, key), trialValues(naive, key)
	e := report.Effect{Metric: key, Compare: naive.Name + VariantVs + other.Name, Unit: f.Unit, Base: stats.Mean(a), Value: stats.Mean(b)}
	e.Change = e.Value - e.Base
	var t stats.Test
	switch {
	case len(a) == 0 || len(b) == 0:
		return e, false
	case f.Unit == "0 or 1":
		return yesNo(e, a, b)
	case len(a) >= 2 && len(b) >= 2:
		t, e.Method = stats.Welch(a, b, stats.DefaultLevel), fmt.Sprintf("Welch t over trials (%d and %d)", len(b), len(a))
	case f.Count:
		// The same schedule: equal exposure per trial.
		t, e.Method = stats.PoissonRates(sum(a), float64(len(a)), sum(b), float64(len(b))), "Poisson rates (same schedule)"
	default:
		return e, false
	}
	if math.IsNaN(t.P) {
		return e, false
	}
	e.P = t.P
	return e, true
}

// yesNo compares yes/no figures as exact observations: different when
// every value of one side differs from every value of the other.
func yesNo(e report.Effect, a, b []float64) (report.Effect, bool) {
	e.Method, e.P = "yes/no, as observed (exact)", 1
	if slices.Min(a) == slices.Max(a) && slices.Min(b) == slices.Max(b) && a[0] != b[0] {
		e.P = 0
	}
	return e, true
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// tailName names the quantile of a tail figure, and overBefore picks
// from a phase how many of its requests were slower than the before
// phase's value of it.
var (
	tailName   = map[string]string{"order.latency.p99": "p99", "order.latency.p999": "p999"}
	overBefore = map[string]func(report.Phase) *int64{
		"order.latency.p99":  func(p report.Phase) *int64 { return p.OverBeforeP99 },
		"order.latency.p999": func(p report.Phase) *int64 { return p.OverBeforeP999 },
	}
)

// exceedances is, for a tail figure of a variant run once, how many of
// the before phase's nb requests (j) and of the during phase's nd (k)
// were slower than the before phase's value of the figure; ok is false
// for other figures, several trials (the phases are the first trial's)
// or a report of an older version. A tail moves in a few requests, which
// may raise the p99 of only a few seconds: counted over the requests, a
// stall of 2% of them stands out where a rank-sum over the seconds'
// p99s does not.
func exceedances(v *report.Variant, metric string) (j, nb, k, nd int, ok bool) {
	pick := overBefore[metric]
	before, during := v.Phases[report.PhaseBefore], v.Phases[report.PhaseDuring]
	if pick == nil || len(v.Trials) > 1 || pick(before) == nil || pick(during) == nil || before.Requests == 0 || during.Requests == 0 {
		return 0, 0, 0, 0, false
	}
	return int(*pick(before)), int(before.Requests), int(*pick(during)), int(during.Requests), true
}

// perSecond picks a request figure from a second of a timeseries.
var perSecond = map[string]func(report.Second) float64{
	"order.latency.p50":  func(s report.Second) float64 { return s.P50Ms },
	"order.latency.p99":  func(s report.Second) float64 { return s.P99Ms },
	"order.success_rate": func(s report.Second) float64 { return s.SuccessRate },
	"order.throughput":   func(s report.Second) float64 { return float64(s.Successes) },
}

// seconds is a request figure second by second over one phase, from the
// timeseries of every trial of the variant, pooled (trials lists its
// trials' series; one series for a report of an older version); ok is
// false for a figure the timeseries does not carry or fewer than two
// seconds with requests. A second is before when it ends by the first
// fault's start, during while a fault is on, after when it starts at the
// last fault's end or later.
func seconds(v *report.Variant, trials [][]report.Second, phase, metric string) ([]float64, bool) {
	pick := perSecond[metric]
	if pick == nil {
		return nil, false
	}
	first, last := faultSpan(v)
	var xs []float64
	for _, series := range trials {
		for _, s := range series {
			if s.Requests > 0 && phaseOf(s, first, last) == phase {
				xs = append(xs, pick(s))
			}
		}
	}
	return xs, len(xs) >= 2
}

func phaseOf(s report.Second, first, last float64) string {
	switch {
	case len(s.ActiveFaults) > 0:
		return report.PhaseDuring
	case float64(s.T+1) <= first:
		return report.PhaseBefore
	case float64(s.T) >= last:
		return report.PhaseAfter
	}
	return ""
}

// phaseSeconds is a request figure second by second before and during
// the faults, pooled over the variant's trials.
func phaseSeconds(v *report.Variant, metric string) (before, during []float64, ok bool) {
	before, okb := seconds(v, timeseries(v), report.PhaseBefore, metric)
	during, okd := seconds(v, timeseries(v), report.PhaseDuring, metric)
	return before, during, okb && okd
}

// timeseries is every trial's timeseries, or the variant's for a report
// of an older version.
func timeseries(v *report.Variant) [][]report.Second {
	var out [][]report.Second
	for _, t := range v.Trials {
		if t.Error == "" && len(t.Timeseries) > 0 {
			out = append(out, t.Timeseries)
		}
	}
	if len(out) == 0 {
		out = append(out, v.Timeseries)
	}
	return out
}

// faultSpan is the first fault's start and the last fault's end, in
// seconds from the run start.
func faultSpan(v *report.Variant) (first, last float64) {
	first, last = math.Inf(1), math.Inf(-1)
	for _, f := range v.Faults {
		first, last = math.Min(first, f.StartOffset), math.Max(last, f.EndOffset)
	}
	return first, last
}

// phaseLengths is how many seconds the steady state and the fault
// windows lasted, from the first trial's timeseries.
func phaseLengths(v *report.Variant) (before, during float64) {
	first, last := faultSpan(v)
	for _, s := range v.Timeseries {
		switch phaseOf(s, first, last) {
		case report.PhaseBefore:
			before++
		case report.PhaseDuring:
			during++
		}
	}
	return before, during
}
