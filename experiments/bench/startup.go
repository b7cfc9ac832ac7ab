package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

// startup times each topology from start to ready (every service answers
// its health check, both consumers subscribed) and its stop.
func (b *bench) startup(ctx context.Context) (*Section, error) {
	s := &Section{
		Title:  "5. Start-up",
		Intro:  "Start-to-ready: from the start call until every service answers its gRPC health check and both consumers have subscribed (embedded: Toxiproxy, nats-server with JetStream, five services and their proxies in this process; processes: the same with every service a child process; compose: `docker compose up` of images already built, until every container is healthy). Stop: until everything is gone.",
		Header: []string{"topology", "start-to-ready ms", "stop ms"},
	}
	kinds := []string{topology.KindEmbedded, topology.KindProcesses}
	if b.cfg.Compose {
		kinds = append(kinds, topology.KindCompose)
	} else {
		s.note("compose: not measured (run with --compose, after `make images`, where Docker answers).")
	}
	for _, kind := range kinds {
		var start, stop sample
		var skip error
		for rep := range b.cfg.Reps {
			up, down, err := startStop(ctx, kind, b.cfg.Binary)
			if err != nil {
				if kind == topology.KindCompose {
					skip = err // Docker is optional: say why and go on
					break
				}
				return nil, fmt.Errorf("%s: %w", kind, err)
			}
			start, stop = append(start, ms(up)), append(stop, ms(down))
			b.logf("start-up %s rep %d/%d: ready in %.1f ms, stopped in %.1f ms", kind, rep+1, b.cfg.Reps, ms(up), ms(down))
		}
		if skip != nil {
			s.note("compose: not measured: %v", skip)
			continue
		}
		s.row(kind, start.format(1), stop.format(1))
		if kind == topology.KindEmbedded {
			s.target("embedded start-to-ready ≤ 500 ms", start.format(1)+" ms", start.median() <= 500)
		}
	}
	return s, nil
}

// startStop starts a topology of kind with the default knobs and stops it,
// returning how long each took.
func startStop(ctx context.Context, kind string, binary string) (up, down time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	top, err := topology.Start(ctx, kind, topology.Options{System: config.Default(), Binary: binary})
	if err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	if err := top.Stop(context.WithoutCancel(ctx)); err != nil {
		return 0, 0, fmt.Errorf("stop: %w", err)
	}
	return t1.Sub(t0), time.Since(t1), nil
}

// catalogueParallel is how many experiments of the catalogue the bench
// runs at once (`fallacies run --parallel`).
const catalogueParallel = 2

// catalogue runs every experiment of the catalogue as one suite, two
// experiments at a time (catalogueParallel, as CI runs it: `make
// catalogue RUNFLAGS="--parallel 2"`), and times it. It runs the suite
// once whatever Config.Reps says: one after the other, the suite's wall
// time was the sum of its experiments' scheduled phases (three runs on
// 2026-11-30 spanned 0.3 s of 481), and a run takes minutes, which three
// times over would take much of the time `make bench` may spend.
func (b *bench) catalogue(ctx context.Context) (*Section, error) {
	s := &Section{
		Title: "6. Catalogue wall time",
		Intro: fmt.Sprintf("`fallacies run --parallel %d %s`: every experiment of the catalogue, every variant on a fresh embedded topology, as one suite, two experiments at a time (each on its own topology; one after the other, the wall time is the sum of the experiments' scheduled phases); "+
			"run once, whatever the repetitions.", catalogueParallel, b.cfg.Catalogue),
		Header: []string{"suite", "wall time s", "verdict"},
	}
	dir, err := os.MkdirTemp("", "fallacies-bench-reports-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, b.cfg.Binary, "run", "--parallel", fmt.Sprint(catalogueParallel), "--quiet", "--reports", dir, b.cfg.Catalogue)
	cmd.Stderr = &errOut
	b.logf("catalogue: running %s (several minutes)", b.cfg.Catalogue)
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0).Seconds()
	verdict := "every hypothesis held"
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		verdict = "a hypothesis failed"
	default:
		return nil, fmt.Errorf("fallacies run %s: %v\n%s", b.cfg.Catalogue, err, bytes.TrimSpace(errOut.Bytes()))
	}
	b.logf("catalogue: %.1f s", wall)
	s.row(b.cfg.Catalogue, fmt.Sprintf("%.1f", wall), verdict)
	s.target("whole catalogue ≤ 10 minutes", fmt.Sprintf("%.1f s", wall), wall <= 600)
	return s, nil
}
