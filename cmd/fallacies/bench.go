package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/bench"
)

func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", "[flags]", "measure the testbed itself (proxy overhead, injection accuracy, packet faults, the NATS layer, load generator, full chain, start-up, catalogue) and write BENCHMARKS.md")
	reps := fs.Int("reps", 3, "measure every figure this many times and report the median and the range")
	out := fs.String("out", "BENCHMARKS.md", "write the report here (- for stdout)")
	only := fs.String("only", "", "run only these sections, comma-separated: "+strings.Join(bench.Sections, ","))
	ghz := fs.String("ghz", "", "the ghz executable (v0.121.0) that cross-checks the load generator; empty skips the cross-check")
	catalogue := fs.String("catalogue", "experiments", "the folder of experiments the catalogue section runs as one suite")
	compose := fs.Bool("compose", false, "also time the compose topology (needs Docker and the images of make images)")
	soakFor := fs.Duration("soak-for", 30*time.Minute, "how long the soak section (run only when named in --only) keeps fallacies up under 500 orders/s")
	profiles := fs.String("profiles", "", "also write the profiles behind the figures into this folder (created): the trace section's CPU profiles, the chain-over-time heap profiles; read them with go tool pprof")
	check := fs.Bool("check", false, "exit 1 when a target of the targets table is missed (the report is written first; each missed target is named on stderr)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("bench", pos); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return testbedErr(fmt.Errorf("find this executable: %w", err))
	}
	cfg := bench.Config{Reps: *reps, GHZ: *ghz, Catalogue: *catalogue, Compose: *compose, SoakFor: *soakFor, Profiles: *profiles, Binary: self, Progress: e.stderr}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if err := checkOutFile("out", *out); err != nil {
		return err
	}
	if cfg.Profiles != "" {
		if err := os.MkdirAll(cfg.Profiles, 0o755); err != nil {
			return usageErr("--profiles %s: %v", cfg.Profiles, err)
		}
	}
	if cfg.GHZ != "" {
		if cfg.GHZ, err = filepath.Abs(cfg.GHZ); err == nil {
			_, err = os.Stat(cfg.GHZ)
		}
		if err != nil {
			return usageErr("--ghz %s: %v (install it: make bench does, with go install github.com/bojand/ghz/cmd/ghz@v0.121.0)", *ghz, err)
		}
	}
	r, err := bench.Run(ctx, cfg)
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if err != nil {
		return testbedErr(err)
	}
	md := r.Markdown()
	if *out == "-" {
		_, err = e.stdout.Write(md)
	} else {
		if err = os.WriteFile(*out, md, 0o644); err == nil {
			fmt.Fprintf(e.stdout, "wrote %s (%s)\n", *out, r.Elapsed.Round(1e9))
		}
	}
	if err != nil {
		return testbedErr(err)
	}
	return checkTargets(e, r, *check)
}

// checkTargets names every target r missed; with check, a missed target
// is exit 1 (exitFailed), as a failed hypothesis is for run.
func checkTargets(e *env, r *bench.Report, check bool) error {
	missed := r.Missed()
	out := e.stdout
	if check {
		out = e.stderr
	}
	for _, t := range missed {
		fmt.Fprintf(out, "target missed: %s: %s\n", t.What, t.Measured)
	}
	if !check || len(missed) == 0 {
		return nil
	}
	total := 0
	for _, s := range r.Sections {
		total += len(s.Targets)
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("--check: %d of %d targets missed", len(missed), total)}
}
