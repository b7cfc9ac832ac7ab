package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/experiments/stats"
	"github.com/fallacies/fallacies/topology"
)

func cmdCalibrate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "calibrate", "[flags] FILE|NAME", "run an experiment several times on this machine (each variant on a fresh topology, faults as written) and propose, for each bound of each hypothesis, the bound a new run breaches only at the stated false-alarm rate; prints the proposal as a YAML comment block and, with --out, writes the experiment file with the proposed bounds for you to review and accept")
	runs := fs.Int("runs", 5, "how many runs of each variant to learn from (`N`, 2 to "+strconv.Itoa(maxTrials)+"; more runs, tighter bounds)")
	falseAlarm := fs.Float64("false-alarm", 0.01, "the chance that a new run of a system that behaves as these did breaches a proposed bound (`RATE`, one-sided, per bound, e.g. 0.01)")
	out := fs.String("out", "", "also write the experiment file with the proposed bounds to `FILE` (e.g. experiments/latency.calibrated.yaml); the original is not changed")
	kind := fs.String("topology", "", "embedded, processes or compose (default: the file's, else embedded)")
	reports := fs.String("reports", "reports", "folder for the report folder of the calibration runs")
	quiet := fs.Bool("quiet", false, "no progress line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want one experiment file or catalogue name, e.g. fallacies calibrate experiments/latency.yaml --runs 5")
	}
	if *runs < 2 || *runs > maxTrials {
		return usageErr("--runs %d: want 2 to %d (a bound at a false-alarm rate needs the spread of two runs or more)", *runs, maxTrials)
	}
	if !(*falseAlarm > 0 && *falseAlarm < 0.5) {
		return usageErr("--false-alarm %v: want a rate above 0 and below 0.5, e.g. 0.01", *falseAlarm)
	}
	if *kind != "" {
		if err := oneOf("topology", *kind, topology.KindEmbedded, topology.KindProcesses, topology.KindCompose); err != nil {
			return err
		}
	}
	exps, err := loadAll(e, pos)
	if err != nil {
		return err
	}
	if len(exps) != 1 {
		return usageErr("%s: %d experiments; calibrate takes one file", pos[0], len(exps))
	}
	exp := exps[0]
	opts := runner.Options{Topology: *kind, ReportsDir: *reports, TTY: e.stderrTTY, Trials: *runs}
	if !*quiet {
		opts.Progress = e.stderr
		opts.Width = func() int { return terminalWidth(e.stderr) }
	}
	res, err := runner.Run(ctx, exp, opts)
	if err != nil {
		if res != nil {
			fmt.Fprintf(e.stderr, "fallacies calibrate: %v (report: %s)\n", err, res.Dir)
		}
		return testbedErr(err)
	}
	if ctx.Err() != nil {
		in := interrupted(ctx)
		fmt.Fprintf(e.stderr, "fallacies calibrate: %v; nothing proposed\n", in)
		return errSilent(in.code)
	}
	props := propose(exp, res.Report, *falseAlarm)
	writeProposal(e.stdout, exp, res, props, *runs, *falseAlarm)
	if *out != "" {
		if err := writeCalibrated(exp, props, *out); err != nil {
			return testbedErr(err)
		}
		fmt.Fprintf(e.stdout, "# wrote %s: review it, then accept it with: mv %s %s\n", *out, *out, exp.Path)
	}
	return nil
}

// proposal is what calibration proposes for one hypothesis.
type proposal struct {
	h      definition.Hypothesis
	bounds []boundProposal // one per numeric comparison with a literal (check.Bounds)
}

type boundProposal struct {
	cmp      check.Comparison
	values   []float64 // per run, over every variant the hypothesis applies to, in check units
	proposed float64   // NaN when nothing could be learned
	why      string    // when proposed is NaN
}

// propose learns a bound for every numeric comparison of every
// hypothesis from the runs' values: the prediction bound of one new run
// at the false-alarm rate (stats.PredictionBound), above the values for
// < and <=, below them for > and >=, over the variants the hypothesis
// applies to (the loosest of them).
func propose(exp *definition.Experiment, rep *report.Report, falseAlarm float64) []proposal {
	var out []proposal
	for _, h := range exp.Hypotheses {
		p := proposal{h: h}
		for _, c := range check.Bounds(h.Expr) {
			bp := boundProposal{cmp: c, proposed: math.NaN()}
			phase, name := check.SplitPhase(c.Metric)
			if phase == "" {
				phase = string(h.When)
			}
			scale := 1.0
			if info, ok := metrics.Lookup(name); ok && metrics.Unit(info.Type) == "ms" {
				scale = 1000 // report.json keeps durations in ms, the expression in seconds
			}
			upper := c.Op == "<" || c.Op == "<="
			for _, v := range rep.Variants {
				if h.Variant != "" && h.Variant != v.Name {
					continue
				}
				var xs []float64
				for _, t := range v.Trials {
					if x, ok := t.Metrics[phase+"."+name]; ok && t.Error == "" {
						xs = append(xs, x/scale)
					}
				}
				bp.values = append(bp.values, xs...)
				b := stats.PredictionBound(xs, falseAlarm, upper)
				switch {
				case math.IsNaN(b):
					bp.why = fmt.Sprintf("variant %s has %d runs with a value", v.Name, len(xs))
				case math.IsNaN(bp.proposed), upper && b > bp.proposed, !upper && b < bp.proposed:
					bp.proposed = b
				}
			}
			if bp.why != "" {
				bp.proposed = math.NaN()
			}
			bp.proposed = tidyBound(bp.proposed, c.Type, upper)
			p.bounds = append(p.bounds, bp)
		}
		if len(p.bounds) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// tidyBound keeps a proposed bound within its type's range: a ratio
// between 0 and 1, a count whole (rounded away from the values) and not
// below 0.
func tidyBound(b float64, t check.MetricType, upper bool) float64 {
	if math.IsNaN(b) {
		return b
	}
	switch t {
	case check.TypeRatio:
		b = math.Min(1, math.Max(0, b))
	case check.TypeCount:
		if upper {
			b = math.Ceil(b)
		} else {
			b = math.Floor(b)
		}
		b = math.Max(0, b)
	default:
		b = math.Max(0, b)
	}
	return b
}

func writeProposal(w io.Writer, exp *definition.Experiment, res *runner.Result, props []proposal, runs int, falseAlarm float64) {
	fmt.Fprintf(w, "# fallacies calibrate %s --runs %d --false-alarm %v\n", exp.Path, runs, falseAlarm)
	fmt.Fprintf(w, "# learned %s from %d runs of each variant (report: %s)%s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runs, res.Dir, loadNote())
	fmt.Fprintf(w, "# A run of a system that behaves as these did breaches each proposed bound with probability %v\n", falseAlarm)
	fmt.Fprintln(w, "# (one-sided, per bound: mean ± t·sd·√(1+1/n) of the runs' values, a normal model; docs/ci.md).")
	fmt.Fprintln(w, "# Calibrate on the machine the gate runs on, under its usual load: a quiet machine learns bounds a busy one breaches.")
	for _, p := range props {
		where := "every variant"
		if p.h.Variant != "" {
			where = "variant " + p.h.Variant
		}
		fmt.Fprintf(w, "#\n# %s (%s, %s; %s:%d)\n", p.h.Name, where, p.h.When, exp.Path, p.h.Line)
		var bounds []float64
		for _, b := range p.bounds {
			f := func(x float64) string { return check.FormatValue(b.cmp.Type, check.NumberValue(x)) }
			var vals []string
			for _, x := range b.values {
				vals = append(vals, f(x))
			}
			line := fmt.Sprintf("#   %s: runs %s", b.cmp.Metric, strings.Join(vals, " "))
			if math.IsNaN(b.proposed) {
				line += fmt.Sprintf("; nothing proposed (%s), keep %s %s", b.why, b.cmp.Op, f(b.cmp.Bound))
			} else {
				line += fmt.Sprintf(" → propose %s %s (written: %s %s)", b.cmp.Op, f(b.proposed), b.cmp.Op, f(b.cmp.Bound))
			}
			fmt.Fprintln(w, line)
			bounds = append(bounds, b.proposed)
		}
		fmt.Fprintf(w, "#   check: %q\n", check.WithBounds(p.h.Expr, bounds))
	}
}

// loadNote is the machine's load average, which every figure is read
// against.
func loadNote() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return ", load average " + strings.Join(f[:3], " ")
}

// writeCalibrated writes the experiment file with each hypothesis's check
// replaced by its proposal (on the check's own line), to path.
func writeCalibrated(exp *definition.Experiment, props []proposal, path string) error {
	src, err := os.ReadFile(exp.Path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(src), "\n")
	for _, p := range props {
		var bounds []float64
		for _, b := range p.bounds {
			bounds = append(bounds, b.proposed)
		}
		i := p.h.Line - 1
		if i < 0 || i >= len(lines) || !strings.Contains(lines[i], p.h.Check) {
			return fmt.Errorf("%s:%d: the check %q is not on its line as written; edit it by hand", exp.Path, p.h.Line, p.h.Check)
		}
		lines[i] = strings.Replace(lines[i], p.h.Check, check.WithBounds(p.h.Expr, bounds), 1)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}
