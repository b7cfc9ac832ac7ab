// Package console is the live web console of a running system (`fallacies
// up --console`): one page that draws the topology with each link's
// traffic and faults, adds and removes faults through the same journaled
// injector as experiments, drives a constant-rate load, lists the slowest
// and failed traces of the last seconds with their waterfalls, and runs
// catalogue experiments.
//
// With Options.Run it is instead the page of a run in progress
// (`fallacies run --console`, run.go): it shows what the runner tells it
// and refuses every change.
//
// The page and its API are served by Serve behind internal/httpguard
// (loopback hosts, no cross-site requests). Its assets are embedded; the
// page gets its updates over Server-Sent Events once a second
// (GET /api/events). docs/console.md documents the API.
//
// The console writes nothing but fault journal records (through the
// injector it is given) and what Options.RunExperiment writes (a report
// folder). Every fault it applied is removed when Serve returns, and when
// the last page has been closed for Options.CloseGrace.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/packet"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/httpguard"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/tracing"
)

//go:embed assets
var assets embed.FS

// Options is what a console needs of the running system.
type Options struct {
	// Run makes this the console of a run in progress: the run is what
	// cmd/fallacies tells it (RunVariant, …), every request that would
	// change the system is refused, and only ReportsDir, CloseGrace, Tick
	// and Logger are read.
	Run bool
	// Proxies maps each Toxiproxy proxy name to its listen address
	// (topology.Endpoints.Proxies): the links of the graph, and how a
	// client span is put on its link.
	Proxies map[string]string
	// Toxiproxy reads the proxies and their toxics, the truth the graph
	// draws (faults added by toxiproxy-cli or an experiment show too).
	Toxiproxy *toxiproxy.Injector
	// Injector applies and removes faults; it journals them, so that
	// `fallacies reset` undoes what a crash left.
	Injector faults.Injector
	// Targets lists, per target kind, what a fault of that kind can
	// target in this system; a kind whose target kind has none is shown
	// but cannot be added (e.g. process faults on the embedded topology).
	Targets map[faults.TargetKind][]string
	// Packets is the packet injector of Injector (from Network), if it
	// has one: Serve closes it once the console's faults are off, taking
	// every link's segment off.
	Packets *packet.Injector
	// Capture holds the spans of every service; the console takes them
	// once a second (Capture.Take).
	Capture *tracing.Capture
	// Order is a client of the order service, for the page's load.
	Order orderv1.OrderServiceClient
	// Experiments lists the catalogue experiments the page can run, and
	// RunExperiment runs one against this system, writing progress lines
	// to progress and returning its report folder. Nil: none.
	Experiments   []string
	RunExperiment func(ctx context.Context, name string, progress func(line string)) (reportDir string, err error)
	// ReportsDir is the folder the experiments' report folders are in;
	// the page opens the report of its last experiment from there.
	ReportsDir string
	// CloseGrace is how long the console waits after the last page
	// closed before it removes its faults and stops its load (a reload
	// reconnects well within it); 0 means DefaultCloseGrace.
	CloseGrace time.Duration
	// Tick is the update period; 0 means one second.
	Tick   time.Duration
	Logger *slog.Logger
}

// DefaultCloseGrace is Options.CloseGrace when it is 0.
const DefaultCloseGrace = 5 * time.Second

// Console is a live console of one running system.
type Console struct {
	opts    Options
	log     *slog.Logger
	faults  *faultBoard
	load    *loadDriver
	live    *liveState
	exp     *experimentRunner
	events  *broker
	pokes   chan struct{} // a change the pages should see before the next tick
	started time.Time

	run runState // the run shown, with Options.Run

	// sendMu makes sending a "state" event and the run's "ended" one
	// exclusive: a state read before the run ended is not sent after
	// "ended", which must be each page's last event.
	sendMu sync.Mutex

	mu      sync.Mutex
	watched bool      // a page has been connected at least once
	alone   time.Time // when the last page closed (zero: one is open)
	ended   bool      // RunEnded was called: the state no longer changes
}

// New checks opts and returns a console; nothing runs until Serve.
func New(opts Options) (*Console, error) {
	switch {
	case opts.Run:
		opts.Proxies, opts.Toxiproxy, opts.Injector, opts.Targets, opts.Capture, opts.Order = nil, nil, nil, nil, nil, nil
		opts.Experiments, opts.RunExperiment = nil, nil
	case opts.Toxiproxy == nil || opts.Injector == nil:
		return nil, errors.New("console: a Toxiproxy and an injector are required")
	case opts.Capture == nil:
		return nil, errors.New("console: a span capture is required")
	case opts.Order == nil:
		return nil, errors.New("console: an order client is required")
	}
	if opts.CloseGrace <= 0 {
		opts.CloseGrace = DefaultCloseGrace
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: opts.Logger, events: newBroker(), pokes: make(chan struct{}, 1), started: time.Now()}
	c.faults = newFaultBoard(opts.Injector, opts.Toxiproxy, opts.Targets)
	c.load = newLoadDriver(opts.Order)
	c.live = newLiveState(opts.Proxies)
	c.exp = newExperimentRunner(opts.Experiments, opts.RunExperiment)
	return c, nil
}

// Serve serves the console on lis until ctx ends, then stops the load and
// any experiment and removes every fault the console applied. The handler
// is behind httpguard for the address lis is bound to.
func (c *Console) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{
		Handler:           httpguard.Wrap(c.routes(), lis.Addr()),
		ReadHeaderTimeout: 5 * time.Second,
		// Not cancelled with ctx: a page's stream ends when the events
		// are closed, after the last of them (a run's "ended") is sent.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.loop(loopCtx) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	stopLoop()
	wg.Wait()
	c.events.close()
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	c.load.stop()
	c.exp.stop()
	if rmErr := c.faults.removeAll(shut); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("console: remove faults: %w", rmErr))
	}
	if c.opts.Packets != nil {
		if cErr := c.opts.Packets.Close(shut); cErr != nil {
			err = errors.Join(err, fmt.Errorf("console: take the packet segments off: %w", cErr))
		}
	}
	return err
}

// loop updates the live state once a tick and pushes it to every page.
func (c *Console) loop(ctx context.Context) {
	t := time.NewTicker(c.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if c.isEnded() {
				continue // the run's "ended" was the last event
			}
			c.live.add(c.takeSpans(), now)
			c.closeIfAbandoned(ctx, now)
			c.publish(ctx, now)
		case <-c.pokes:
			if !c.isEnded() {
				c.publish(ctx, time.Now())
			}
		}
	}
}

// takeSpans returns the spans that ended since the last call: taken from
// the capture of `up`, read from the run's current variant with
// Options.Run.
func (c *Console) takeSpans() []tracing.Span {
	if !c.opts.Run {
		return c.opts.Capture.Take()
	}
	c.run.mu.Lock()
	spans := c.run.spans
	c.run.mu.Unlock()
	if spans == nil {
		return nil
	}
	return spans()
}

// proxies are the proxies of the system shown: name → listen address.
func (c *Console) proxies() map[string]string {
	if !c.opts.Run {
		return c.opts.Proxies
	}
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	return c.run.proxies
}

func (c *Console) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// poke has the state sent to every page at once, not at the next tick:
// called after every change made through the API.
func (c *Console) poke() {
	select {
	case c.pokes <- struct{}{}:
	default:
	}
}

// publish reads the proxies and sends the state to every page.
func (c *Console) publish(ctx context.Context, now time.Time) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.Tick)
	proxies, err := c.faults.observe(rctx, now)
	cancel()
	if err != nil {
		c.log.Warn("console: read proxies", "err", err)
	}
	st := c.state(now, proxies, err)
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.isEnded() {
		return // the run ended while the proxies were read: "ended" was the last event
	}
	c.events.publish("state", st)
}

// closeIfAbandoned removes the console's faults and stops its load once
// the last page has been closed for CloseGrace.
func (c *Console) closeIfAbandoned(ctx context.Context, now time.Time) {
	c.mu.Lock()
	abandoned := c.watched && c.events.count() == 0 && !c.alone.IsZero() && now.Sub(c.alone) >= c.opts.CloseGrace
	if abandoned {
		c.watched = false // once per closing
	}
	c.mu.Unlock()
	if !abandoned {
		return
	}
	c.load.stop()
	if err := c.faults.removeAll(ctx); err != nil {
		c.log.Warn("console: remove faults after the last page closed", "err", err)
	}
}

// pageOpened and pageClosed track the pages connected to the events.
func (c *Console) pageOpened() {
	c.mu.Lock()
	c.watched, c.alone = true, time.Time{}
	c.mu.Unlock()
}

func (c *Console) pageClosed() {
	c.mu.Lock()
	if c.events.count() == 0 {
		c.alone = time.Now()
	}
	c.mu.Unlock()
}

// staticFiles is the embedded page.
func staticFiles() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	return http.FileServerFS(sub)
}
