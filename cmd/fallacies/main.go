// Command fallacies runs the Fallacies testbed: it starts the system under
// test, runs experiment files against it, and reports whether each
// hypothesis held.
//
//	fallacies run experiments/latency.yaml
//	fallacies up
//	fallacies validate experiments/*.yaml
//
// Exit codes: 0 every hypothesis held, 1 a hypothesis failed, 2 an invalid
// experiment or usage, 3 the testbed itself failed.
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
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // a hypothesis failed
	exitUsage   = 2 // invalid experiment or usage
	exitTestbed = 3 // the testbed itself failed
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
}

// env is what commands write to.
type env struct {
	stdout, stderr io.Writer
	stderrTTY      bool
}

var commands []command

func init() {
	commands = []command{
		{"run", "run experiment files (or folders of them) and report", "[flags] FILE|DIR...", cmdRun},
		{"validate", "check experiment files without running anything", "FILE|DIR...", cmdValidate},
		{"list", "list the experiments of the catalogue", "[DIR]", cmdList},
		{"up", "start the system under test and keep it up until Ctrl-C", "[flags]", cmdUp},
		{"place-order", "place orders through a running system and print what happened", "[flags]", cmdPlaceOrder},
		{"reset", "remove the faults a run left behind (after a crash)", "[flags]", cmdReset},
		{"reports", "manage report folders: prune --keep N deletes all but the N newest", "prune --keep N [--dir reports] [--dry-run]", cmdReports},
		{"soak", "run the resilient variants in a loop at a multiple of their load; fail on leaks or lost events", "[flags] DIR|FILE...", cmdSoak},
		{"serve", "run one service (used by the processes and compose topologies)", "SERVICE [--config FILE] [flags]", cmdServe},
		{"health", "check a service's health (the containers' health check)", "[--http] ADDR|URL", cmdHealth},
		{"compose-wait", "wait for a compose stack to be healthy and print its endpoints", "[flags]", cmdComposeWait},
		{"bench", "measure the testbed itself and write BENCHMARKS.md", "[flags]", cmdBench},
		{"knobs", "list the knobs experiment variants can set", "", cmdKnobs},
		{"version", "print the version", "", cmdVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
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
            2 invalid experiment or usage, 3 the testbed itself failed.
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

// parse parses flags, turning a flag error into a usage error. Flags may
// come before or after positional arguments.
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
			return pos, nil
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
