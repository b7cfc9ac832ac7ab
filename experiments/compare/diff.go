package compare

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/stats"
)

// DiffFigures are the figures Diff compares in every phase of every
// variant: how place_order answered. Worse is the direction of a
// regression: +1 when a rise is worse (latency), −1 when a fall is.
var DiffFigures = []struct {
	Figure
	Worse float64
}{
	{Figure{Metric: "order.latency.p50", Unit: "ms"}, +1},
	{Figure{Metric: "order.latency.p99", Unit: "ms"}, +1},
	{Figure{Metric: "order.success_rate", Unit: "fraction"}, -1},
	{Figure{Metric: "order.throughput", Unit: "1/s"}, -1},
}

func worseDirection(metric string) float64 {
	for _, f := range DiffFigures {
		if f.Metric == metric {
			return f.Worse
		}
	}
	return 0
}

// MinChange is the smallest relative change Diff calls a regression or
// an improvement, significant or not: a 3% shift found significant over
// thousands of seconds is not worth a warning.
const MinChange = 0.10

// Change is one figure of one variant and phase, base against new.
type Change struct {
	Experiment, Variant, Phase string
	Figure                     Figure
	Base, New                  float64 // means over the trials
	Relative                   float64 // (New − Base)/Base; NaN when Base is 0
	P                          float64 // two-sided p-value of no change; NaN when untestable
	Method                     string
	Significant                bool // P < Alpha/(figures tested)
	// Regression and Improvement: significant, at least MinChange, in
	// the figure's worse or better direction.
	Regression, Improvement bool
}

// VerdictChange is a hypothesis whose verdict differs between the runs.
type VerdictChange struct {
	Experiment, Variant, Hypothesis string
	Base, New                       string // verdict words; "" when absent from a run
}

// Diff is what changed between two runs of the same experiments.
type Diff struct {
	Changes  []Change
	Verdicts []VerdictChange
	// Warnings are significant regressions of a variant whose verdicts
	// did not change: within every bound, yet worse.
	Warnings []Change
	// Unmatched names what is in one run only (an experiment, a variant).
	Unmatched []string
}

// Reports compares every experiment of news with the one of the same
// name in bases: per variant and phase, the figures of DiffFigures
// (Welch t over the trials when both runs have two or more, else a
// rank-sum test over the phase's seconds of each run's first trial), and
// every hypothesis's verdict.
func Reports(bases, news []*report.Report) Diff {
	var d Diff
	byName := map[string]*report.Report{}
	for _, b := range bases {
		byName[b.Experiment] = b
	}
	seen := map[string]bool{}
	for _, n := range news {
		seen[n.Experiment] = true
		b := byName[n.Experiment]
		if b == nil {
			d.Unmatched = append(d.Unmatched, "experiment "+n.Experiment+": new, no base to compare with")
			continue
		}
		d.report(b, n)
	}
	for _, b := range bases {
		if !seen[b.Experiment] {
			d.Unmatched = append(d.Unmatched, "experiment "+b.Experiment+": in the base only")
		}
	}
	return d
}

func (d *Diff) report(base, next *report.Report) {
	for i := range next.Variants {
		nv := &next.Variants[i]
		var bv *report.Variant
		for j := range base.Variants {
			if base.Variants[j].Name == nv.Name {
				bv = &base.Variants[j]
			}
		}
		if bv == nil {
			d.Unmatched = append(d.Unmatched, fmt.Sprintf("%s variant %s: new, no base", next.Experiment, nv.Name))
			continue
		}
		verdictsSame := d.verdicts(next.Experiment, bv, nv)
		var changes []Change
		for _, phase := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter} {
			for _, f := range DiffFigures {
				c, ok := change(bv, nv, phase, f.Figure)
				if !ok {
					continue
				}
				c.Experiment = next.Experiment
				changes = append(changes, c)
			}
		}
		m := 0.0
		for _, c := range changes {
			if !math.IsNaN(c.P) {
				m++
			}
		}
		for k := range changes {
			c := &changes[k]
			worse := worseDirection(c.Figure.Metric)
			c.Significant = !math.IsNaN(c.P) && c.P < Alpha/m
			big := !math.IsNaN(c.Relative) && math.Abs(c.Relative) >= MinChange
			c.Regression = c.Significant && big && c.Relative*worse > 0
			c.Improvement = c.Significant && big && c.Relative*worse < 0
			if c.Regression && verdictsSame {
				d.Warnings = append(d.Warnings, *c)
			}
		}
		d.Changes = append(d.Changes, changes...)
	}
}

// verdicts records the hypotheses of a variant whose verdict changed and
// reports whether none did.
func (d *Diff) verdicts(experiment string, base, next *report.Variant) bool {
	key := func(h report.Hypothesis) string { return h.Name + "|" + h.Expr + "|" + h.Phase }
	bs := map[string]string{}
	for _, h := range base.Hypotheses {
		bs[key(h)] = verdictOf(h)
	}
	same := true
	for _, h := range next.Hypotheses {
		b, ok := bs[key(h)]
		delete(bs, key(h))
		if n := verdictOf(h); !ok || b != n {
			same = false
			d.Verdicts = append(d.Verdicts, VerdictChange{Experiment: experiment, Variant: next.Name, Hypothesis: title(h), Base: b, New: n})
		}
	}
	for _, h := range base.Hypotheses {
		if _, gone := bs[key(h)]; gone {
			same = false
			d.Verdicts = append(d.Verdicts, VerdictChange{Experiment: experiment, Variant: next.Name, Hypothesis: title(h), Base: bs[key(h)]})
		}
	}
	return same
}

func verdictOf(h report.Hypothesis) string {
	if h.Verdict != "" {
		return h.Verdict
	}
	return report.HypothesisVerdict(h.Passed, h.Skipped, false)
}

func title(h report.Hypothesis) string {
	if h.Name != "" {
		return h.Name
	}
	return h.Expr
}

// change compares one figure of one phase of two runs of a variant.
func change(base, next *report.Variant, phase string, f Figure) (Change, bool) {
	key := phase + "." + f.Metric
	a, b := trialValues(base, key), trialValues(next, key)
	if len(a) == 0 || len(b) == 0 {
		return Change{}, false
	}
	c := Change{Variant: next.Name, Phase: phase, Figure: f, Base: stats.Mean(a), New: stats.Mean(b), P: math.NaN()}
	c.Relative = math.NaN()
	if c.Base != 0 {
		c.Relative = (c.New - c.Base) / math.Abs(c.Base)
	}
	var t stats.Test
	if len(a) >= 2 && len(b) >= 2 {
		t, c.Method = stats.Welch(a, b, stats.DefaultLevel), fmt.Sprintf("Welch t over trials (%d, %d)", len(a), len(b))
	} else {
		// The first trial of each: a one-trial run has no other.
		sa, oka := seconds(base, [][]report.Second{base.Timeseries}, phase, f.Metric)
		sb, okb := seconds(next, [][]report.Second{next.Timeseries}, phase, f.Metric)
		if !oka || !okb {
			c.Method = "not testable (too few seconds)"
			return c, true
		}
		t, c.Method = stats.MannWhitney(sa, sb), fmt.Sprintf("rank-sum over seconds (%d, %d)", len(sa), len(sb))
	}
	c.P = t.P
	return c, true
}

// Text writes the diff for a terminal or a pull request comment: the
// warnings first, then the verdicts that changed, then every figure that
// changed significantly (all figures with all set).
func Text(w io.Writer, d Diff, all bool) error {
	var b strings.Builder
	if len(d.Warnings) > 0 {
		fmt.Fprintf(&b, "WARNING: %d significant regression(s) within every bound (the verdicts did not change):\n", len(d.Warnings))
		for _, c := range d.Warnings {
			fmt.Fprintf(&b, "  %s %s %s %s: %s → %s (%+.1f%%, p=%s)\n", c.Experiment, c.Variant, c.Phase, c.Figure.Metric,
				fmtFigure(c.Base, c.Figure.Unit), fmtFigure(c.New, c.Figure.Unit), 100*c.Relative, fmtP(c.P))
		}
		b.WriteString("\n")
	}
	if len(d.Verdicts) > 0 {
		b.WriteString("Verdicts that changed:\n")
		for _, v := range d.Verdicts {
			fmt.Fprintf(&b, "  %s %s %q: %s → %s\n", v.Experiment, v.Variant, v.Hypothesis, dash(v.Base), dash(v.New))
		}
		b.WriteString("\n")
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tVARIANT\tPHASE\tFIGURE\tBASE\tNEW\tCHANGE\tP\tSAYS\tTEST")
	shown := 0
	for _, c := range d.Changes {
		if !all && !c.Significant {
			continue
		}
		shown++
		says := "noise"
		switch {
		case c.Regression:
			says = "regression"
		case c.Improvement:
			says = "improvement"
		case c.Significant:
			says = "significant, small"
		case math.IsNaN(c.P):
			says = "untested"
		}
		rel := "-"
		if !math.IsNaN(c.Relative) {
			rel = fmt.Sprintf("%+.1f%%", 100*c.Relative)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Experiment, c.Variant, c.Phase, c.Figure.Metric,
			fmtFigure(c.Base, c.Figure.Unit), fmtFigure(c.New, c.Figure.Unit), rel, fmtP(c.P), says, c.Method)
	}
	tw.Flush()
	if shown > 0 {
		b.WriteString(table.String())
	} else {
		b.WriteString("No figure changed significantly.\n")
	}
	for _, u := range d.Unmatched {
		fmt.Fprintf(&b, "note: %s\n", u)
	}
	regressions := 0
	for _, c := range d.Changes {
		if c.Regression {
			regressions++
		}
	}
	fmt.Fprintf(&b, "Summary: %d figures compared, %d significant regression(s) (%d within every bound: warnings), %d verdict(s) changed\n",
		len(d.Changes), regressions, len(d.Warnings), len(d.Verdicts))
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtFigure(x float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.1fms", x)
	case "fraction":
		return fmt.Sprintf("%.2f%%", 100*x)
	case "1/s":
		return fmt.Sprintf("%.1f/s", x)
	}
	return fmt.Sprintf("%.4g", x)
}

func fmtP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "-"
	case p < 0.001:
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func dash(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
