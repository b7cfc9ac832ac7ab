package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/runner"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/topology"
)

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "[flags] FILE|DIR|NAME...", "run experiment files (or folders of them, or catalogue names) and report")
	kind := fs.String("topology", "", "embedded, processes or compose (default: the file's, else embedded)")
	target := fs.String("target", "", "run against a system already up: the endpoints `FILE` written by fallacies up --endpoints-file")
	allowRemote := fs.Bool("allow-remote", false, "allow target addresses or a --console-addr that are not loopback")
	allowExisting := fs.Bool("allow-existing-faults", false, "with --target: run even when a proxy already has toxics or is disabled (the verdict then measures those faults too)")
	reports := fs.String("reports", "reports", "folder for the report folders")
	jaegerUI := fs.String("jaeger-ui", os.Getenv("FALLACIES_JAEGER_UI"), "Jaeger UI base URL, for links to exemplar traces (env FALLACIES_JAEGER_UI)")
	junit := fs.String("junit", "", "also write one JUnit file for the whole suite here")
	quiet := fs.Bool("quiet", false, "no progress line")
	seed := fs.Int64("seed", 0, "seed the run's random numbers with `N` instead of the file's seed (the report shows the seed of every run)")
	fullTraces := fs.Bool("full-traces", false, "also write every captured trace to traces-full.json.gz (traces.json keeps only the exemplars')")
	trials := fs.Int("trials", 1, "run each variant `N` times, each on a fresh topology, and judge each hypothesis over all of them: pass, fail, or inconclusive when a 95% interval straddles its bound (1 to "+fmt.Sprint(maxTrials)+"; docs/experiments.md)")
	inconclusive := fs.String("inconclusive", inconclusiveExit, "what an inconclusive verdict (no failure, an interval straddling a bound) exits with: exit-code (4, so CI can retry or warn), fail (1) or pass (0)")
	cons := addConsoleFlags(fs, "also serve the live page of this run and print its address (docs/console.md): experiment, variant, phase and time left, the faults on their links, the load per second, the traces of the moment, the report at the end; it only watches: adding a fault or a load from it is refused. It stops when the run ends (see --console-hold)")
	parallel := fs.Int("parallel", 1, "run up to `N` experiments of the suite at once (1 to "+fmt.Sprint(maxParallel)+"), each on its own fresh topology as always; each report still prints whole, in the suite's order, and the summary and exit code are the same. Not with --target (one shared system), --console (one page, one run) or the compose topology; with one experiment it changes nothing")
	hold := fs.Duration("console-hold", 0, "with --console: keep the page up this `DURATION` after the run ends, serving its report (Ctrl-C stops it sooner); 0: it stops with the run, after sending the page an \"ended\" event")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("name at least one experiment file or folder, e.g. fallacies run experiments/latency.yaml")
	}
	if *trials < 1 || *trials > maxTrials {
		return usageErr("--trials %d: want 1 to %d (each trial runs every variant once more)", *trials, maxTrials)
	}
	if err := oneOf("inconclusive", *inconclusive, inconclusiveExit, inconclusiveFail, inconclusivePass); err != nil {
		return err
	}
	if *target != "" && *trials > 1 {
		return usageErr("--trials %d with --target: a run against a system already up cannot start it fresh for each trial; run without --target", *trials)
	}
	if *parallel < 1 || *parallel > maxParallel {
		return usageErr("--parallel %d: want 1 to %d experiments at once", *parallel, maxParallel)
	}
	if *parallel > 1 {
		switch {
		case *target != "":
			return usageErr("--parallel %d with --target: every experiment would put its faults on the one system already up, so each verdict would measure the others' faults; run without --parallel, or without --target", *parallel)
		case *cons.on:
			return usageErr("--parallel %d with --console: the page shows one run at a time; run without --parallel, or without --console", *parallel)
		case *kind == topology.KindCompose:
			return usageErr("--parallel %d with --topology compose: a suite runs compose experiments one at a time (%s); run without --parallel", *parallel, composeSerialWhy)
		}
	}
	if *kind != "" {
		if err := oneOf("topology", *kind, topology.KindEmbedded, topology.KindProcesses, topology.KindCompose); err != nil {
			return err
		}
	}
	if err := cons.check(*allowRemote); err != nil {
		return err
	}
	switch {
	case *hold < 0:
		return usageErr("--console-hold %v: want 0 or more, e.g. 10m", *hold)
	case *hold > 0 && !*cons.on:
		return usageErr("--console-hold: only with --console")
	}
	exps, err := loadAll(e, pos)
	if err != nil {
		return err
	}
	if err := refuseParallel(*parallel, *kind, exps); err != nil {
		return err
	}
	if err := checkOutFile("junit", *junit); err != nil {
		return err
	}
	if err := checkOutDir("reports", *reports); err != nil {
		return err
	}
	if flagSet(fs, "seed") {
		for _, exp := range exps {
			exp.Seed = *seed
		}
	}
	opts := runner.Options{Topology: *kind, ReportsDir: *reports, JaegerUI: *jaegerUI, AllowRemote: *allowRemote, TTY: e.stderrTTY, FullTraces: *fullTraces, Trials: *trials}
	if !*quiet {
		opts.Progress = e.stderr
		opts.Width = func() int { return terminalWidth(e.stderr) }
	}
	if *target != "" {
		ep, err := topology.LoadEndpoints(*target)
		if err != nil {
			return usageErr("--target: %v", err)
		}
		if err := ep.Validate(); err != nil {
			return usageErr("--target %s: %v", *target, err)
		}
		if err := topology.CheckLoopback(ep.Addresses(), *allowRemote); err != nil {
			return usageErr("--target %s: %v", *target, err)
		}
		if !*allowExisting {
			if err := refuseExistingFaults(ctx, *target, ep.ToxiproxyAPI); err != nil {
				return err
			}
		}
		// The journal of runs against this target: refused at once when
		// the file there is not one, before anything is touched.
		if _, err := checkJournal(journalFor(*target)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		opts.Target = &ep
		opts.Journal = journalFor(*target)
		if opts.JaegerUI == "" {
			opts.JaegerUI = ep.JaegerUI
		}
	}

	if opts.Target != nil {
		warnNoTraces(e, exps, *opts.Target)
	}
	var rc *runConsole
	if *cons.on {
		if rc, err = startRunConsole(ctx, *cons.addr, *reports); err != nil {
			return testbedErr(err)
		}
		defer func() { rc.end(ctx, e, *hold) }()
		opts.Live = rc.live()
		until := "it stops when the run ends"
		if *hold > 0 {
			until = fmt.Sprintf("it stays up %v after the run ends", *hold)
		}
		fmt.Fprintf(e.stderr, "console: %s (the page of this run; it only watches; %s)\n", rc.url, until)
	}

	suite := &report.Suite{Name: suiteName(pos)}
	started := time.Now()
	sr := newSuiteRun(e, exps, opts, *parallel, *quiet)
	sr.rc = rc
	suite.Reports, suite.Unreported = sr.run(ctx)
	testbedFailure := sr.testbedFailure
	suite.DurationSeconds = time.Since(started).Seconds()
	suite.Passed = testbedFailure == nil && ctx.Err() == nil && len(suite.Reports) == len(exps)
	if testbedFailure != nil {
		suite.Error = testbedFailure.Error()
	}
	if ctx.Err() != nil {
		in := interrupted(ctx)
		suite.Interrupted = &report.Interruption{Reason: in.err.Error(), At: time.Now(), ExitCode: in.code}
	}
	for _, r := range suite.Reports {
		suite.Passed = suite.Passed && r.Passed
	}
	if len(exps) > 1 {
		fmt.Fprintln(e.stdout)
		report.SuiteText(e.stdout, suite)
	}
	if *junit != "" {
		if err := writeFile(*junit, func(f *os.File) error { return report.SuiteJUnit(f, suite) }); err != nil {
			return testbedErr(err)
		}
		fmt.Fprintf(e.stdout, "junit: %s\n", *junit)
	}
	switch {
	case testbedFailure != nil:
		return errSilent(exitTestbed)
	case ctx.Err() != nil:
		in := interrupted(ctx)
		fmt.Fprintf(e.stderr, "fallacies run: %v; every fault applied was removed, the report keeps what was measured\n", in)
		return errSilent(in.code)
	}
	return suiteExit(e, suite, *inconclusive)
}

// What --inconclusive maps an inconclusive verdict to.
const (
	inconclusiveExit = "exit-code" // exit 4
	inconclusiveFail = "fail"      // exit 1
	inconclusivePass = "pass"      // exit 0, with a warning
	maxTrials        = 100
)

// suiteExit is the exit of a suite that ran to its end: 1 when a
// hypothesis failed, else for an inconclusive one what mapping says,
// else 0 when every report passed.
func suiteExit(e *env, suite *report.Suite, mapping string) error {
	code := exitOK
	for _, r := range suite.Reports {
		switch c := r.ExitCode(); {
		case c == report.ExitCodeInconclusive && code == exitOK:
			code = c
		case c != exitOK && c != report.ExitCodeInconclusive:
			code = exitFailed
		}
	}
	if code == exitOK && !suite.Passed {
		code = exitFailed
	}
	if code != report.ExitCodeInconclusive {
		if code != exitOK {
			return errSilent(code)
		}
		return nil
	}
	switch mapping {
	case inconclusiveFail:
		fmt.Fprintln(e.stderr, "fallacies run: a hypothesis is inconclusive (none failed); --inconclusive=fail exits 1")
		return errSilent(exitFailed)
	case inconclusivePass:
		fmt.Fprintln(e.stderr, "fallacies run: warning: a hypothesis is inconclusive (none failed); --inconclusive=pass exits 0")
		return nil
	}
	fmt.Fprintf(e.stderr, "fallacies run: a hypothesis is inconclusive (none failed): exit %d; run more trials (--trials) or retry\n", report.ExitCodeInconclusive)
	return errSilent(report.ExitCodeInconclusive)
}

// refuseExistingFaults is a usage error when a proxy of the target's
// Toxiproxy already has toxics or is disabled: a steady state measured on
// top of someone's 300 ms would pass or fail for the wrong reason. An API
// that does not answer is left to the run, which says so.
func refuseExistingFaults(ctx context.Context, target, api string) error {
	existing, err := toxiproxy.NewInjector(api, nil).Existing(ctx)
	if err != nil || len(existing) == 0 {
		return nil
	}
	return usageErr("fallacies run: --target %s: the system already carries faults, so the verdict would measure them too:\n  %s\nremove them (fallacies reset --target %s --all) or pass --allow-existing-faults",
		target, strings.Join(existing, "\n  "), target)
}

// loadAll loads every experiment named by files and folders, printing every
// error of every file; any error is a usage error and nothing runs.
func loadAll(e *env, paths []string) ([]*definition.Experiment, error) {
	var files []string
	for _, p := range paths {
		p, err := definition.Resolve(p, definition.Catalogue)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, usageErr("%s: no such file or folder", p)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		fs, err := definition.LoadDir(p)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		files = append(files, fs...)
	}
	var exps []*definition.Experiment
	bad := 0
	for _, f := range files {
		exp, err := definition.Load(f)
		if err != nil {
			bad++
			fmt.Fprintln(e.stderr, strings.TrimSpace(err.Error()))
			continue
		}
		exps = append(exps, exp)
	}
	if bad > 0 {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%d of %d experiment files are invalid; nothing was started", bad, len(files))}
	}
	return exps, nil
}

func suiteName(paths []string) string {
	if len(paths) == 1 {
		return strings.TrimSuffix(filepath.Base(paths[0]), filepath.Ext(paths[0]))
	}
	return "suite"
}

// warnNoTraces says, before a --target run starts, whether it captures
// the target's spans (they come to the OTLP endpoint of its endpoints
// file, which the run listens on) and, when it cannot, that its trace
// hypotheses will fail, why, and what to do.
func warnNoTraces(e *env, exps []*definition.Experiment, ep topology.Endpoints) {
	addr, err := runner.TargetTraceAddress(ep)
	if err == nil {
		fmt.Fprintf(e.stderr, "fallacies run: capturing the target's spans at %s, where its services export them\n", addr)
		return
	}
	for _, exp := range exps {
		hs := runner.TraceHypotheses(exp)
		if len(hs) == 0 {
			continue
		}
		noun := "hypothesis"
		if len(hs) > 1 {
			noun = "hypotheses"
		}
		fmt.Fprintf(e.stderr, "fallacies run: %s: %d trace %s will fail with \"no value\" (%s): this run captures no traces: %v; "+
			"start fallacies up with --otlp-endpoint 127.0.0.1:PORT (a free port) so that this run receives them, or run without --target\n",
			exp.Path, len(hs), noun, strings.Join(hs, "; "), err)
	}
}

// journalFor is where the fault journal of runs against a target lives.
func journalFor(target string) string { return target + ".journal" }

// checkOutFile is a usage error when the file path of flag --name cannot
// be written, checked before any work starts: a run of minutes must not
// end on a path that was wrong from the start. It makes the file's folder,
// as the write at the end would, and leaves no file behind. "" and "-"
// (standard output) are always fine.
func checkOutFile(name, path string) error {
	if path == "" || path == "-" {
		return nil
	}
	cannot := func(err error) error {
		return usageErr("--%s %s: cannot write there: %v", name, path, err)
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return usageErr("--%s %s: is a folder; name a file in it", name, path)
		}
		if !fi.Mode().IsRegular() {
			return nil // /dev/stdout, a pipe: opening it now could block, and it is the user's choice
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return cannot(err)
		}
		return f.Close()
	}
	if err := canCreateIn(filepath.Dir(path)); err != nil {
		return cannot(err)
	}
	return nil
}

// checkOutDir is checkOutFile for the folder of flag --name: it makes the
// folder, as the command would, and checks a file can be made in it.
func checkOutDir(name, dir string) error {
	if dir == "" {
		return nil
	}
	if err := canCreateIn(dir); err != nil {
		return usageErr("--%s %s: cannot write there: %v", name, dir, err)
	}
	return nil
}

// canCreateIn makes folder dir if it is missing and creates and removes a
// file in it.
func canCreateIn(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".fallacies-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func writeFile(path string, write func(*os.File) error) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmdValidate(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "validate", "FILE|DIR...", "check experiment files without running anything")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("name at least one experiment file or folder")
	}
	exps, err := loadAll(e, pos)
	if err != nil {
		return err
	}
	for _, x := range exps {
		fmt.Fprintf(e.stdout, "%s: ok (%s: %d variants, %d faults, %d hypotheses)\n", x.Path, x.Name, len(x.Variants), len(x.Faults), len(x.Hypotheses))
	}
	return nil
}

func cmdList(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "list", "[DIR]", "list the experiments of the catalogue")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageErr("unexpected argument %q: list takes one folder at most", pos[1])
	}
	dir := "experiments"
	if len(pos) > 0 {
		dir = pos[0]
	}
	files, err := definition.LoadDir(dir)
	if err != nil {
		return usageErr("%v", err)
	}
	fmt.Fprintf(e.stdout, "%-20s %-24s %s\n", "NAME", "FALLACY", "DESCRIPTION")
	for _, f := range files {
		x, err := definition.Load(f)
		if err != nil {
			fmt.Fprintf(e.stdout, "%-20s %-24s %s\n", filepath.Base(f), "(invalid)", "run `fallacies validate "+f+"`")
			continue
		}
		fmt.Fprintf(e.stdout, "%-20s %-24s %s\n", x.Name, x.Fallacy, x.Description)
	}
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
