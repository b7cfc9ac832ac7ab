package runner

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/crash"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/waterfall"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/packet"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
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

// cleanupTimeout bounds each teardown step, which runs even when the
// run's context has ended.
const cleanupTimeout = 15 * time.Second

// variantRun is one variant of one experiment, start to teardown. run
// goes through its phases in order; each phase fills the fields under its
// name for the phases after it.
type variantRun struct {
	exp       *definition.Experiment
	variant   definition.Variant
	index, of int
	trial     int // 0-based, of trials runs of the variant
	trials    int
	kind      string
	opts      Options
	journal   string

	// The outcome: the variant's report, filled as far as the run got,
	// and the traces it captured.
	report report.Variant
	traces traceSet

	prog *progress

	// startTracing
	capture *tracing.Capture
	tracers *topology.Tracers
	otlp    string // where child processes and containers export spans; "" embedded
	// startSystem
	ep          topology.Endpoints
	topo        topology.Topology // nil on a --target
	targetSpans bool              // a receiver listens for the target's spans
	observer    serve.Options     // how the runner reaches the services (mTLS)
	// armFaults
	network *toxiproxy.Injector
	packets *packet.Injector // packet faults, through segments interposed by network
	faults  *faults.Router
	sched   *scheduler
	// connect
	cl       *clients
	baseline map[string]int64 // what the consumers had applied before the load
	windows  map[string]int64 // records ever appended to each service's window, before the load
	counts   *phaseCounters
	// driveLoad
	start       time.Time   // the load's start: offset 0 of the schedule
	phases      *phaseClock // the phases as they happen: the after phase begins when the last fault is off
	runID       string
	res         *load.Result
	loadErr     error
	loadStopped time.Time
	aborted     abortState
	// settle
	rogue   *bool
	obs     *observation
	cons    check.Consistency
	sniffed map[string][]byte
	// measure: every metric computed, for judging over trials
	values *metrics.Values
}

// teardown undoes a phase. Its error is a testbed failure, even when the
// run was interrupted.
type teardown func(ctx context.Context) error

// run runs the variant as its phases:
//
//	startTracing → startSystem → armFaults → connect → driveLoad → settle → measure
//
// The first four set something up and return the teardown that undoes
// it; on every way out (the end, an error, a panic, a cancellation) the
// teardowns run, the last set up first: the faults are off before the
// system stops, the system is down before tracing is. A returned error is
// a testbed failure; vr.report is filled as far as the run got either way.
func (vr *variantRun) run(ctx context.Context) (err error) {
	exp, v := vr.exp, vr.variant
	vr.report = report.Variant{Name: v.Name}
	for _, k := range v.Knobs {
		vr.report.Knobs = append(vr.report.Knobs, report.Knob{Name: k.Name, Value: k.Value})
	}
	vr.prog = newProgress(vr.opts.Progress, vr.opts.TTY)
	vr.prog.width = vr.opts.Width
	vr.prog.prefix = fmt.Sprintf("%s [%s %d/%d]", exp.Name, v.Name, vr.index+1, vr.of)
	if vr.trials > 1 {
		vr.prog.prefix = fmt.Sprintf("%s [%s %d/%d, trial %d/%d]", exp.Name, v.Name, vr.index+1, vr.of, vr.trial+1, vr.trials)
	}

	var teardowns []teardown
	defer func() {
		var panicked error
		if r := recover(); r != nil {
			panicked = fmt.Errorf("%w: %w", ErrTestbed, crash.New(r))
		}
		// Every way out comes through here.
		t0 := time.Now()
		cleanupErr := tearDown(ctx, teardowns)
		vr.step("teardown", t0)
		vr.finish(ctx, &err, panicked, cleanupErr)
	}()
	for _, setup := range []struct {
		step string
		do   func(context.Context) (teardown, error)
	}{
		{"tracing", vr.startTracing}, {"topology start", vr.startSystem}, {"faults armed", vr.armFaults}, {"connect", vr.connect},
	} {
		t0 := time.Now()
		undo, err := setup.do(ctx)
		vr.step(setup.step, t0)
		if undo != nil {
			teardowns = append(teardowns, undo)
		}
		if err != nil {
			return err
		}
	}
	t0 := time.Now()
	err = vr.driveLoad(ctx)
	vr.step("load", t0)
	if err != nil {
		return err
	}
	if ended, err := vr.endedEarly(ctx); ended || err != nil {
		return err
	}
	if err := vr.settle(ctx); err != nil {
		return err
	}
	return vr.measure(ctx)
}

// step tells Options.Step how long a step took since t0.
func (vr *variantRun) step(name string, t0 time.Time) {
	if vr.opts.Step != nil {
		vr.opts.Step(name, time.Since(t0))
	}
}

// tearDown runs the teardowns, the last first, each within its own
// cleanup context, and returns the first error.
func tearDown(ctx context.Context, teardowns []teardown) error {
	var first error
	for i := len(teardowns) - 1; i >= 0; i-- {
		c, cancel := cleanupContext(ctx)
		err := teardowns[i](c)
		cancel()
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// cleanupContext is a context for undoing something that survives the
// run's cancellation.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// finish settles the run's error once everything is torn down: a panic
// is a testbed failure; a teardown that failed is one unless the run had
// failed already; a run interrupted from outside keeps what was measured
// and judges nothing, unless a teardown failed or it panicked.
func (vr *variantRun) finish(ctx context.Context, err *error, panicked, cleanupErr error) {
	var cleanupFailed bool
	switch {
	case panicked != nil:
		*err = panicked
	case cleanupErr != nil && *err == nil:
		*err, cleanupFailed = cleanupErr, true
	}
	if ctx.Err() != nil && !cleanupFailed && panicked == nil {
		// What failed on the way out failed because of the interruption.
		*err = nil
		vr.report.Passed = false
		vr.report.Hypotheses = notJudged(vr.exp, vr.variant.Name, vr.opts.Target != nil, "not judged: the run was interrupted")
	}
	if *err != nil {
		vr.report.Error = (*err).Error()
		vr.report.Passed = false
	}
	settleVerdicts(vr.report.Hypotheses)
	vr.prog.done()
}

// startTracing gives every service of an embedded topology its own
// provider feeding one in-process capture; child processes and containers
// export OTLP to a receiver of ours that feeds the same capture. When the
// OTEL_* variables name an OTLP endpoint (a Jaeger), every span goes
// there too, so that the report's Jaeger links lead somewhere.
func (vr *variantRun) startTracing(context.Context) (teardown, error) {
	vr.capture = tracing.NewCapture(spanLimit)
	vr.tracers = topology.NewTracers(vr.capture, tracing.OTLPEndpointFromEnv())
	stopTracers := func(context.Context) error {
		shutdownTracers(vr.tracers)
		return nil
	}
	if vr.kind != topology.KindProcesses && vr.kind != topology.KindCompose {
		return stopTracers, nil
	}
	host := "127.0.0.1"
	if vr.kind == topology.KindCompose {
		// Containers reach the host at the docker bridge's address.
		var err error
		if host, err = topology.ComposeHostAddress(); err != nil {
			return stopTracers, fmt.Errorf("%w: trace receiver: %v", ErrTestbed, err)
		}
	}
	forward := "" // the Receiver forwards in plaintext only
	if hp, plain, err := tracing.ParseOTLPEndpoint(vr.tracers.Export()); err == nil && plain {
		forward = hp
	}
	rcv := tracing.NewReceiver(vr.capture, forward)
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return stopTracers, fmt.Errorf("%w: trace receiver: %v", ErrTestbed, err)
	}
	go rcv.Serve(lis)
	vr.otlp = lis.Addr().String()
	return func(ctx context.Context) error {
		rcv.Shutdown(ctx)
		return stopTracers(ctx)
	}, nil
}

// startSystem starts the topology with the variant's configuration, or
// takes the endpoints of the running system a --target names (and
// listens for its spans when it can: target_traces.go).
func (vr *variantRun) startSystem(ctx context.Context) (teardown, error) {
	vr.prog.say("%s: starting %s topology", vr.prog.prefix, vr.kind)
	if vr.opts.Target != nil {
		vr.ep = *vr.opts.Target
		stop := receiveTargetSpans(vr.ep, vr.capture)
		if stop == nil {
			return nil, nil
		}
		vr.targetSpans = true
		return func(ctx context.Context) error {
			stop(ctx)
			return nil
		}, nil
	}
	topo, err := topology.Start(ctx, vr.kind, topology.Options{
		System: vr.variant.System, Tracing: vr.tracers.ServeOptions, OTLPEndpoint: vr.otlp,
		Binary: vr.opts.Binary, Logger: vr.opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: start %s topology: %v", ErrTestbed, vr.kind, err)
	}
	vr.topo, vr.ep = topo, topo.Endpoints()
	vr.observer = topology.ObserverOptions(topo) // a client certificate when the system runs mTLS
	stop := func(ctx context.Context) error {
		if testHookTeardown != nil {
			testHookTeardown(topo)
		}
		if err := topo.Stop(ctx); err != nil {
			return fmt.Errorf("%w: stop topology: %v", ErrTestbed, err)
		}
		return nil
	}
	if err := vr.tracers.Err(); err != nil {
		return stop, fmt.Errorf("%w: tracing: %v", ErrTestbed, err)
	}
	return stop, nil
}

// connect dials the services, notes what the consumers had applied before
// the load (a system up before the run, a --target, has applied earlier
// runs' events) and reads the services' counters as the load begins; the
// scheduler reads them again at each phase boundary it crosses, so that
// each phase gets its own share.
func (vr *variantRun) connect(ctx context.Context) (teardown, error) {
	cl, err := dialClients(vr.ep, vr.observer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	vr.cl = cl
	closeClients := func(context.Context) error {
		vr.cl.close() // the clients of the moment: they are redialled after the load
		return nil
	}
	if vr.baseline, err = cl.distinctApplied(ctx); err != nil {
		return closeClients, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	if vr.windows, err = cl.windowTotals(ctx); err != nil {
		return closeClients, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	vr.counts = newPhaseCounters()
	first, err := cl.readCounters(ctx)
	if err != nil {
		return closeClients, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	vr.counts.mark(string(definition.Before), first, nil)
	vr.sched.boundary = func(phase string) {
		if phase == string(definition.After) {
			vr.phases.allOff() // the after phase begins now (phases.go)
		}
		c, err := cl.readCounters(ctx)
		if err != nil {
			vr.opts.log().Warn("service counters unread: the phases next to this boundary have no counter metrics", "phase", phase, "err", err)
		}
		vr.counts.mark(phase, c, err)
	}
	return closeClients, nil
}

// endedEarly ends a run whose load did not run its course: interrupted
// from outside (the variant keeps every request made until then; finish
// marks the hypotheses not judged) or stopped by an abort hypothesis (the
// variant fails, judged on what was measured). A load that failed
// otherwise is a testbed failure.
func (vr *variantRun) endedEarly(ctx context.Context) (bool, error) {
	rv, res := &vr.report, vr.res
	if res != nil && ctx.Err() != nil {
		fillVariant(rv, res, nil, check.Consistency{}, abortMetrics(res), vr.start)
		return true, nil
	}
	if st := vr.aborted.get(); st != nil {
		st.StoppedAt, st.StoppedOffset = vr.loadStopped, vr.loadStopped.Sub(vr.start).Seconds()
		rv.Stopped = st
		m := abortMetrics(res)
		rv.Hypotheses = evaluate(vr.exp, vr.variant.Name, vr.opts.Target != nil, m, "")
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
		fillVariant(rv, res, &observation{}, check.Consistency{}, m, vr.start)
		rv.Passed = false
		return true, nil
	}
	if vr.loadErr != nil {
		return true, fmt.Errorf("%w: load: %v", ErrTestbed, vr.loadErr)
	}
	return false, nil
}

// settle lets the system come to rest after the load and reads what it
// recorded: the consumers catch up (drain), the services' records are
// read (a service whose window forgot any of the run's records fails the
// run as a testbed failure: see window.go) and the consistency checker
// accounts for each order. The rogue
// client, when a hypothesis asks about it, charges first, so that what
// it made shows in the ledger; the sniffers are read while Toxiproxy
// still answers.
func (vr *variantRun) settle(ctx context.Context) error {
	exp, res := vr.exp, vr.res
	fillVariant(&vr.report, res, nil, check.Consistency{}, metrics.NewValues(nil), vr.start)
	ep := vr.ep
	if vr.topo != nil {
		// A process fault may have restarted a service at a new address.
		ep = vr.topo.Endpoints()
		vr.cl.close()
		cl, err := dialClients(ep, vr.observer)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTestbed, err)
		}
		vr.cl = cl
	}
	if wantsRogue(exp) {
		ok, err := rogueCharge(ctx, ep.Proxies["payment"], vr.variant.System.Security.MTLS, vr.runID)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTestbed, err)
		}
		vr.rogue = &ok
	}
	vr.prog.say("%s: draining (up to %v)", vr.prog.prefix, exp.Load.Drain)
	t0 := time.Now()
	vr.cl.drain(ctx, ackedIDs(res.History), vr.baseline, vr.start, exp.Load.Drain)
	vr.step("drain", t0)
	t0 = time.Now()
	defer vr.step("observe", t0)
	obs, err := vr.cl.observe(ctx, vr.start)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	// After the read: a record forgotten while it was read counts too.
	if err := vr.cl.evicted(ctx, vr.windows); err != nil {
		return fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	pub := publishedSince(ctx, vr.opts.log(), vr.ep.NATS, vr.start, events.TLSOptions(vr.observer.ClientTLS)...)
	obs.published, obs.publishedAt = pub.count, pub.first
	vr.obs = obs
	vr.cons = check.CheckConsistency(res.History, obs.toChecker())
	vr.sniffed = sniffed(ctx, vr.network, exp.Faults)
	return nil
}

// measure stops the system (so that every exporter has flushed), sorts
// the spans into traces, computes every metric family from what was
// measured, and judges the hypotheses.
func (vr *variantRun) measure(ctx context.Context) error {
	exp, v, res, rv := vr.exp, vr.variant, vr.res, &vr.report
	if vr.topo != nil {
		t0 := time.Now()
		c, cancel := cleanupContext(ctx)
		err := vr.topo.Stop(c)
		cancel()
		vr.step("topology stop", t0)
		if err != nil {
			return fmt.Errorf("%w: stop topology: %v", ErrTestbed, err)
		}
	}
	t0 := time.Now()
	defer vr.step("measure", t0)
	shutdownTracers(vr.tracers)
	if vr.targetSpans && len(res.History) > 0 {
		// The target's exporters send their last batches in their own time.
		var last time.Time
		for _, a := range res.History {
			last = later(last, a.Intended)
		}
		awaitSpans(ctx, vr.capture, last, targetSpanWait)
	}
	spans := vr.capture.Spans()
	vr.traces = splitTraces(spans, vr.phases)
	if vr.opts.Spans != nil {
		vr.opts.Spans(v.Name, spans, vr.ep.Proxies)
	}

	vr.counts.mark(metrics.End, countersOf(vr.obs), nil)
	run := measured{
		exp: exp, start: vr.start, faults: rv.Faults, phases: vr.phases, load: res, obs: vr.obs, readings: vr.counts, cons: vr.cons,
		traces: vr.traces, sniffed: vr.sniffed, rogue: vr.rogue,
	}.run()
	m := metrics.Compute(run)
	vr.values = m
	if testHookMetrics != nil {
		testHookMetrics(v.Name, run, m)
	}
	fillVariant(rv, res, vr.obs, vr.cons, m, vr.start)
	proxies := []map[string]string{vr.ep.Proxies}
	if vr.topo != nil {
		proxies = append(proxies, vr.topo.Endpoints().Proxies)
	}
	rv.Exemplars = exemplars(vr.traces, vr.opts.JaegerUI, waterfall.NewLinks(proxies...), faultWindows(rv.Faults))
	rv.Mechanisms = mechanisms(vr.counts)
	rv.Consumers = consumerSeries(exp, vr.obs, vr.start)
	rv.Hypotheses = evaluate(exp, v.Name, vr.opts.Target != nil, m, unjudgedAfter(rv.LateRemoval))
	rv.Passed = true
	for _, h := range rv.Hypotheses {
		if !h.Passed && !h.Skipped {
			rv.Passed = false
		}
	}
	vr.prog.say("%s: %s", vr.prog.prefix, verdictWord(rv.Passed))
	return nil
}

// shutdownTracers flushes and stops the providers of a variant, within 5s.
func shutdownTracers(tr *topology.Tracers) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
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
