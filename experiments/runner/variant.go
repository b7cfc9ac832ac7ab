package runner

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/crash"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/container"
	"github.com/fallacies/fallacies/faults/process"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/user"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// testHookLoadDone, when set by a test, runs right after the load ends,
// while faults without an end are still on.
var testHookLoadDone func()

// testHookMetrics, when set by a test, receives what a variant measured
// and every metric computed from it, before the hypotheses are evaluated.
var testHookMetrics func(variant string, r *metrics.Run, m *metrics.Values)

// crashTest is set only by the crash test of cmd/fallacies, at link time
// (go build -ldflags "-X …/experiments/runner.crashTest=load"): then,
// once every fault of the experiment is on at the same time, the load's
// next request panics in its worker goroutine, to prove that a crash of
// the runner ends as a testbed failure with every fault it held removed.
var crashTest string

// testHookTeardown, when set by a test, runs on every way out of a variant
// that started its own topology: after the faults were removed, before the
// topology is stopped.
var testHookTeardown func(topology.Topology)

// spanLimit bounds the spans one variant keeps in memory.
const spanLimit = 1_000_000

// variantRun is one variant of one experiment, start to teardown.
type variantRun struct {
	exp       *definition.Experiment
	variant   definition.Variant
	index, of int
	kind      string
	opts      Options
	journal   string
}

// run runs the variant. A returned error is a testbed failure; the variant
// report is filled as far as the run got either way.
func (vr *variantRun) run(ctx context.Context) (rv report.Variant, ts traceSet, err error) {
	exp, v := vr.exp, vr.variant
	rv = report.Variant{Name: v.Name}
	for _, k := range v.Knobs {
		rv.Knobs = append(rv.Knobs, report.Knob{Name: k.Name, Value: k.Value})
	}
	prog := newProgress(vr.opts.Progress, vr.opts.TTY)
	prog.width = vr.opts.Width
	prog.prefix = fmt.Sprintf("%s [%s %d/%d]", exp.Name, v.Name, vr.index+1, vr.of)
	// Every way out — error, panic, cancellation — comes through here; the
	// deferred cleanups below run first, so faults are off by then.
	// cleanupFailed is set when taking a fault off or stopping the system
	// failed: that is a testbed failure even when the run was interrupted.
	var cleanupFailed bool
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w", ErrTestbed, crash.New(r))
		}
		_, panicked := crash.Find(err)
		if ctx.Err() != nil && !cleanupFailed && !panicked {
			// Interrupted from outside: what failed on the way out failed
			// because of it. Keep what was measured; judge nothing.
			err = nil
			rv.Passed = false
			rv.Hypotheses = notJudged(exp, v.Name, vr.opts.Target != nil, "not judged: the run was interrupted")
		}
		if err != nil {
			rv.Error = err.Error()
			rv.Passed = false
		}
		prog.done()
	}()
	// A cleanup context that survives the run's cancellation.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	}

	// Tracing: every service of an embedded topology gets its own provider
	// feeding one in-process capture; child processes export OTLP to a
	// receiver of ours that feeds the same capture. When the OTEL_*
	// variables name an OTLP endpoint (a Jaeger), every span goes there too,
	// so that the report's Jaeger links lead somewhere.
	capture := tracing.NewCapture(spanLimit)
	tr := topology.NewTracers(capture, tracing.OTLPEndpointFromEnv())
	defer shutdownTracers(tr)
	var otlp string
	if vr.kind == topology.KindProcesses || vr.kind == topology.KindCompose {
		host := "127.0.0.1"
		if vr.kind == topology.KindCompose {
			// Containers reach the host at the docker bridge's address.
			if host, err = topology.ComposeHostAddress(); err != nil {
				return rv, ts, fmt.Errorf("%w: trace receiver: %v", ErrTestbed, err)
			}
		}
		forward := "" // the Receiver forwards in plaintext only
		if hp, plain, err := tracing.ParseOTLPEndpoint(tr.Export()); err == nil && plain {
			forward = hp
		}
		rcv := tracing.NewReceiver(capture, forward)
		lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return rv, ts, fmt.Errorf("%w: trace receiver: %v", ErrTestbed, err)
		}
		go rcv.Serve(lis)
		defer func() {
			c, cancel := cleanupCtx()
			defer cancel()
			rcv.Shutdown(c)
		}()
		otlp = lis.Addr().String()
	}

	// The system under test.
	prog.say("%s: starting %s topology", prog.prefix, vr.kind)
	var (
		ep   topology.Endpoints
		topo topology.Topology
	)
	var targetSpans bool
	if vr.opts.Target != nil {
		ep = *vr.opts.Target
		if stop := receiveTargetSpans(ep, capture); stop != nil {
			targetSpans = true
			defer func() {
				c, cancel := cleanupCtx()
				defer cancel()
				stop(c)
			}()
		}
	} else {
		topo, err = topology.Start(ctx, vr.kind, topology.Options{
			System: v.System, Tracing: tr.ServeOptions, OTLPEndpoint: otlp, Binary: vr.opts.Binary, Logger: vr.opts.Logger,
		})
		if err != nil {
			return rv, ts, fmt.Errorf("%w: start %s topology: %v", ErrTestbed, vr.kind, err)
		}
		defer func() {
			if testHookTeardown != nil {
				testHookTeardown(topo)
			}
			c, cancel := cleanupCtx()
			defer cancel()
			if stopErr := topo.Stop(c); stopErr != nil && err == nil {
				err = fmt.Errorf("%w: stop topology: %v", ErrTestbed, stopErr)
				cleanupFailed = true
			}
		}()
		ep = topo.Endpoints()
		if err := tr.Err(); err != nil {
			return rv, ts, fmt.Errorf("%w: tracing: %v", ErrTestbed, err)
		}
	}

	// Faults: journaled, scheduled, and removed on every way out.
	journal, err := toxiproxy.OpenJournal(vr.journal)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	tinj := toxiproxy.NewInjector(ep.ToxiproxyAPI, journal)
	if err := tinj.Ping(ctx); err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	inj := faults.NewRouter().Handle(faults.TargetProxy, tinj)
	switch t := topo.(type) {
	case containerHost:
		// Container faults are journaled beside the network faults;
		// process faults hit the service's container as the container
		// faults they are, journaled too, so that `fallacies reset
		// --journal` undoes them after a SIGKILL. (A compose topology
		// can also kill its services' processes, so this case comes
		// first.)
		cj, err := container.OpenJournal(vr.journal + ".containers")
		if err != nil {
			return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
		}
		defer cj.Close()
		cinj := container.NewInjector(t.Project(), cj)
		inj.Handle(faults.TargetContainer, cinj)
		inj.Handle(faults.TargetProcess, composeProcesses{containers: cinj, docker: t.Docker()})
	case process.Controller:
		inj.Handle(faults.TargetProcess, process.NewInjector(t))
	}
	sched := newScheduler(inj, exp.Faults)
	defer func() {
		c, cancel := cleanupCtx()
		defer cancel()
		if rmErr := sched.removeAll(c); rmErr != nil && err == nil {
			err = fmt.Errorf("%w: remove faults: %v", ErrTestbed, rmErr)
			cleanupFailed = true
		}
	}()

	observer := topology.ObserverOptions(topo) // a client certificate when the system runs mTLS
	cl, err := dialClients(ep, observer)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	defer func() { cl.close() }()

	// What the consumers had applied before the load: a system that was up
	// before the run (a --target) has applied earlier runs' events.
	baseline, err := cl.distinctApplied(ctx)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}

	// The services' counters as the load begins, and at each phase
	// boundary the scheduler crosses: each phase gets its own share.
	counts := newPhaseCounters()
	first, err := cl.readCounters(ctx)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	counts.mark(string(definition.Before), first, nil)
	live := cl // cl is redialled after the load, when the scheduler is done
	sched.boundary = func(phase string) {
		c, err := live.readCounters(ctx)
		if err != nil {
			vr.opts.log().Warn("service counters unread: the phases next to this boundary have no counter metrics", "phase", phase, "err", err)
		}
		counts.mark(phase, c, err)
	}

	// Load and faults run side by side from one start time.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	start := time.Now().Add(20 * time.Millisecond)
	var (
		wg       sync.WaitGroup
		schedErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				schedErr = crash.New(p)
				cancelRun()
			}
		}()
		if schedErr = sched.run(runCtx, start); schedErr != nil {
			cancelRun() // a fault that cannot be injected proves nothing
		}
	}()
	lc := load.Config{
		Rate: vr.opts.rate(exp.Load.Rate), Duration: exp.Load.Duration, MaxInFlight: exp.Load.MaxInFlight,
		Timeout: exp.Load.Timeout, Users: exp.Load.Users, Seed: exp.Seed + int64(vr.index),
		Mix:    load.Mix{PlaceOrder: exp.Load.Mix.PlaceOrder, GetOrder: exp.Load.Mix.GetOrder},
		RunID:  fmt.Sprintf("%s-%s-%d", exp.Name, v.Name, start.UnixNano()%1e9),
		UserID: user.UserID, Start: start,
		Phase: func(off time.Duration) string { return phaseAt(exp, off) },
		Progress: func(s load.Snapshot) {
			prog.update(s.Elapsed, s.Total, s.Phase, s.RPS, s.ErrorRate, s.InFlight, sched.active())
		},
	}
	// Abort hypotheses are stop conditions: checked every
	// abortCheckEvery on the figures of their phase so far, and once more
	// when the phase ends; a breach stops the load at once.
	var aborted abortState
	watch := func(phase string, fig *load.Phase, ended bool) {
		if !ended && fig.Total.Requests < minAbortSample {
			return
		}
		if st := checkAbort(exp, v.Name, vr.opts.Target != nil, phase, fig, start); st != nil && aborted.set(st) {
			prog.say("%s: aborting: %s failed %.1fs into the run (%s phase): observed %s", prog.prefix, st.Hypothesis, st.BreachedOffset, st.Phase, st.Observed)
			cancelRun()
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
	doer, err := load.WithRetries(load.NewOrderDoer(cl.order, exp.Load.Timeout), retries, backoff)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	if crashTest == "load" {
		real := doer
		doer = load.DoerFunc(func(ctx context.Context, r load.Request) load.Outcome {
			if len(sched.active()) == len(exp.Faults) {
				panic("crash test: a load worker panicked")
			}
			return real.Do(ctx, r)
		})
	}
	res, loadErr := load.Run(runCtx, lc, doer)
	loadStopped := time.Now()
	if testHookLoadDone != nil {
		testHookLoadDone()
	}
	cancelRun()
	wg.Wait()
	prog.done()
	{
		c, cancel := cleanupCtx()
		rmErr := sched.removeAll(c)
		cancel()
		if rmErr != nil {
			return rv, ts, fmt.Errorf("%w: remove faults: %v", ErrTestbed, rmErr)
		}
	}
	rv.Faults = faultsReport(sched.history(), start)
	if p, ok := crash.Find(loadErr); ok {
		return rv, ts, fmt.Errorf("%w: load: %w", ErrTestbed, p)
	}
	if schedErr != nil {
		return rv, ts, fmt.Errorf("%w: %w", ErrTestbed, schedErr)
	}
	if res != nil && ctx.Err() != nil {
		// Interrupted from outside: keep every request made until then
		// (the deferred function above marks the hypotheses not judged).
		fillVariant(&rv, res, nil, check.Consistency{}, abortMetrics(res), start)
		return rv, ts, nil
	}
	if st := aborted.get(); st != nil {
		// An abort hypothesis was breached: the load stopped there.
		// Evaluate what was measured and fail the variant.
		st.StoppedAt, st.StoppedOffset = loadStopped, loadStopped.Sub(start).Seconds()
		rv.Stopped = st
		m := abortMetrics(res)
		rv.Hypotheses = evaluate(exp, v.Name, vr.opts.Target != nil, m)
		for i := range rv.Hypotheses {
			h := &rv.Hypotheses[i]
			switch {
			case h.Abort && h.Expr == st.Hypothesis && h.Phase == st.Phase:
				// As judged when it stopped the run.
				h.Passed, h.Skipped, h.SkipReason, h.Observed = false, false, "", st.Observed
			case !h.Abort && !h.Passed:
				h.Skipped, h.SkipReason = true, fmt.Sprintf("not checked: the run was stopped at %.1fs by the abort hypothesis %s", st.StoppedOffset, st.Hypothesis)
			}
		}
		fillVariant(&rv, res, &observation{}, check.Consistency{}, m, start)
		rv.Passed = false
		return rv, ts, nil
	}
	if loadErr != nil {
		return rv, ts, fmt.Errorf("%w: load: %v", ErrTestbed, loadErr)
	}

	// Drain: give the consumers time to catch up, then read what every
	// service recorded and account for each order.
	fillVariant(&rv, res, nil, check.Consistency{}, metrics.NewValues(nil), start)
	if topo != nil {
		// A process fault may have restarted a service at a new address.
		cl.close()
		if cl, err = dialClients(topo.Endpoints(), observer); err != nil {
			return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
		}
	}
	// The rogue client, when a hypothesis asks about it: before the
	// ledger is read, so that a charge it made shows there.
	var rogue *bool
	if wantsRogue(exp) {
		pep := ep
		if topo != nil {
			pep = topo.Endpoints()
		}
		ok, err := rogueCharge(ctx, pep.Proxies["payment"], v.System.Security.MTLS, lc.RunID)
		if err != nil {
			return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
		}
		rogue = &ok
	}
	prog.say("%s: draining (up to %v)", prog.prefix, exp.Load.Drain)
	cl.drain(ctx, ackedIDs(res.History), baseline, start, exp.Load.Drain)
	obs, err := cl.observe(ctx, start)
	if err != nil {
		return rv, ts, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	pub := publishedSince(ctx, vr.opts.log(), ep.NATS, start, events.TLSOptions(observer.ClientTLS)...)
	obs.published, obs.publishedAt = pub.count, pub.first
	cons := check.CheckConsistency(res.History, obs.toChecker())
	// What the sniffers saw, read while Toxiproxy still answers.
	sn := sniffed(ctx, tinj, exp.Faults)

	// Stop the system before reading the traces, so that every exporter
	// has flushed.
	if topo != nil {
		c, cancel := cleanupCtx()
		stopErr := topo.Stop(c)
		cancel()
		if stopErr != nil {
			return rv, ts, fmt.Errorf("%w: stop topology: %v", ErrTestbed, stopErr)
		}
	}
	shutdownTracers(tr)
	if targetSpans && len(res.History) > 0 {
		// The target's exporters send their last batches in their own time.
		var last time.Time
		for _, a := range res.History {
			last = later(last, a.Intended)
		}
		awaitSpans(ctx, capture, last, targetSpanWait)
	}
	ts = splitTraces(capture.Spans(), exp, start)

	counts.mark(metrics.End, countersOf(obs), nil)
	run := measured{
		exp: exp, start: start, faults: rv.Faults, load: res, obs: obs, readings: counts, cons: cons, traces: ts,
		sniffed: sn, rogue: rogue,
	}.run()
	m := metrics.Compute(run)
	if testHookMetrics != nil {
		testHookMetrics(v.Name, run, m)
	}
	fillVariant(&rv, res, obs, cons, m, start)
	proxies := []map[string]string{ep.Proxies}
	if topo != nil {
		proxies = append(proxies, topo.Endpoints().Proxies)
	}
	rv.Exemplars = exemplars(ts, vr.opts.JaegerUI, newOnLinks(rv.Faults, proxies...))
	rv.Mechanisms = mechanisms(counts)
	rv.Consumers = consumerSeries(exp, obs, start)
	rv.Hypotheses = evaluate(exp, v.Name, vr.opts.Target != nil, m)
	rv.Passed = true
	for _, h := range rv.Hypotheses {
		if !h.Passed && !h.Skipped {
			rv.Passed = false
		}
	}
	prog.say("%s: %s", prog.prefix, verdictWord(rv.Passed))
	return rv, ts, nil
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

// notJudged lists the hypotheses that apply to the variant, each skipped
// for reason.
func notJudged(exp *definition.Experiment, variant string, target bool, reason string) []report.Hypothesis {
	var out []report.Hypothesis
	for _, h := range exp.Hypotheses {
		if h.Variant != "" && h.Variant != variant && !target {
			continue
		}
		out = append(out, report.Hypothesis{
			Name: h.Name, Expr: h.Check, Phase: string(h.When), Variant: variant, Abort: h.Abort,
			Skipped: true, SkipReason: reason,
		})
	}
	return out
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

func verdictWord(ok bool) string {
	if ok {
		return "hypotheses held"
	}
	return "a hypothesis failed"
}

// later and earlier return the later and the earlier of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// evaluate checks every hypothesis that applies to the variant.
func evaluate(exp *definition.Experiment, variant string, target bool, m *metrics.Values) []report.Hypothesis {
	var out []report.Hypothesis
	for _, h := range exp.Hypotheses {
		if h.Variant != "" && h.Variant != variant && !target {
			continue
		}
		rh := report.Hypothesis{Name: h.Name, Expr: h.Check, Phase: string(h.When), Variant: variant, Abort: h.Abort}
		switch {
		case target && h.Variant != "":
			rh.Skipped, rh.SkipReason = true, fmt.Sprintf("bound to variant %s; a --target run has no variants", h.Variant)
		case !phaseHasTime(exp, h.When):
			rh.Skipped, rh.SkipReason = true, fmt.Sprintf("the %s phase is empty in this experiment", h.When)
		default:
			ok, observed, err := check.Eval(h.Expr, m.Env(string(h.When)))
			rh.Passed, rh.Observed = ok && err == nil, observed
			if err != nil {
				rh.Observed = "no value: " + err.Error()
			}
		}
		out = append(out, rh)
	}
	return out
}

func phaseHasTime(exp *definition.Experiment, p definition.Phase) bool {
	return !exp.Window(p).Empty()
}

// containerHost is the capability of a topology whose services run in
// the containers of a compose project: container faults, and process
// faults as container faults (topology.Compose).
type containerHost interface {
	Project() string
	Docker() container.Docker
}

// A topology whose services are processes it can kill, pause and restart
// implements process.Controller (topology.Processes).
var _ process.Controller = (*topology.Processes)(nil)
var _ containerHost = (*topology.Compose)(nil)

// containerKindOf is the container fault each process fault is on the
// compose topology.
var containerKindOf = map[faults.Kind]faults.Kind{
	faults.Pause: faults.ContainerPause, faults.Kill: faults.ContainerKill, faults.Restart: faults.ContainerRestart,
}

// composeProcesses applies process faults on the compose topology through
// the journaled container injector: pause as container-pause, kill as
// container-kill (removed by starting the container again and waiting
// until it is healthy, as a killed process is restarted), restart as
// container-restart. Applied faults keep their process kind.
type composeProcesses struct {
	containers faults.Injector
	docker     container.Docker
}

// Apply implements faults.Injector.
func (p composeProcesses) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	k, ok := containerKindOf[f.Kind]
	if !ok {
		return faults.Applied{}, fmt.Errorf("apply %s on service %q: not a process fault", f.Kind, f.Target)
	}
	cf := f
	cf.Kind = k
	a, err := p.containers.Apply(ctx, cf)
	a.Fault = f
	return a, err
}

// Remove implements faults.Injector.
func (p composeProcesses) Remove(ctx context.Context, a faults.Applied) error {
	kind := a.Fault.Kind
	a.Fault.Kind = containerKindOf[kind]
	if err := p.containers.Remove(ctx, a); err != nil {
		return err
	}
	if kind == faults.Kill {
		return p.docker.WaitHealthy(ctx, a.Fault.Target)
	}
	return nil
}

// faultsReport converts the scheduler's history for the report.
func faultsReport(h []appliedFault, start time.Time) []report.Fault {
	var out []report.Fault
	for _, a := range h {
		f := a.Fault
		end := a.End
		if end.IsZero() {
			end = time.Now()
		}
		out = append(out, report.Fault{
			Name: f.Name, Kind: string(f.Kind), Target: f.Target, Direction: string(f.Direction), Attrs: f.Attrs,
			Start: a.Start, End: end, StartOffset: a.Start.Sub(start).Seconds(), EndOffset: end.Sub(start).Seconds(),
		})
	}
	slices.SortFunc(out, func(a, b report.Fault) int { return a.Start.Compare(b.Start) })
	return out
}

// shutdownTracers flushes and stops the providers of a variant, within 5s.
func shutdownTracers(tr *topology.Tracers) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
}
