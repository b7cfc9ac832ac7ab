// Package runner runs experiments: for each variant it starts a fresh
// topology with the variant's knobs, drives open-loop load, applies the
// fault schedule, drains, checks consistency, evaluates the hypotheses and
// tears everything down again, on every way out. A variant runs as its
// phases (variant.go), the first four each returning the teardown that
// undoes it:
//
//	startTracing ─▶ startSystem ─▶ armFaults ─▶ connect ─▶ driveLoad ─▶ settle ─▶ measure
//	      ▲               ▲             ▲           ▲          │ before ─┬─ during (faults on) ─┬─ after
//	      └── teardowns, last first, on every way out ──────────┘         └── fault scheduler ───┘
//
// Faults are journaled before they are applied and removed on normal end,
// failed hypothesis, error, panic and cancellation (Ctrl-C, SIGTERM); after a
// SIGKILL, `fallacies reset` removes what the journal lists. A removal that
// fails is tried again when the load ends and at teardown (scheduler.removeAll),
// shown on its fault (report.Fault.RemovalError), and a fault that cannot be
// taken off at all makes the run a testbed failure. The metrics are
// computed by their families (experiments/metrics) from what the runner
// measured (metrics.go).
package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fallacies/fallacies/experiments/crash"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// Options configures a run.
type Options struct {
	// Topology overrides the experiment file's topology: embedded or
	// processes. Empty: the file's, else embedded.
	Topology string
	// Target, when set, runs against an already running system: nothing is
	// started or reconfigured, the experiment runs once, and hypotheses bound
	// to a variant are skipped.
	Target *topology.Endpoints
	// Journal is the fault journal file; empty means one in the report folder.
	Journal string
	// ReportsDir is where report folders are written; empty means "reports".
	ReportsDir string
	// JaegerUI is the base URL of a Jaeger UI, for links to exemplar traces.
	JaegerUI string
	// AllowRemote permits target addresses that are not loopback.
	AllowRemote bool
	// FullTraces writes every captured trace to traces-full.json.gz beside
	// the report, not only the exemplars' (traces.json).
	FullTraces bool
	// Progress receives the live progress line; nil means none.
	Progress io.Writer
	// TTY makes the progress line redraw in place instead of printing
	// periodic lines.
	TTY bool
	// Width returns the terminal's width in columns, asked at every redraw
	// so that a resized window is followed; nil means 80. A line drawn in
	// place is cut to fit it, so it never wraps.
	Width func() int
	// Binary is the fallacies executable for the processes topology.
	Binary string
	// OnlyVariants, when not empty, runs only the variants with these
	// names (a soak runs the resilient ones); an experiment with none of
	// them is an error.
	OnlyVariants []string
	// RateFactor multiplies the load's arrival rate and every step's rate
	// (a soak runs at twice the load); 0 means 1. The result is bounded
	// like any load (experiments/load refuses more than load.MaxRate).
	RateFactor float64
	// Spans, when set, receives every span a variant captured and the
	// proxies its topology listened on (name → listen address), once the
	// variant is measured: `fallacies explore` learns the dependency graph
	// from them. The spans are shared with the run: read only.
	Spans func(variant string, spans []tracing.Span, proxies map[string]string)
	// Step, when set, is told how long each step of a variant took, as
	// it ends: "tracing", "topology start", "faults armed", "connect",
	// "load", "drain", "observe", "topology stop", "measure" and
	// "teardown" (`fallacies explore` says where a search's time goes).
	Step func(step string, took time.Duration)
	// Trials runs each variant this many times, each on a fresh
	// topology, and judges each hypothesis over all of them (trials.go);
	// 0 or 1 means once, as always. A --target run runs once.
	Trials int
	// Control runs a control: the faults' schedule is followed (the
	// phases, fault windows and while.<fault> phases are as written) but
	// no fault is put on the system, nor any layer interposed for one, so
	// every figure is what the variant does on this machine when nothing
	// is wrong (`fallacies calibrate --control`). The report says so
	// (Report.Control) and has no fault effect.
	Control bool
	// Live, when set, is told of the run as it goes (the console of
	// `fallacies run --console`); it only watches.
	Live *Live
	// Now stamps report folders; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) log() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Result is the outcome of one experiment.
type Result struct {
	Report *report.Report
	Dir    string // report folder
}

// ErrTestbed marks a failure of the testbed itself (exit code 3), as
// opposed to a failed hypothesis.
var ErrTestbed = errors.New("testbed failure")

// Interrupt is the cause a caller gives the run's context when a signal
// stops it (context.WithCancelCause): the report says which, and calls for
// its exit code. A context that ends without one is reported as an
// interruption with exit code 130, as after Ctrl-C.
type Interrupt struct {
	Signal   string // e.g. SIGINT
	ExitCode int    // 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM
}

func (i *Interrupt) Error() string { return "interrupted by " + i.Signal }

// interruption describes why ctx ended.
func interruption(ctx context.Context, at time.Time) *report.Interruption {
	var in *Interrupt
	if errors.As(context.Cause(ctx), &in) {
		return &report.Interruption{Reason: in.Error(), At: at, ExitCode: in.ExitCode}
	}
	return &report.Interruption{Reason: "interrupted: " + context.Cause(ctx).Error(), At: at, ExitCode: 130}
}

// Run runs one experiment and writes its report folder. The error is nil
// when the experiment ran, whether or not its hypotheses held (see
// Report.Passed); it wraps ErrTestbed when the testbed failed. When ctx
// ends first, the report keeps what was measured until then, is marked
// interrupted (Report.Interrupted), and the error is nil: faults are off
// either way. A panic of the runner is a testbed failure whose stack is
// written to crash.txt in the report folder.
func Run(ctx context.Context, exp *definition.Experiment, o Options) (res *Result, err error) {
	kind, err := o.topologyKind(exp)
	if err != nil {
		return nil, err
	}
	variants := o.selectVariants(exp.Variants)
	if len(variants) == 0 {
		return nil, fmt.Errorf("%s: no variant named %s", exp.Name, strings.Join(o.OnlyVariants, " or "))
	}
	if o.Target != nil {
		variants = []definition.Variant{{Name: "target"}}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	started := now()
	// When the run's context ends, as it happens (the report's
	// interruption time is then, not after the clean-up).
	var interruptedAt atomic.Pointer[time.Time]
	defer context.AfterFunc(ctx, func() {
		t := now()
		interruptedAt.Store(&t)
	})()
	dir, err := newReportDir(reportsDir(o), exp.Name, started)
	if err != nil {
		return nil, fmt.Errorf("%w: report folder: %v", ErrTestbed, err)
	}
	rep := &report.Report{
		Experiment: exp.Name, Fallacy: exp.Fallacy, Description: exp.Description, File: exp.Path,
		Topology: kind, Seed: exp.Seed, StartedAt: started, JaegerUI: o.JaegerUI, Trials: o.trials(), Control: o.Control,
	}
	res = &Result{Report: rep, Dir: dir}
	traces := runVariants(ctx, exp, variants, o, kind, dir, rep)
	if ctx.Err() != nil {
		at := now()
		if t := interruptedAt.Load(); t != nil {
			at = *t
		}
		rep.Interrupted = interruption(ctx, at)
	}
	rep.Passed = rep.Error == "" && len(rep.Variants) > 0
	for _, v := range rep.Variants {
		rep.Passed = rep.Passed && v.Passed
	}
	if !o.Control {
		rep.FaultEffect = faultEffect(exp, rep)
	}
	rep.DurationSeconds = now().Sub(started).Seconds()
	if err := writeReport(dir, rep, traces, o.FullTraces); err != nil {
		return res, fmt.Errorf("%w: write report: %v", ErrTestbed, err)
	}
	if rep.Error != "" {
		return res, fmt.Errorf("%w: %s", ErrTestbed, rep.Error)
	}
	return res, nil
}

// topologyKind is the topology the run starts: the options', else the
// experiment file's, else embedded; "target" for a --target, whose
// endpoints must be valid and loopback unless remote ones are allowed.
func (o Options) topologyKind(exp *definition.Experiment) (string, error) {
	if o.Target != nil {
		if err := o.Target.Validate(); err != nil {
			return "", err
		}
		if err := topology.CheckLoopback(o.Target.Addresses(), o.AllowRemote); err != nil {
			return "", err
		}
		return "target", nil
	}
	switch {
	case o.Topology != "":
		return o.Topology, nil
	case exp.Topology != "":
		return exp.Topology, nil
	}
	return topology.KindEmbedded, nil
}

// runVariants runs the variants one after the other into rep, until one
// fails the testbed, one is stopped by an abort hypothesis, or ctx ends;
// it returns the traces each captured.
func runVariants(ctx context.Context, exp *definition.Experiment, variants []definition.Variant, o Options, kind, dir string, rep *report.Report) []traceSet {
	journal := o.Journal
	if journal == "" {
		journal = filepath.Join(dir, "faults.journal")
	}
	var traces []traceSet
	for i, v := range variants {
		if ctx.Err() != nil {
			break
		}
		rv, tr, err := runTrials(ctx, exp, v, i, len(variants), o, kind, journal)
		if p, ok := crash.Find(err); ok {
			// One line in the report and on stderr; the stack in a file.
			if path, werr := crash.WriteFile(dir, p); werr == nil {
				rv.Error = fmt.Sprintf("%s (stack in %s)", strings.TrimPrefix(err.Error(), ErrTestbed.Error()+": "), path)
			}
		}
		rep.Variants = append(rep.Variants, rv)
		traces = append(traces, tr)
		if err != nil {
			rep.Error = strings.TrimPrefix(rv.Error, ErrTestbed.Error()+": ")
			break
		}
		if aborted(rv) && i+1 < len(variants) {
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "%s: variant %s failed an abort hypothesis; the remaining variants are skipped\n", exp.Name, v.Name)
			}
			break
		}
	}
	return traces
}

func aborted(v report.Variant) bool {
	for _, h := range v.Hypotheses {
		if h.Abort && !h.Passed && !h.Skipped {
			return true
		}
	}
	return false
}

func reportsDir(o Options) string {
	if o.ReportsDir == "" {
		return "reports"
	}
	return o.ReportsDir
}

func writeReport(dir string, rep *report.Report, traces []traceSet, full bool) error {
	if err := report.WriteDir(dir, rep); err != nil {
		return err
	}
	if err := writeTraceFile(filepath.Join(dir, FileTraces), traces, writeTraces); err != nil {
		return err
	}
	if full {
		return writeTraceFile(filepath.Join(dir, FileFullTraces), traces, writeFullTraces)
	}
	return nil
}

// writeTraceFile writes one trace file through write.
func writeTraceFile(path string, traces []traceSet, write func(io.Writer, []traceSet) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = write(bw, traces)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// newReportDir creates the report folder of a run of experiment name
// started at t: parent/name-YYYYMMDD-HHMMSS, or with -2, -3, … appended
// when a run of the same experiment started in the same second already has
// that folder, so that no run overwrites another's report.
func newReportDir(parent, name string, t time.Time) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(parent, fmt.Sprintf("%s-%s", name, t.Format("20060102-150405")))
	for i := 1; i <= 1000; i++ {
		dir := base
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: a thousand runs started in the same second", base)
}
