package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	fs := newFlags(e, "calibrate", "[flags] FILE|NAME", "run an experiment several times on this machine (each variant on a fresh topology, faults as written, or none with --control) and propose, for each bound of each hypothesis, the bound a new run breaches only at the stated false-alarm rate; prints the proposal as a YAML comment block and, with --out, writes the experiment file with the proposed bounds for you to review and accept")
	runs := fs.Int("runs", 5, "how many runs of each variant to learn from (`N`, 2 to "+strconv.Itoa(maxTrials)+"; more runs, tighter bounds)")
	control := fs.Bool("control", false, "learn from fault-free runs: the faults' schedule is followed but nothing is injected; each bound is checked against what the variant does on this machine when nothing is wrong (loosened where a fault-free run breaches it), and a hypothesis of the naive variant that holds without the fault is flagged")
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
	if err := checkOutFile("out", *out); err != nil {
		return err
	}
	if err := checkOutDir("reports", *reports); err != nil {
		return err
	}
	exp := exps[0]
	opts := runner.Options{Topology: *kind, ReportsDir: *reports, TTY: e.stderrTTY, Trials: *runs, Control: *control}
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
	c := calibration{exp: exp, rep: res.Report, dir: res.Dir, runs: *runs, falseAlarm: *falseAlarm, control: *control}
	props := c.propose()
	c.write(e.stdout, props)
	if *out != "" {
		if err := writeCalibrated(exp, props, *out); err != nil {
			return testbedErr(err)
		}
		fmt.Fprintf(e.stdout, "# wrote %s: review it, then accept it with: mv %s %s\n", *out, *out, exp.Path)
	}
	return nil
}

// calibration is what calibrate learned from: the runs' report.
type calibration struct {
	exp        *definition.Experiment
	rep        *report.Report
	dir        string // the runs' report folder
	runs       int
	falseAlarm float64
	// control: the runs were fault-free (runner.Options.Control); each
	// bound is checked against them instead of learned from them.
	control bool
}

// proposal is what calibration proposes for one hypothesis.
type proposal struct {
	h      definition.Hypothesis
	bounds []boundProposal // one per numeric comparison with a literal bound (check.Bounds)
	// faultBit: a control's hypothesis bound to the naive variant, which
	// must not hold without the fault; held counts the fault-free runs
	// in which it held anyway.
	faultBit   bool
	held, runs int
}

type boundProposal struct {
	cmp     check.Comparison
	values  []float64 // per run, over every variant the hypothesis applies to, in check units
	learned float64   // the prediction bound of the values (NaN: none)
	// proposed is the bound to write: learned, or in a control the
	// written bound loosened to learned where a fault-free run breaches
	// it; NaN keeps the written one.
	proposed float64
	why      string // when learned is NaN
}

// propose learns a bound for every numeric comparison of every
// hypothesis from the runs' values (a relative one's offset from
// left − factor·right): the prediction bound of one new run at the
// false-alarm rate (stats.PredictionBound), above the values for < and
// <=, below them for > and >=, over the variants the hypothesis applies
// to (the loosest of them). In a control, a bound is kept where the
// fault-free bound is inside it and loosened to it where not; a
// hypothesis of the naive variant gets the bound on the other side (what
// a fault-free run reaches toward it) and is never rewritten.
func (c calibration) propose() []proposal {
	naive := runner.NaiveVariant(c.rep)
	var out []proposal
	for i, h := range c.exp.Hypotheses {
		p := proposal{h: h, faultBit: c.control && h.Variant != "" && h.Variant == naive}
		if p.faultBit {
			p.held, p.runs = c.heldIn(i)
		}
		for _, cmp := range check.Bounds(h.Expr) {
			bp := boundProposal{cmp: cmp, learned: math.NaN(), proposed: math.NaN()}
			upper := cmp.Op == "<" || cmp.Op == "<="
			side := upper != p.faultBit // a fault bit: how far a fault-free run reaches toward the bound
			for _, v := range c.rep.Variants {
				if h.Variant != "" && h.Variant != v.Name {
					continue
				}
				var xs []float64
				for _, t := range v.Trials {
					if x, ok := comparisonValue(t, cmp, string(h.When)); ok {
						xs = append(xs, x)
					}
				}
				bp.values = append(bp.values, xs...)
				b := stats.PredictionBound(xs, c.falseAlarm, side)
				switch {
				case math.IsNaN(b):
					bp.why = fmt.Sprintf("variant %s has %d runs with a value", v.Name, len(xs))
				case math.IsNaN(bp.learned), side && b > bp.learned, !side && b < bp.learned:
					bp.learned = b
				}
			}
			if bp.why != "" {
				bp.learned = math.NaN()
			}
			bp.learned = tidyBound(bp.learned, cmp, side)
			switch {
			case !c.control:
				bp.proposed = bp.learned
			case !p.faultBit && !math.IsNaN(bp.learned) && !check.Compare(bp.learned, cmp.Op, cmp.Bound):
				bp.proposed = bp.learned // a fault-free run breaches the written bound
			}
			p.bounds = append(p.bounds, bp)
		}
		if len(p.bounds) > 0 || p.faultBit {
			out = append(out, p)
		}
	}
	return out
}

// heldIn counts the runs of its variant in which the i-th hypothesis
// held, of the runs that judged it. A variant's report lists the
// hypotheses that apply to it in the file's order.
func (c calibration) heldIn(i int) (held, runs int) {
	h := c.exp.Hypotheses[i]
	for _, v := range c.rep.Variants {
		if v.Name != h.Variant {
			continue
		}
		j := 0
		for _, other := range c.exp.Hypotheses[:i] {
			if other.Variant == "" || other.Variant == v.Name {
				j++
			}
		}
		if j >= len(v.Hypotheses) || v.Hypotheses[j].Skipped {
			continue
		}
		for _, t := range v.Hypotheses[j].Trials {
			runs++
			if t.Passed {
				held++
			}
		}
	}
	return held, runs
}

// comparisonValue is the value of a comparison's left side in one run,
// minus factor times its right side for a relative one, in check units
// (report.json keeps durations in ms, the expression seconds); a metric
// without a phase is read in when.
func comparisonValue(t report.Trial, c check.Comparison, when string) (float64, bool) {
	if t.Error != "" {
		return 0, false
	}
	read := func(metric string) (float64, bool) {
		phase, name := check.SplitPhase(metric)
		if phase == "" {
			phase = when
		}
		x, ok := t.Metrics[phase+"."+name]
		if info, known := metrics.Lookup(name); known && metrics.Unit(info.Type) == "ms" {
			x /= 1000
		}
		return x, ok
	}
	x, ok := read(c.Metric)
	if !ok || !c.Relative {
		return x, ok
	}
	r, ok := read(c.Right)
	return x - c.Factor*r, ok
}

// tidyBound keeps a proposed bound within its type's range: a ratio
// between 0 and 1, a count whole (rounded away from the values) and not
// below 0. A relative comparison's offset is not below 0 either (an
// offset is written + d).
func tidyBound(b float64, c check.Comparison, upper bool) float64 {
	if math.IsNaN(b) {
		return b
	}
	switch {
	case c.Type == check.TypeRatio && !c.Relative:
		b = math.Min(1, math.Max(0, b))
	case c.Type == check.TypeCount:
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

func (c calibration) write(w io.Writer, props []proposal) {
	exp := c.exp
	flags := ""
	if c.control {
		flags = " --control"
	}
	fmt.Fprintf(w, "# fallacies calibrate %s%s --runs %d --false-alarm %v\n", exp.Path, flags, c.runs, c.falseAlarm)
	if c.control {
		fmt.Fprintf(w, "# learned %s from %d fault-free runs of each variant: the faults' schedule followed, nothing injected (report: %s)%s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.runs, c.dir, loadNote())
		fmt.Fprintf(w, "# A fault-free run breaches each fault-free bound with probability %v\n", c.falseAlarm)
		fmt.Fprintln(w, "# (one-sided, per bound: mean ± t·sd·√(1+1/n) of the runs' values, a normal model; docs/ci.md).")
		fmt.Fprintln(w, "# A bound a fault-free run breaches is loosened to the fault-free bound; one it keeps is kept, with what the")
		fmt.Fprintln(w, "# fault may add on top (e.g. a deadline's 100 ms): write that against the before phase, p99 < before.p99 + 200ms,")
		fmt.Fprintf(w, "# so the machine's own slowness cancels. A hypothesis of variant %s must not hold without the fault.\n", runner.NaiveVariant(c.rep))
	} else {
		fmt.Fprintf(w, "# learned %s from %d runs of each variant (report: %s)%s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.runs, c.dir, loadNote())
		fmt.Fprintf(w, "# A run of a system that behaves as these did breaches each proposed bound with probability %v\n", c.falseAlarm)
		fmt.Fprintln(w, "# (one-sided, per bound: mean ± t·sd·√(1+1/n) of the runs' values, a normal model; docs/ci.md).")
		fmt.Fprintln(w, "# Calibrate on the machine the gate runs on, under its usual load: a quiet machine learns bounds a busy one breaches.")
	}
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
			name := b.cmp.Metric
			if b.cmp.Relative {
				name += " − " + b.cmp.Right
				if b.cmp.Factor != 1 {
					name = b.cmp.Metric + " − " + strconv.FormatFloat(b.cmp.Factor, 'g', -1, 64) + " * " + b.cmp.Right
				}
			}
			runs := "runs"
			if c.control {
				runs = "fault-free runs"
			}
			line := fmt.Sprintf("#   %s: %s %s", name, runs, strings.Join(vals, " "))
			written := b.cmp.Op + " " + f(b.cmp.Bound)
			switch {
			case math.IsNaN(b.learned):
				line += fmt.Sprintf("; nothing proposed (%s), keep %s", b.why, written)
			case !c.control:
				line += fmt.Sprintf(" → propose %s %s (written: %s)", b.cmp.Op, f(b.learned), written)
			case p.faultBit && check.Compare(b.learned, b.cmp.Op, b.cmp.Bound):
				line += fmt.Sprintf(" → WARNING: a fault-free run reaches %s, so written %s holds without the fault at more than %v: move it past %s", f(b.learned), written, c.falseAlarm, f(b.learned))
			case p.faultBit:
				line += fmt.Sprintf(" → a fault-free run reaches %s; written %s needs the fault: keep", f(b.learned), written)
			case math.IsNaN(b.proposed):
				line += fmt.Sprintf(" → fault-free bound %s %s; written %s keeps %s beyond it: keep", b.cmp.Op, f(b.learned), written, f(math.Abs(b.cmp.Bound-b.learned)))
			default:
				line += fmt.Sprintf(" → fault-free bound %s %s; a fault-free run breaches written %s at more than %v: loosen it to %s %s", b.cmp.Op, f(b.learned), written, c.falseAlarm, b.cmp.Op, f(b.proposed))
			}
			fmt.Fprintln(w, line)
			bounds = append(bounds, b.proposed)
		}
		if p.faultBit {
			if p.held > 0 {
				fmt.Fprintf(w, "#   WARNING: held without the fault in %d of %d runs: it does not need the fault, so it cannot show that the fault bit (fine for a statement of structure, such as a critical path)\n", p.held, p.runs)
			} else {
				fmt.Fprintf(w, "#   held without the fault in 0 of %d runs, as a fault bit should\n", p.runs)
			}
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
		if !slices.ContainsFunc(bounds, func(b float64) bool { return !math.IsNaN(b) }) {
			continue // nothing to rewrite
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
