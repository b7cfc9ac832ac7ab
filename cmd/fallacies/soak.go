package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/topology"
)

// Bounds of a soak: how long it may run, how hard it may push, and how
// much the process may grow between the end of the warm-up round and the
// end of the soak before it counts as a leak.
const (
	soakMaxDuration  = 2 * time.Hour
	soakMaxFactor    = 10
	soakGoroutineMax = 50       // more goroutines than after the warm-up
	soakFDMax        = 20       // more open file descriptors
	soakHeapMax      = 64 << 20 // more heap in use, bytes
	soakSettle       = 2 * time.Second
)

// soakSample is the process after one experiment of a soak.
type soakSample struct {
	round      int
	experiment string
	elapsed    time.Duration
	goroutines int
	fds        int // -1 where /proc/self/fd cannot be read
	heap       uint64
	orders     int64 // place_order requests sent
	acked      int   // orders acknowledged to the client
	lost       int
	failed     int // hypotheses that failed
	// inconclusive counts hypotheses that neither held nor failed (over
	// trials an interval straddled the bound, or a late fault removal
	// left a phase too short to judge): what fallacies run exits 4 for,
	// not a failure.
	inconclusive int
}

func cmdSoak(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "soak", "[flags] DIR|FILE...", "run the resilient variants in a loop at a multiple of their load; fail on leaks or lost events")
	duration := fs.Duration("duration", 10*time.Minute, "keep starting rounds of every experiment until this much time has passed; a round started finishes, and there are at least two (env SOAK_DURATION sets the default; at most 2h)")
	factor := fs.Float64("factor", 2, "multiply every experiment's arrival rate by this (at most 10)")
	variant := fs.String("variant", "resilient", "run only the variants with this name")
	reports := fs.String("reports", "", "keep the report folders here (default: a temporary folder, removed at the end)")
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usageErr("SOAK_DURATION=%q: not a duration, e.g. 10m", v)
		}
		*duration = d
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("name at least one experiment file or folder, e.g. fallacies soak experiments")
	}
	if *duration <= 0 || *duration > soakMaxDuration {
		return usageErr("--duration %v: want more than 0 and at most %v", *duration, soakMaxDuration)
	}
	if !(*factor > 0 && *factor <= soakMaxFactor) {
		return usageErr("--factor %v: want more than 0 and at most %d", *factor, soakMaxFactor)
	}
	all, err := loadAll(e, pos)
	if err != nil {
		return err
	}
	if err := checkOutDir("reports", *reports); err != nil {
		return err
	}
	var exps []*definition.Experiment
	var skipped []string
	for _, x := range all {
		switch {
		case !slices.ContainsFunc(x.Variants, func(v definition.Variant) bool { return v.Name == *variant }):
			skipped = append(skipped, x.Name+" (no "+*variant+" variant)")
		case needsOwnProcesses(x):
			skipped = append(skipped, x.Name+" (process or container faults: not in one process)")
		default:
			exps = append(exps, x)
		}
	}
	if len(exps) == 0 {
		return usageErr("no experiment has a variant named %s", *variant)
	}
	dir := *reports
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fallacies-soak-"); err != nil {
			return testbedErr(err)
		}
		defer os.RemoveAll(dir)
	}
	names := make([]string, len(exps))
	for i, x := range exps {
		names[i] = x.Name
	}
	fmt.Fprintf(e.stdout, "soak: %s variants of %s at %g× their load for %v (embedded topology)\n",
		*variant, strings.Join(names, ", "), *factor, *duration)
	if len(skipped) > 0 {
		fmt.Fprintf(e.stdout, "soak: skipped: %s\n", strings.Join(skipped, ", "))
	}
	fmt.Fprintf(e.stdout, "soak: bounds after the warm-up round: goroutines +%d, open fds +%d, heap +%d MiB; lost events 0\n\n",
		soakGoroutineMax, soakFDMax, soakHeapMax>>20)

	opts := runner.Options{
		Topology: topology.KindEmbedded, ReportsDir: dir, OnlyVariants: []string{*variant}, RateFactor: *factor,
	}
	// Rows are printed as they come, so the columns are fixed-width.
	const row = "%5v  %-24v  %8v  %10v  %5v  %8v  %8v  %5v  %6v  %12v\n"
	fmt.Fprintf(e.stdout, row, "ROUND", "EXPERIMENT", "ELAPSED", "GOROUTINES", "FDS", "HEAP MiB", "ORDERS", "LOST", "FAILED", "INCONCLUSIVE")
	start := time.Now()
	var samples []soakSample
	var testbed error
	// At least two rounds: the warm-up, and one to compare it with.
rounds:
	for round := 1; round <= 2 || time.Since(start) < *duration; round++ {
		for _, x := range exps {
			if ctx.Err() != nil {
				break rounds
			}
			res, err := runner.Run(ctx, x, opts)
			if err != nil && (errors.Is(err, runner.ErrTestbed) || res == nil) {
				testbed = fmt.Errorf("%s: %w", x.Name, err)
				break rounds
			}
			s := takeSoakSample(ctx)
			s.round, s.experiment, s.elapsed = round, x.Name, time.Since(start)
			countReport(&s, res.Report)
			samples = append(samples, s)
			fmt.Fprintf(e.stdout, row, s.round, s.experiment, s.elapsed.Round(time.Second),
				s.goroutines, s.fds, fmt.Sprintf("%.1f", float64(s.heap)/(1<<20)), s.orders, s.lost, s.failed, s.inconclusive)
		}
	}
	fmt.Fprintln(e.stdout)
	verdict := judgeSoak(samples, len(exps))
	writeVerdict(e.stdout, verdict)
	switch {
	case testbed != nil:
		return testbedErr(testbed)
	case ctx.Err() != nil:
		return interrupted(ctx)
	case !verdict.ok():
		return &exitError{code: exitFailed, err: errors.New(verdict.summary())}
	}
	return nil
}

// needsOwnProcesses reports whether an experiment has faults that act on
// processes or containers: a soak measures one process, so it runs only
// experiments the embedded topology can run.
func needsOwnProcesses(x *definition.Experiment) bool {
	for _, f := range x.Faults {
		if fs, ok := faults.Lookup(f.Kind); ok && fs.Target != faults.TargetProxy {
			return true
		}
	}
	return false
}

// countReport adds what one experiment's report says: orders sent, lost
// events and payments, hypotheses that failed and hypotheses that were
// inconclusive, tallied as the report tallies them (report.Counts) so
// that an inconclusive check is never counted as a failed one.
func countReport(s *soakSample, rep *report.Report) {
	for _, v := range rep.Variants {
		for _, p := range v.Phases {
			s.orders += p.Requests
		}
		s.lost += v.Consistency.Lost
		s.acked += v.Consistency.Acknowledged
	}
	c := report.Normalize(rep).Count()
	s.failed += c.Failed
	s.inconclusive += c.Inconclusive
}

// takeSoakSample measures the process once everything a run started has
// had a moment to end: the fewest goroutines and fds seen over soakSettle
// (connections and timers wind down just after a topology stops), and the
// heap in use right after a collection.
func takeSoakSample(ctx context.Context) soakSample {
	s := soakSample{goroutines: runtime.NumGoroutine(), fds: openFDs()}
	deadline := time.Now().Add(soakSettle)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		s.goroutines = min(s.goroutines, runtime.NumGoroutine())
		if n := openFDs(); n >= 0 {
			s.fds = min(s.fds, n)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heap = ms.HeapInuse
	return s
}

// openFDs counts this process's open file descriptors, or returns -1
// where /proc/self/fd does not exist.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory being read is one of them
}

// soakVerdict compares the end of a soak with the end of its warm-up.
type soakVerdict struct {
	base, last soakSample
	rounds     int
	orders     int64
	acked      int
	lost       int
	failed     int
	// inconclusive is the INCONCLUSIVE column's sum (soakSample.inconclusive).
	inconclusive int
	compared     bool // there was a sample after the warm-up to compare
}

// judgeSoak takes the last sample of round 1 (the warm-up: caches,
// pools and lazily started machinery filled) as the base and the last
// sample as the end.
func judgeSoak(samples []soakSample, perRound int) soakVerdict {
	var v soakVerdict
	for _, s := range samples {
		v.orders += s.orders
		v.acked += s.acked
		v.lost += s.lost
		v.failed += s.failed
		v.inconclusive += s.inconclusive
		v.rounds = s.round
	}
	if len(samples) > perRound {
		v.base, v.last, v.compared = samples[perRound-1], samples[len(samples)-1], true
	}
	return v
}

func (v soakVerdict) goroutinesGrew() bool {
	return v.last.goroutines-v.base.goroutines > soakGoroutineMax
}
func (v soakVerdict) fdsGrew() bool {
	return v.base.fds >= 0 && v.last.fds >= 0 && v.last.fds-v.base.fds > soakFDMax
}
func (v soakVerdict) heapGrew() bool { return int64(v.last.heap)-int64(v.base.heap) > soakHeapMax }

func (v soakVerdict) ok() bool {
	return v.compared && v.lost == 0 && !v.goroutinesGrew() && !v.fdsGrew() && !v.heapGrew()
}

func (v soakVerdict) summary() string {
	var bad []string
	if !v.compared {
		bad = append(bad, "no round after the warm-up to compare with")
	}
	if v.goroutinesGrew() {
		bad = append(bad, fmt.Sprintf("goroutines grew by %d (bound %d)", v.last.goroutines-v.base.goroutines, soakGoroutineMax))
	}
	if v.fdsGrew() {
		bad = append(bad, fmt.Sprintf("open fds grew by %d (bound %d)", v.last.fds-v.base.fds, soakFDMax))
	}
	if v.heapGrew() {
		bad = append(bad, fmt.Sprintf("heap grew by %.1f MiB (bound %d MiB)", float64(int64(v.last.heap)-int64(v.base.heap))/(1<<20), soakHeapMax>>20))
	}
	if v.lost > 0 {
		bad = append(bad, fmt.Sprintf("%d events or payments lost", v.lost))
	}
	if len(bad) == 0 {
		return "no growth beyond the bounds, nothing lost"
	}
	return "soak failed: " + strings.Join(bad, "; ")
}

func writeVerdict(w io.Writer, v soakVerdict) {
	mark := func(grew bool) string {
		if grew {
			return "GREW"
		}
		return "ok"
	}
	fmt.Fprintf(w, "rounds %d, orders sent %d, acknowledged %d, lost %d, hypotheses that failed %d, inconclusive %d (the FAILED and INCONCLUSIVE columns: not a soak failure, since the load is multiplied)\n",
		v.rounds, v.orders, v.acked, v.lost, v.failed, v.inconclusive)
	if v.compared {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tafter warm-up\tend\tgrowth\tbound\t")
		fmt.Fprintf(tw, "goroutines\t%d\t%d\t%+d\t+%d\t%s\n", v.base.goroutines, v.last.goroutines, v.last.goroutines-v.base.goroutines, soakGoroutineMax, mark(v.goroutinesGrew()))
		fmt.Fprintf(tw, "open fds\t%d\t%d\t%+d\t+%d\t%s\n", v.base.fds, v.last.fds, v.last.fds-v.base.fds, soakFDMax, mark(v.fdsGrew()))
		fmt.Fprintf(tw, "heap in use (MiB)\t%.1f\t%.1f\t%+.1f\t+%d\t%s\n", float64(v.base.heap)/(1<<20), float64(v.last.heap)/(1<<20),
			float64(int64(v.last.heap)-int64(v.base.heap))/(1<<20), soakHeapMax>>20, mark(v.heapGrew()))
		tw.Flush()
	}
	fmt.Fprintln(w, v.summary())
}
