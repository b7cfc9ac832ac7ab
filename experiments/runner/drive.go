package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/crash"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/internal/semconv"
)

// driveLoad drives the experiment's open-loop load while the scheduler
// puts the faults on and takes them off, both from one start time; abort
// hypotheses are checked as the load goes. When the load ends every fault
// still on is removed, before anything is measured. A panic of the load
// or of the scheduler, or a fault that cannot be applied, is a testbed
// failure; how the load itself ended is left in vr.res, vr.loadErr and
// vr.aborted for endedEarly.
func (vr *variantRun) driveLoad(ctx context.Context) error {
	exp, v := vr.exp, vr.variant
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	vr.start = time.Now().Add(20 * time.Millisecond)
	vr.runID = fmt.Sprintf("%s-%s-%d", exp.Name, v.Name, vr.start.UnixNano()%1e9)
	vr.phases = newPhaseClock(exp, vr.start)
	lc, doer, err := vr.loadConfig(cancelRun)
	if err != nil {
		return err
	}
	vr.liveVariant()
	var (
		wg       sync.WaitGroup
		schedErr error
	)
	wg.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				schedErr = crash.New(p)
				cancelRun()
			}
		}()
		if schedErr = vr.sched.run(runCtx, vr.start); schedErr != nil {
			cancelRun() // a fault that cannot be injected proves nothing
		}
	})
	vr.res, vr.loadErr = load.Run(runCtx, lc, doer)
	vr.loadStopped = time.Now()
	if testHookLoadDone != nil {
		testHookLoadDone()
	}
	cancelRun()
	wg.Wait()
	vr.prog.done()

	c, cancel := cleanupContext(ctx)
	err = vr.sched.removeAll(c)
	if err == nil {
		// Every link pointed back at its upstream.
		err = errors.Join(vr.network.CloseCalls(c), vr.network.CloseMessages(c), vr.packets.Close(c))
	}
	cancel()
	// The faults as they happened, a removal that failed included, are
	// in the report even when one could not be taken off at all.
	vr.report.Faults = faultsReport(vr.sched.history(), vr.start, vr.faults)
	if err != nil {
		return fmt.Errorf("%w: remove faults: %v", ErrTestbed, err)
	}
	vr.report.LateRemoval = vr.phases.lateRemoval(vr.report.Faults)
	if p, ok := crash.Find(vr.loadErr); ok {
		return fmt.Errorf("%w: load: %w", ErrTestbed, p)
	}
	if schedErr != nil {
		return fmt.Errorf("%w: %w", ErrTestbed, schedErr)
	}
	return nil
}

// loadConfig is the load of the variant: the experiment's shape at the
// rate of the options, the progress line, the abort hypotheses (a breach
// calls stop), and the order client with the variant's client retries.
func (vr *variantRun) loadConfig(stop func()) (load.Config, load.Doer, error) {
	exp, v := vr.exp, vr.variant
	lc := load.Config{
		Rate: vr.opts.rate(exp.Load.Rate), Duration: exp.Load.Duration, MaxInFlight: exp.Load.MaxInFlight,
		Timeout: exp.Load.Timeout, Users: exp.Load.Users, Seed: exp.Seed + int64(vr.index),
		Mix:    load.Mix{PlaceOrder: exp.Load.Mix.PlaceOrder, GetOrder: exp.Load.Mix.GetOrder},
		RunID:  vr.runID,
		UserID: semconv.UserID, Start: vr.start,
		Phase: vr.phases.at,
		Progress: func(s load.Snapshot) {
			vr.prog.update(s.Elapsed, s.Total, s.Phase, s.RPS, s.ErrorRate, s.InFlight, vr.sched.active())
			if vr.opts.Live != nil && vr.opts.Live.Progress != nil {
				vr.opts.Live.Progress(s)
			}
		},
	}
	// Abort hypotheses are stop conditions: checked every
	// abortCheckEvery on the figures of their phase so far, and once more
	// when the phase ends; a breach stops the load at once.
	watch := func(phase string, fig *load.Phase, ended bool) {
		if !ended && fig.Total.Requests < minAbortSample {
			return
		}
		if st := checkAbort(exp, v.Name, vr.opts.Target != nil, phase, fig, vr.start); st != nil && vr.aborted.set(st) {
			vr.prog.say("%s: aborting: %s failed %.1fs into the run (%s phase): observed %s", vr.prog.prefix, st.Hypothesis, st.BreachedOffset, st.Phase, st.Observed)
			stop()
		}
	}
	if hasAbort(exp) {
		lc.PhaseEnd = func(phase string, fig *load.Phase) { watch(phase, fig, true) }
		lc.Watch = func(phase string, fig *load.Phase) { watch(phase, fig, false) }
		lc.WatchEvery = abortCheckEvery
	}
	for _, s := range exp.Load.Steps {
		lc.Steps = append(lc.Steps, load.Step{At: s.At, Rate: vr.opts.rate(s.Rate)})
	}
	retries, backoff := clientRetries(exp.Load, v.System.Client)
	doer, err := load.WithRetries(load.NewOrderDoer(vr.cl.order, exp.Load.Timeout), retries, backoff)
	if err != nil {
		return lc, nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	doer = vr.opts.liveDoer(doer)
	if crashTest == "load" {
		real := doer
		doer = load.DoerFunc(func(ctx context.Context, r load.Request) load.Outcome {
			if len(vr.sched.active()) == len(exp.Faults) {
				panic("crash test: a load worker panicked")
			}
			return real.Do(ctx, r)
		})
	}
	return lc, doer, nil
}

// How abort hypotheses are watched: every abortCheckEvery, once their
// phase has at least minAbortSample completed requests (a latency
// percentile or a rate of two requests is noise), and at the phase's end
// whatever its size.
const (
	abortCheckEvery = 200 * time.Millisecond
	minAbortSample  = 10
)

// abortState records the first breach of an abort hypothesis; set from the
// load's goroutines.
type abortState struct {
	mu   sync.Mutex
	stop *report.Stop
}

// set records st unless a breach was recorded already; it reports whether
// st is the one recorded.
func (a *abortState) set(st *report.Stop) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return false
	}
	a.stop = st
	return true
}

func (a *abortState) get() *report.Stop {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stop
}

// hasAbort reports whether exp has an abort hypothesis.
func hasAbort(exp *definition.Experiment) bool {
	for _, h := range exp.Hypotheses {
		if h.Abort {
			return true
		}
	}
	return false
}

// checkAbort evaluates the abort hypotheses of phase against the load
// figures measured in it so far. It returns the breach that must stop the
// run, or nil. A hypothesis that reads metrics only known at the end of
// the run (consistency, traces) cannot be decided here and does not abort.
func checkAbort(exp *definition.Experiment, variant string, target bool, phase string, fig *load.Phase, start time.Time) *report.Stop {
	var m *metrics.Values
	for _, h := range exp.Hypotheses {
		if !h.Abort || string(h.When) != phase || (h.Variant != "" && h.Variant != variant && !target) {
			continue
		}
		if m == nil {
			soFar := map[string]metrics.Requests{}
			for prefix, op := range ops {
				if st := fig.Ops[op]; st != nil {
					soFar[prefix] = requestsOf(st)
				}
			}
			m = loadMetrics(map[string]map[string]metrics.Requests{phase: soFar})
		}
		ok, observed, err := check.Eval(h.Expr, m.Env(phase))
		if err == nil && !ok {
			now := time.Now()
			return &report.Stop{
				Hypothesis: h.Check, Name: h.Name, Phase: phase, Observed: observed,
				BreachedAt: now, BreachedOffset: now.Sub(start).Seconds(),
			}
		}
	}
	return nil
}

// abortMetrics are the load metrics of a run stopped early.
func abortMetrics(res *load.Result) *metrics.Values {
	if res == nil {
		return metrics.NewValues(nil)
	}
	return loadMetrics(loadRequests(res))
}
