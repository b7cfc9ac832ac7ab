package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/stats"
)

// trials is how many times each variant runs: Options.Trials, at least
// one; a --target run runs once (it starts nothing fresh).
func (o Options) trials() int {
	if o.Trials < 1 || o.Target != nil {
		return 1
	}
	return o.Trials
}

// runTrials runs variant v as many times as the options ask, each trial a
// variantRun of its own (a fresh topology, the same seed and schedule),
// and returns the variant's report: the first trial's figures, every
// trial's scalar metrics in Trials, and, over two trials or more, each
// hypothesis judged on all of them (judgeTrials). A trial that fails the
// testbed, is stopped by an abort hypothesis or is interrupted ends the
// variant: its report stands for the variant, judged as one run is.
// With one trial this is exactly one variantRun.
func runTrials(ctx context.Context, exp *definition.Experiment, v definition.Variant, index, of int, o Options, kind, journal string) (report.Variant, traceSet, error) {
	n := o.trials()
	var (
		first  report.Variant
		traces traceSet
		trials []report.Trial
		values []*metrics.Values
		judged [][]report.Hypothesis
	)
	for t := range n {
		if t > 0 && ctx.Err() != nil {
			break
		}
		vr := &variantRun{
			exp: exp, variant: v, index: index, of: of, trial: t, trials: n, kind: kind, opts: o, journal: journal,
		}
		began := time.Now()
		err := vr.run(ctx)
		rv := vr.report
		trials = append(trials, report.Trial{
			Trial: t + 1, Passed: rv.Passed, DurationSeconds: time.Since(began).Seconds(), Metrics: rv.Metrics, Timeseries: rv.Timeseries, Error: rv.Error,
		})
		if t == 0 {
			first, traces = rv, vr.traces
		}
		if err != nil || rv.Stopped != nil || vr.values == nil || ctx.Err() != nil {
			rv.Trials = trials
			if t > 0 {
				traces = vr.traces
			}
			return rv, traces, err
		}
		values = append(values, vr.values)
		judged = append(judged, rv.Hypotheses)
	}
	first.Trials = trials
	if len(values) > 1 {
		first.Hypotheses = judgeTrials(exp, v.Name, o.Target != nil, values, judged)
		first.Passed = true
		for _, h := range first.Hypotheses {
			if h.Verdict != report.VerdictPass && h.Verdict != report.VerdictSkipped {
				first.Passed = false
			}
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%s [%s]: over %d trials: %s\n", exp.Name, v.Name, len(values), trialsVerdict(first.Hypotheses))
		}
	}
	return first, traces, nil
}

// estimate is the estimator of every verdict over trials: the mean with
// its Student t interval at stats.DefaultLevel.
func estimate(xs []float64) check.Estimate {
	iv := stats.MeanInterval(xs, stats.DefaultLevel)
	return check.Estimate{Mean: iv.Mean, Low: iv.Low, High: iv.High}
}

// judgeTrials judges each hypothesis that applies to the variant over
// the trials' metrics (check.EvalTrials with estimate): pass when every
// interval is on the right side of its bound, fail when one is wholly on
// the wrong side, inconclusive when one straddles it. judged holds each
// trial's own verdicts, in the order evaluate gives them; a hypothesis
// skipped in the first trial stays skipped.
func judgeTrials(exp *definition.Experiment, variant string, target bool, values []*metrics.Values, judged [][]report.Hypothesis) []report.Hypothesis {
	var out []report.Hypothesis
	j := 0
	for _, h := range exp.Hypotheses {
		if h.Variant != "" && h.Variant != variant && !target {
			continue
		}
		rh := judged[0][j]
		rh.Trials = nil
		for t := range judged {
			if j < len(judged[t]) {
				th := judged[t][j]
				rh.Trials = append(rh.Trials, report.HypothesisTrial{Trial: t + 1, Passed: th.Passed, Observed: th.Observed})
			}
		}
		j++
		if rh.Skipped {
			out = append(out, rh)
			continue
		}
		if nj := notJudgedIn(judged, j-1); nj != nil {
			// A trial could not judge it (its after phase too short):
			// neither can the trials together.
			nj.Trials = rh.Trials
			out = append(out, *nj)
			continue
		}
		envs := make([]check.Env, len(values))
		for t, m := range values {
			envs[t] = m.Env(string(h.When))
		}
		truth, cmps, err := check.EvalTrials(h.Expr, envs, estimate)
		rh.Confidence = stats.DefaultLevel
		rh.Intervals = []report.Estimate{}
		var described []string
		for _, c := range cmps {
			rh.Intervals = append(rh.Intervals, reportEstimate(c, len(values)))
			described = append(described, c.Describe())
		}
		rh.Passed = err == nil && truth == check.True
		rh.Verdict = report.HypothesisVerdict(rh.Passed, false, err == nil && truth == check.Unknown)
		switch {
		case err != nil:
			rh.Observed = "no value: " + err.Error()
		case len(described) > 0:
			rh.Observed = strings.Join(described, "; ")
		case truth == check.Unknown:
			rh.Observed = "the trials disagree: " + perTrial(rh.Trials)
		default:
			rh.Observed = "in every trial: " + judged[0][j-1].Observed
		}
		out = append(out, rh)
	}
	return out
}

// notJudgedIn returns the i-th hypothesis of the first trial that could
// not judge it (report.Hypothesis.NotJudged), or nil.
func notJudgedIn(judged [][]report.Hypothesis, i int) *report.Hypothesis {
	for _, hs := range judged {
		if i < len(hs) && hs[i].NotJudged() {
			h := hs[i]
			return &h
		}
	}
	return nil
}

// reportEstimate converts a comparison judged over n trials into the
// report's units (durations in ms).
func reportEstimate(c check.Comparison, n int) report.Estimate {
	unit := metrics.Unit(c.Type)
	scale := 1.0
	if unit == "ms" {
		scale = 1000
	}
	return report.Estimate{
		Comparison: c.Expr, Metric: c.Metric, Unit: unit, Op: c.Op, Bound: c.Bound * scale, Relative: c.Relative,
		Mean: c.Estimate.Mean * scale, Low: c.Estimate.Low * scale, High: c.Estimate.High * scale, N: n,
		Verdict: truthVerdict(c.Truth),
	}
}

func truthVerdict(t check.Truth) string {
	switch t {
	case check.True:
		return report.VerdictPass
	case check.False:
		return report.VerdictFail
	}
	return report.VerdictInconclusive
}

func perTrial(ts []report.HypothesisTrial) string {
	var s []string
	for _, t := range ts {
		word := "held"
		if !t.Passed {
			word = "failed"
		}
		s = append(s, fmt.Sprintf("trial %d %s (%s)", t.Trial, word, t.Observed))
	}
	return strings.Join(s, ", ")
}

// trialsVerdict counts the verdicts for the progress line.
func trialsVerdict(hs []report.Hypothesis) string {
	counts := map[string]int{}
	for _, h := range hs {
		counts[h.Verdict]++
	}
	var s []string
	for _, v := range []string{report.VerdictPass, report.VerdictFail, report.VerdictInconclusive, report.VerdictSkipped} {
		if counts[v] > 0 {
			s = append(s, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	return strings.Join(s, ", ")
}

// settleVerdicts gives every hypothesis of one run its verdict word and
// its one trial, once its outcome is final.
func settleVerdicts(hs []report.Hypothesis) {
	for i := range hs {
		h := &hs[i]
		h.Verdict = report.HypothesisVerdict(h.Passed, h.Skipped, h.Verdict == report.VerdictInconclusive)
		if h.Intervals == nil {
			h.Intervals = []report.Estimate{}
		}
		if !h.Skipped && !h.NotJudged() {
			h.Trials = []report.HypothesisTrial{{Trial: 1, Passed: h.Passed, Observed: h.Observed}}
		} else {
			h.Trials = []report.HypothesisTrial{}
		}
	}
}
