// Command fallacies runs the Fallacies testbed: it starts the system under
// test, runs experiment files against it, and reports whether each
// hypothesis held.
//
//	fallacies run experiments/latency.yaml
//	fallacies up
//	fallacies validate experiments/*.yaml
//
// Exit codes: 0 every hypothesis held, 1 a hypothesis failed, 2 an invalid
// experiment or usage, 3 the testbed itself failed (a crash included),
// 4 no hypothesis failed but one was inconclusive over its trials
// (fallacies run --trials N; --inconclusive maps it) or not judged (a
// fault came off so late that its after phase was too short), 130 or 143 a run interrupted by SIGINT or SIGTERM (faults removed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fallacies/fallacies/experiments/crash"
	"github.com/fallacies/fallacies/experiments/runner"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // a hypothesis failed
	exitUsage   = 2 // invalid experiment or usage
	exitTestbed = 3 // the testbed itself failed
	// 4, report.ExitCodeInconclusive: no hypothesis failed, one was
	// inconclusive over its trials or not judged (its after phase too
	// short after a late fault removal); run --inconclusive maps it.
)

// exitError carries an exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func testbedErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitTestbed, err: err}
}

// errSilent is an exit code whose story has already been printed.
type errSilent int

func (e errSilent) Error() string { return fmt.Sprintf("exit %d", int(e)) }

type command struct {
	name    string
	summary string
	usage   string // arguments after the flags
	run     func(ctx context.Context, env *env, args []string) error
	// starts is set on commands that start things (a system, load,
	// faults): they trap SIGINT and SIGTERM to stop them in order. The
	// others (validate, list, …) only read, and a signal kills them at
	// once as it would any program.
	starts bool
}

// env is what commands write to.
type env struct {
	stdout, stderr io.Writer
	stderrTTY      bool
}

var commands []command

func init() {
	commands = []command{
		{"run", "run experiment files (or folders of them, or catalogue names) and report", "[flags] FILE|DIR|NAME...", cmdRun, true},
		{"diff", "compare two runs' reports: what changed per variant and phase, and whether it is significant", "[flags] BASE NEW", cmdDiff, false},
		{"calibrate", "run an experiment several times and propose each hypothesis's bounds at a stated false-alarm rate", "[flags] FILE|NAME", cmdCalibrate, true},
		{"validate", "check experiment files without running anything", "FILE|DIR...", cmdValidate, false},
		{"list", "list the experiments of the catalogue", "[DIR]", cmdList, false},
		{"up", "start the system under test and keep it up until Ctrl-C", "[flags]", cmdUp, true},
		{"place-order", "place orders through a running system and print what happened", "[flags]", cmdPlaceOrder, true},
		{"reset", "remove the faults a run left behind (after a crash)", "[flags]", cmdReset, false},
		{"reports", "manage report folders: prune --keep N deletes all but the N newest", "prune --keep N [--dir reports] [--dry-run]", cmdReports, false},
		{"explore", "search for the faults the system does not tolerate; write each finding as an experiment file", "[flags]", cmdExplore, true},
		{"soak", "run the resilient variants in a loop at a multiple of their load; fail on leaks or lost events", "[flags] DIR|FILE...", cmdSoak, true},
		{"serve", "run one service (used by the processes and compose topologies)", "SERVICE [--config FILE] [flags]", cmdServe, true},
		{"health", "check a service's health (the containers' health check)", "[--http] ADDR|URL", cmdHealth, false},
		{"compose-wait", "wait for a compose stack to be healthy and print its endpoints", "[flags]", cmdComposeWait, true},
		{"bench", "measure the testbed itself and write BENCHMARKS.md", "[flags]", cmdBench, true},
		{"knobs", "list the knobs experiment variants can set", "", cmdKnobs, false},
		{"kinds", "list the fault kinds experiment files can use", "", cmdKinds, false},
		{"version", "print the version", "", cmdVersion, false},
	}
}

func main() {
	ctx := context.Background()
	stop := func() {}
	if c := lookup(os.Args[1:]); c != nil && c.starts {
		ctx, stop = trapSignals(ctx)
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// lookup returns the command args name, or nil.
func lookup(args []string) *command {
	if len(args) == 0 {
		return nil
	}
	for i := range commands {
		if commands[i].name == args[0] {
			return &commands[i]
		}
	}
	return nil
}

// trapSignals returns a context that SIGINT or SIGTERM cancels with a
// runner.Interrupt naming the signal. Later signals are absorbed until stop
// is called, so that a second Ctrl-C cannot cut the removal of faults short.
func trapSignals(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(interruptOf(sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// interruptOf names sig and its conventional exit code, 128 + its number.
func interruptOf(sig os.Signal) *runner.Interrupt {
	name, code := sig.String(), 130
	if s, ok := sig.(syscall.Signal); ok {
		code = 128 + int(s)
		switch s {
		case syscall.SIGINT:
			name = "SIGINT"
		case syscall.SIGTERM:
			name = "SIGTERM"
		}
	}
	return &runner.Interrupt{Signal: name, ExitCode: code}
}

// interrupted is the exit of a command that ctx's end stopped: 130 after
// SIGINT (or any other end of ctx), 143 after SIGTERM; the reason is on
// the error.
func interrupted(ctx context.Context) *exitError {
	in := &runner.Interrupt{Signal: "a cancelled context", ExitCode: 130}
	errors.As(context.Cause(ctx), &in)
	return &exitError{code: in.ExitCode, err: in}
}

// run executes one command line and returns the exit code. A panic is a
// crash of fallacies itself: exit 3, one line on stderr, the stack in a
// file.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			code = crashed(stderr, args, crash.New(p))
		}
	}()
	e := &env{stdout: stdout, stderr: stderr, stderrTTY: isTerminal(stderr)}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		printUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd := lookup(args)
	if cmd == nil {
		fmt.Fprintf(stderr, "fallacies: unknown command %q (run `fallacies --help` for the list)\n", args[0])
		return exitUsage
	}
	err := cmd.run(ctx, e, args[1:])
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var silent errSilent
	if errors.As(err, &silent) {
		return int(silent)
	}
	msg := strings.TrimSpace(err.Error())
	if !strings.Contains(msg, "\n") {
		msg = "fallacies " + cmd.name + ": " + msg
	}
	fmt.Fprintln(stderr, msg)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitTestbed
}

// crashed reports a panic of a command: one line on stderr, the stack in
// a file of the temporary folder; exit code 3.
func crashed(stderr io.Writer, args []string, p *crash.Panic) int {
	name := "fallacies"
	if len(args) > 0 {
		name += " " + args[0]
	}
	dir, err := os.MkdirTemp("", "fallacies-crash-")
	where := ""
	if err == nil {
		if path, err := crash.WriteFile(dir, p); err == nil {
			where = " (stack in " + path + ")"
		}
	}
	fmt.Fprintf(stderr, "%s: internal error: %v%s\n", name, p, where)
	return exitTestbed
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `fallacies: a testbed for the eight fallacies of distributed computing

Usage:
  fallacies <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "fallacies <command> --help" for the flags of a command.

Exit codes: 0 every hypothesis held, 1 a hypothesis failed,
            2 invalid experiment or usage, 3 the testbed itself failed,
            4 none failed but one was inconclusive over --trials, or not judged
              (a fault came off too late to judge the after phase; run --inconclusive maps it),
            130/143 a run interrupted by SIGINT/SIGTERM (faults removed).
`)
}

// newFlags returns a flag set whose --help prints the command's usage.
func newFlags(e *env, name, usage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: fallacies %s %s\n\n%s.\n", name, usage, capitalize(summary))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(e.stdout, "\nFlags:")
			fs.SetOutput(e.stdout)
			fs.PrintDefaults()
			fs.SetOutput(e.stderr)
		}
	}
	return fs
}

// parse parses flags, turning a flag error into a usage error, and applies
// the checks every flag gets (checkSetFlags). Flags may come before or
// after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: exitUsage, err: errSilent(exitUsage)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, checkSetFlags(fs)
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
