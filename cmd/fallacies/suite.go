package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/topology"
)

// maxParallel is the most experiments `fallacies run --parallel` runs at
// once: each starts a whole topology of its own.
const maxParallel = 8

// suiteRun runs the experiments of a suite, up to parallel at once, each
// on its own fresh topology (runner.Run starts one per variant), and
// prints each experiment's report whole, in the suite's order: an
// experiment's output waits until it and every experiment before it are
// done. With parallel 1 it is the plain loop: run, print, next.
type suiteRun struct {
	e        *env
	exps     []*definition.Experiment
	opts     runner.Options
	parallel int
	rc       *runConsole // the run's console (only with parallel 1), or nil
	// stderr is e.stderr, behind a lock when several experiments write
	// their progress lines to it at once.
	stderr io.Writer
	// progress is where the suite's own progress lines go (nil: none).
	progress io.Writer

	mu       sync.Mutex // guards what follows, and the writes to e.stdout
	outcomes []*outcome // by suite index; nil: not done (or never started)
	printed  int        // outcomes[:printed] are printed
	running  int
	done     int
	reports  []*report.Report // in the suite's order
	// unreported are the experiments that left no report, in the
	// suite's order.
	unreported []report.Unreported
	// testbedFailure is the last testbed failure printed, nil if none.
	testbedFailure error
}

// outcome is what runner.Run returned for one experiment.
type outcome struct {
	res *runner.Result
	err error
}

// newSuiteRun prepares a suite of exps run with opts, parallel at once;
// quiet drops the progress lines. With parallel above 1, the progress of
// the experiments under way is printed as plain lines, each naming its
// experiment, through a lock, rather than redrawn in place.
func newSuiteRun(e *env, exps []*definition.Experiment, opts runner.Options, parallel int, quiet bool) *suiteRun {
	parallel = max(1, min(parallel, len(exps)))
	s := &suiteRun{e: e, exps: exps, opts: opts, parallel: parallel, stderr: e.stderr, outcomes: make([]*outcome, len(exps))}
	if parallel > 1 {
		s.stderr = &lockedWriter{w: e.stderr}
		s.opts.TTY, s.opts.Width = false, nil
		if !quiet {
			s.opts.Progress = s.stderr
			s.progress = s.stderr
		}
	}
	return s
}

// run runs the suite until every experiment has run or ctx ends (the
// experiments under way then stop and remove their faults, and none
// starts after), and returns the reports in the suite's order, and the
// experiments that left none.
func (s *suiteRun) run(ctx context.Context) ([]*report.Report, []report.Unreported) {
	if s.progress != nil {
		fmt.Fprintf(s.progress, "fallacies run: %d experiments, %d at a time, each on its own topology; each report prints whole, in the suite's order\n",
			len(s.exps), s.parallel)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range s.parallel {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(s.exps) {
					return
				}
				s.started(i)
				res, err := runner.Run(ctx, s.exps[i], s.opts)
				if s.rc != nil {
					var dir, verdict string
					if res != nil {
						dir, verdict = res.Dir, res.Report.Verdict()
					}
					s.rc.c.RunReport(s.exps[i].Name, dir, verdict, err)
				}
				s.finished(i, &outcome{res: res, err: err})
			}
		})
	}
	wg.Wait()
	for i, o := range s.outcomes {
		if o == nil { // never started: the suite was interrupted first
			s.unreported = append(s.unreported, report.Unreported{Experiment: s.exps[i].Name, File: s.exps[i].Path})
		}
	}
	return s.reports, s.unreported
}

// started notes that experiment i starts.
func (s *suiteRun) started(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running++
	if s.progress != nil {
		fmt.Fprintf(s.progress, "suite [%d/%d] %s: started (%d running at once)\n", i+1, len(s.exps), s.exps[i].Name, s.running)
	}
}

// finished records experiment i's outcome and prints every report that
// is now next in the suite's order.
func (s *suiteRun) finished(i int, o *outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.done++
	s.outcomes[i] = o
	if s.progress != nil {
		verdict := "no report"
		if o.res != nil {
			verdict = fmt.Sprintf("%s in %.0fs", o.res.Report.Verdict(), o.res.Report.DurationSeconds)
		}
		fmt.Fprintf(s.progress, "suite [%d/%d] %s: done, %s (%d of %d done, %d running)\n", i+1, len(s.exps), s.exps[i].Name, verdict, s.done, len(s.exps), s.running)
	}
	for s.printed < len(s.outcomes) && s.outcomes[s.printed] != nil {
		s.print(s.exps[s.printed], s.outcomes[s.printed])
		s.printed++
	}
}

// print writes one experiment's report text (stdout) and its error
// (stderr, which CI logs keep), and adds its report to the suite's.
func (s *suiteRun) print(exp *definition.Experiment, o *outcome) {
	res, err := o.res, o.err
	if res != nil {
		s.reports = append(s.reports, res.Report)
		fmt.Fprintln(s.e.stdout)
		report.Text(s.e.stdout, res.Report)
		fmt.Fprintf(s.e.stdout, "report: %s\n", filepath.Join(res.Dir, "report.html"))
	}
	if err == nil {
		return
	}
	// The report above says it too.
	if res == nil {
		s.unreported = append(s.unreported, report.Unreported{Experiment: exp.Name, File: exp.Path, Error: err.Error()})
		fmt.Fprintf(s.stderr, "fallacies run: %s: %v\n", exp.Path, err)
	} else {
		fmt.Fprintf(s.stderr, "fallacies run: %s: %v (partial report: %s)\n", exp.Path, err, res.Dir)
	}
	if errors.Is(err, runner.ErrTestbed) || res == nil {
		s.testbedFailure = err
	}
}

// refuseParallel is a usage error when experiments of the suite cannot
// run side by side: a --parallel above 1 with the compose topology, the
// flag's or a file's own.
func refuseParallel(parallel int, flagKind string, exps []*definition.Experiment) error {
	if parallel <= 1 || flagKind != "" {
		return nil // --topology (checked before) decides for every file
	}
	for _, exp := range exps {
		if exp.Topology == topology.KindCompose {
			return usageErr("--parallel %d: %s runs on the compose topology, which a suite runs one experiment at a time (%s); run it without --parallel or with --topology embedded",
				parallel, exp.Path, composeSerialWhy)
		}
	}
	return nil
}

// composeSerialWhy is why compose experiments run one at a time.
const composeSerialWhy = "each starts a whole Docker stack, and several stacks at once on one Docker daemon compete for it while container faults pause, kill and disconnect containers on it"

// lockedWriter serialises the writes of several goroutines to one writer,
// so that each line written in one call stays whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
