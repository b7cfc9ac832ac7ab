package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/explore"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
)

func cmdExplore(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "explore", "[flags]", "search for the faults the system does not tolerate and write each finding as an experiment file (docs/explore.md)")
	from := fs.String("from", "", "take the load rate, the variant's knobs and the hypotheses of this experiment `FILE` (or catalogue name)")
	variant := fs.String("variant", "", "the variant of --from to take (default: its last, by convention the resilient one)")
	var knobs knobFlags
	fs.Var(&knobs, "set", "set a knob, `NAME=VALUE`, after the variant's (repeatable; fallacies knobs lists them)")
	budget := fs.Duration("budget", 10*time.Minute, "wall time of the search; the scenario under way finishes past it")
	maxFaults := fs.Int("max-faults", 2, "most faults on at once: 1 single faults only, 2 pairs too")
	seed := fs.Int64("seed", 1, "seed of the search's order and of every run's random numbers")
	out := fs.String("out", "explore", "output `DIR`: explore.json, explore.html, findings/")
	only := fs.String("only", "", "search only these edges (proxy names, comma-separated), e.g. nats-ledger,user")
	kinds := fs.String("kinds", "", "search only these fault kinds (comma-separated; fallacies kinds lists them)")
	rate := fs.Float64("rate", 0, "orders per second (default: --from's rate, else 100)")
	window := fs.Duration("window", explore.DefaultWindow, "how long each fault stays on (longer when a delay must outlast a deadline)")
	parallel := fs.Int("parallel", explore.DefaultParallel, "scenarios run at once, each on its own fresh topology")
	ackWait := fs.Duration("ack-wait", explore.DefaultAckWait, "the consumers' ack wait the search runs with, unless the variant or --set gives one (a redelivery a fault causes comes this long after it)")
	var stopOn stringsFlag
	fs.Var(&stopOn, "stop-on", "end the search at the first finding that fails this `HYPOTHESIS` (by name; repeatable)")
	quiet := fs.Bool("quiet", false, "no progress line")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("explore", pos); err != nil {
		return err
	}
	if *maxFaults < 1 || *maxFaults > 2 {
		return usageErr("--max-faults %d: want 1 or 2", *maxFaults)
	}
	if *parallel < 1 || *parallel > 8 {
		return usageErr("--parallel %d: want 1 to 8", *parallel)
	}
	if *ackWait < config.MinAckWait || *ackWait > config.MaxDeadline {
		return usageErr("--ack-wait %v: want %v to %v", *ackWait, config.MinAckWait, config.MaxDeadline)
	}
	if *rate < 0 || *rate > definition.MaxLoadRate {
		return usageErr("--rate %g: want a rate above 0, at most %d", *rate, definition.MaxLoadRate)
	}
	o := explore.Options{Budget: *budget, MaxFaults: *maxFaults, Seed: *seed, Out: *out, Rate: *rate, Window: *window, Variant: *variant,
		Parallel: *parallel, AckWait: *ackWait, StopOn: stopOn}
	if *from != "" {
		exps, err := loadAll(e, []string{*from})
		if err != nil {
			return err
		}
		o.From = exps[0]
	} else if *variant != "" {
		return usageErr("--variant %q: needs --from", *variant)
	}
	if _, err := knobs.system(); err != nil {
		return err
	}
	for _, kv := range knobs {
		name, value, _ := strings.Cut(kv, "=")
		o.Set = append(o.Set, definition.Knob{Name: name, Value: value})
	}
	// The variant's own knobs with --set on top must be a valid system too.
	if o.From != nil {
		sys := config.Default()
		v := o.From.Variants[len(o.From.Variants)-1]
		if *variant != "" {
			v, _ = o.From.Variant(*variant)
		}
		for _, k := range append(append([]definition.Knob{}, v.Knobs...), o.Set...) {
			if err := config.Set(&sys, k.Name, k.Value); err != nil {
				return usageErr("--set: %v", err)
			}
		}
		if err := sys.Validate(); err != nil {
			return usageErr("--from %s with --set: %v", *from, err)
		}
	}
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	if *kinds != "" {
		for _, k := range strings.Split(*kinds, ",") {
			if _, ok := faults.Lookup(faults.Kind(k)); !ok {
				return usageErr("--kinds: no fault kind %q (fallacies kinds lists them)", k)
			}
			o.Kinds = append(o.Kinds, faults.Kind(k))
		}
	}
	if *only != "" {
		names := faults.Proxies()
		for _, p := range o.Only {
			if !slices.Contains(names, p) {
				return usageErr("--only: no edge %q (the proxies: %s)", p, strings.Join(names, ", "))
			}
		}
	}
	if !*quiet {
		o.Progress = e.stderr
	}
	runs := filepath.Join(*out, ".runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--out %s: %v", *out, err)}
	}
	defer os.RemoveAll(runs)
	o.Run = func(ctx context.Context, exp *definition.Experiment, h explore.Hooks) (*report.Report, error) {
		res, err := runner.Run(ctx, exp, runner.Options{ReportsDir: runs, Spans: h.Spans, Step: h.Step})
		if res != nil && res.Dir != "" {
			os.RemoveAll(res.Dir)
		}
		if err != nil {
			return nil, err
		}
		return res.Report, nil
	}
	res, err := explore.Explore(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return &exitError{code: exitTestbed, err: err}
	}
	fmt.Fprintf(e.stdout, "explore: %d scenarios run of %d planned (%d enumerated: %d singles + %d pairs; %d pruned) in %.0fs\n",
		res.Counts.Run, res.Counts.Planned, res.Counts.Enumerated, res.Counts.Singles, res.Counts.Pairs, res.Counts.Skipped, res.Seconds)
	for _, f := range res.Findings {
		var failed []string
		for _, c := range f.Failed {
			failed = append(failed, c.Name+" (observed "+c.Observed+")")
		}
		state := "replayed: failed again"
		if !f.Confirmed {
			state = "replay did NOT fail again"
		}
		fmt.Fprintf(e.stdout, "  finding %s (at %.0fs): %s — %s\n", filepath.Join(*out, f.File), f.At, strings.Join(failed, ", "), state)
	}
	if res.Stopped != "" {
		fmt.Fprintf(e.stdout, "stopped: %s\n", res.Stopped)
	}
	fmt.Fprintf(e.stdout, "time: %s\n", timeText(res.Time))
	fmt.Fprintf(e.stdout, "report: %s\n", filepath.Join(*out, explore.FileHTML))
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if len(res.Findings) > 0 {
		return errSilent(exitFailed)
	}
	return nil
}

// stringsFlag collects a repeatable flag's values.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(s string) error { *f = append(*f, s); return nil }

// timeText says where a search's time went: each step of its runs,
// summed, with its share, the largest first.
func timeText(steps []explore.StepTime) string {
	var total float64
	for _, st := range steps {
		total += st.Seconds
	}
	steps = slices.Clone(steps)
	slices.SortStableFunc(steps, func(a, b explore.StepTime) int { return cmp.Compare(b.Seconds, a.Seconds) })
	var out []string
	for _, st := range steps {
		if total > 0 && st.Seconds/total >= 0.01 {
			out = append(out, fmt.Sprintf("%s %.0f%% (median %s)", st.Step, 100*st.Seconds/total, fmtSeconds(st.Median)))
		}
	}
	return fmt.Sprintf("%.0fs in runs: ", total) + strings.Join(out, ", ")
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
