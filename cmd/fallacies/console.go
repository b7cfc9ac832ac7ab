package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/console"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/process"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// consoleFlags are the flags of the live console (`up --console`, `run
// --console`).
type consoleFlags struct {
	on   *bool
	addr *string
}

// addConsoleFlags defines --console, with what it does for this command,
// and --console-addr.
func addConsoleFlags(fs interface {
	Bool(string, bool, string) *bool
	String(string, string, string) *string
}, what string) consoleFlags {
	return consoleFlags{
		on:   fs.Bool("console", false, what),
		addr: fs.String("console-addr", "127.0.0.1:0", "console listen `ADDRESS` (port 0: any free port; loopback only unless --allow-remote)"),
	}
}

// check refuses a bad console address before anything starts.
func (f consoleFlags) check(allowRemote bool) error {
	if !*f.on {
		return nil
	}
	if err := checkAddr("--console-addr", *f.addr, true); err != nil {
		return err
	}
	return checkLoopback([]string{*f.addr}, allowRemote)
}

// runningConsole is a console serving in the background.
type runningConsole struct {
	url     string
	journal string
	stop    func() error
}

// startConsole serves the console of a running topology on addr. Faults
// go through a router of the topology's injectors (console.Network: the
// proxy, call-level and packet kinds; process kinds where the topology
// runs processes), journaled at journalPath; experiments run against ep write their reports in reports.
func startConsole(ctx context.Context, topo topology.Topology, ep topology.Endpoints, capture *tracing.Capture, addr, journalPath, reports string) (*runningConsole, error) {
	if err := os.MkdirAll(filepath.Dir(journalPath), 0o755); err != nil {
		return nil, err
	}
	journal, err := faults.OpenJournal(journalPath)
	if err != nil {
		return nil, err
	}
	tinj := toxiproxy.NewInjector(ep.ToxiproxyAPI, journal)
	router, targets, packets := console.Network(tinj, ep.Proxies, time.Now().UnixNano())
	if pc, ok := topo.(process.Controller); ok {
		router.Handle(faults.TargetProcess, process.NewInjector(pc))
		targets[faults.TargetProcess] = faults.Services()
	}
	conn, err := serve.Dial(ep.Services["order"], topology.ObserverOptions(topo))
	if err != nil {
		journal.Close()
		return nil, err
	}
	names, _ := catalogueNames()
	c, err := console.New(console.Options{
		Proxies: ep.Proxies, Toxiproxy: tinj, Injector: router, Targets: targets, Packets: packets, Capture: capture,
		Order: orderv1.NewOrderServiceClient(conn), Experiments: names, ReportsDir: reports,
		RunExperiment: func(ctx context.Context, name string, progress func(string)) (string, error) {
			return runFromConsole(ctx, tinj, ep, journalPath, reports, name, progress)
		},
	})
	if err != nil {
		conn.Close()
		journal.Close()
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		conn.Close()
		journal.Close()
		return nil, fmt.Errorf("console: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(sctx, lis) }()
	var once sync.Once
	var stopErr error
	return &runningConsole{
		url:     "http://" + lis.Addr().String() + "/",
		journal: journalPath,
		stop: func() error {
			once.Do(func() {
				cancel()
				stopErr = <-errc
				conn.Close()
				stopErr = errors.Join(stopErr, journal.Close())
			})
			return stopErr
		},
	}, nil
}

// catalogueNames lists the experiments of the catalogue folder, when the
// command runs where it is.
func catalogueNames() ([]string, error) {
	files, err := definition.LoadDir(definition.Catalogue)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)))
	}
	return names, nil
}

// runFromConsole runs a catalogue experiment against the running system,
// as `fallacies run --target` does: refused while faults are on (the
// verdict would measure them too).
func runFromConsole(ctx context.Context, tinj *toxiproxy.Injector, ep topology.Endpoints, journal, reports, name string, progress func(string)) (string, error) {
	if on, err := tinj.Existing(ctx); err != nil {
		return "", err
	} else if len(on) > 0 {
		return "", fmt.Errorf("faults are on (%s): remove them first, the verdict would measure them too", strings.Join(on, "; "))
	}
	path, err := definition.Resolve(name, definition.Catalogue)
	if err != nil {
		return "", err
	}
	exp, err := definition.Load(path)
	if err != nil {
		return "", err
	}
	res, err := runner.Run(ctx, exp, runner.Options{Target: &ep, Journal: journal, ReportsDir: reports, Progress: lineWriter(progress)})
	var dir string
	if res != nil {
		dir = res.Dir
		if err == nil {
			err = verdictErr(res.Report)
		}
	}
	return dir, err
}

// verdictErr is what the console's page says of a report that did not
// pass, by its verdict (report.Report.Verdict, as its exit code): nil
// when it passed, INCONCLUSIVE when none failed but one was not judged or
// straddles its bound (exit 4), else FAILED.
func verdictErr(r *report.Report) error {
	switch r.Verdict() {
	case "PASS":
		return nil
	case "INCONCLUSIVE":
		return errors.New("INCONCLUSIVE: no hypothesis failed, one was not judged or is inconclusive (its report says which)")
	}
	return errors.New("FAILED: not every hypothesis held (its report says which)")
}

// lineWriter calls f with each line written to it.
type lineWriter func(string)

func (f lineWriter) Write(p []byte) (int, error) {
	for _, l := range bytes.Split(bytes.TrimRight(p, "\r\n"), []byte("\n")) {
		if l = bytes.TrimSpace(bytes.TrimLeft(l, "\r")); len(l) > 0 {
			f(string(l))
		}
	}
	return len(p), nil
}

// runConsole is the console of `fallacies run --console`: the page of the
// run in progress, told of it through runner.Options.Live.
type runConsole struct {
	c    *console.Console
	url  string
	stop func() error
}

// startRunConsole serves the console of a run on addr; the reports of
// the run's experiments are served from reports.
func startRunConsole(ctx context.Context, addr, reports string) (*runConsole, error) {
	c, err := console.New(console.Options{Run: true, ReportsDir: reports})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(sctx, lis) }()
	var once sync.Once
	var stopErr error
	return &runConsole{c: c, url: "http://" + lis.Addr().String() + "/", stop: func() error {
		once.Do(func() {
			cancel()
			stopErr = <-errc
		})
		return stopErr
	}}, nil
}

// live is what the runner tells the console of the run.
func (rc *runConsole) live() *runner.Live {
	c := rc.c
	return &runner.Live{
		Variant: func(v runner.LiveVariant) {
			c.RunVariant(console.RunVariant{Experiment: v.Experiment, Variant: v.Variant, Index: v.Index, Of: v.Of, Proxies: v.Proxies, Spans: v.Spans})
		},
		Progress:  func(s load.Snapshot) { c.RunProgress(s.Phase, s.Elapsed, s.Total) },
		Completed: c.RunCompleted,
		Fault:     c.RunFault,
	}
}

// end tells the page that the run is over, keeps the console up for hold
// (its reports are served there) unless ctx ends first, and stops it.
func (rc *runConsole) end(ctx context.Context, e *env, hold time.Duration) {
	rc.c.RunEnded()
	if hold > 0 && ctx.Err() == nil {
		fmt.Fprintf(e.stderr, "console: the run has ended; its page stays up at %s for %v (Ctrl-C stops it sooner)\n", rc.url, hold)
		t := time.NewTimer(hold)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if err := rc.stop(); err != nil {
		fmt.Fprintf(e.stderr, "console: %v\n", err)
	}
}
