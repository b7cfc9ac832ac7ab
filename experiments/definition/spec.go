// Package spec loads experiment files: strict YAML with every problem
// reported at once as FILE:LINE:COL: field.path: message (hint).
//
// An experiment names a fallacy, drives an open-loop load, runs one or
// more variants of the system's configuration (knobs), injects faults on a
// schedule and states hypotheses that must hold in the phases before,
// during and after the faults. docs/experiments.md is the format
// reference; experiments/schema.json (generated from the same Go tables
// as the checks here) gives editors completion.
//
// Loading is strict: an unknown key, a duplicate key, a wrong type, a
// negative duration, an unknown target, fault kind, knob or metric is an
// error. The YAML is decoded into yaml.Node trees and walked by hand so
// that every error carries the line and column of the offending key or
// value, and so that loading goes on after the first error.
//
// The package does no I/O beyond reading the files it is asked to load.
package definition

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
)

// Experiment is a loaded, valid experiment file.
type Experiment struct {
	Path        string // the file it was loaded from
	Name        string
	Fallacy     string
	Description string
	Topology    string // embedded (default), processes or compose
	Seed        int64  // from the file, or derived from Name
	Load        Workload
	Variants    []Variant // in file order, at least one
	// Faults in schedule order as written; a step schedule becomes one
	// fault per step, named NAME-1, NAME-2, ….
	Faults     []faults.Fault
	Hypotheses []Hypothesis
}

// Workload is the open-loop load of a run (the load: section). It is not
// called Load because Load is the function that reads a file.
type Workload struct {
	Rate        float64       // requests per second
	Duration    time.Duration // length of the run, faults included
	Timeout     time.Duration // client deadline per request; default 2s
	Drain       time.Duration // wait after the load for consumers to catch up; default 5s
	MaxInFlight int           // requests in flight before new ones are dropped; default 1000
	Users       int           // distinct user ids the load spreads over; default 100
	Mix         Mix
	Steps       []RateStep // rate changes during the run, in time order
	// Retries is how often the client sends a failed request again
	// (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED), the same order
	// id each time; 0 (the default) never.
	Retries int
	// RetryBackoff is the client's first retry backoff, doubled each
	// retry, with full jitter; default 50ms.
	RetryBackoff time.Duration
}

// RateStep changes the arrival rate At an offset from the start.
type RateStep struct {
	At   time.Duration
	Rate float64 // requests per second
}

// Mix is the share of each operation in the load, summing to 1.
type Mix struct {
	PlaceOrder float64
	GetOrder   float64
}

// Variant is one configuration of the system the experiment runs.
type Variant struct {
	Name   string
	Knobs  []Knob        // in file order
	System config.System // config.Default() with Knobs applied; valid
}

// Knob is one knob setting of a variant, as written.
type Knob struct {
	Name  string
	Value string
}

// Phase is when a hypothesis is checked.
type Phase string

// Phases of a run.
const (
	Before Phase = "before" // steady state, up to the first fault
	During Phase = "during" // from the first fault's start to the last fault's end
	After  Phase = "after"  // recovery, from the last fault's end to the end of the load
	Always Phase = "always" // the whole run
)

// Hypothesis is one pass/fail statement about a run.
type Hypothesis struct {
	Name    string // the label from the file, or the check text
	When    Phase
	Variant string     // "" for every variant
	Check   string     // the expression as written
	Expr    check.Expr // Check, parsed
	Abort   bool       // stop the run when it fails during the run
	Line    int        // position of the check in the file
	Col     int
}

// Window is a time span of a run, from Start (inclusive) to End
// (exclusive), as offsets from the start of the load.
type Window struct {
	Start, End time.Duration
}

// Empty reports whether the window has no length.
func (w Window) Empty() bool { return w.End <= w.Start }

// Phases are the windows of the three phases of a run.
type Phases struct {
	Before, During, After Window
}

// Phases returns the phase windows: during is from the first fault start
// to the last fault end (the end of the load for a fault without for),
// before is [0, first start) and after is [last end, duration). Without
// faults the whole run is before and the others are empty.
func (e *Experiment) Phases() Phases {
	d := e.Load.Duration
	if len(e.Faults) == 0 {
		return Phases{Before: Window{0, d}, During: Window{d, d}, After: Window{d, d}}
	}
	first, last := d, time.Duration(0)
	for _, f := range e.Faults {
		first = min(first, f.At)
		last = max(last, faultEnd(f, d))
	}
	return Phases{Before: Window{0, first}, During: Window{first, last}, After: Window{last, d}}
}

// Window returns the window of a phase; Always is the whole run.
func (e *Experiment) Window(p Phase) Window {
	ph := e.Phases()
	switch p {
	case Before:
		return ph.Before
	case During:
		return ph.During
	case After:
		return ph.After
	}
	return Window{0, e.Load.Duration}
}

// Variant returns the named variant.
func (e *Experiment) Variant(name string) (Variant, bool) {
	for _, v := range e.Variants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

func faultEnd(f faults.Fault, duration time.Duration) time.Duration {
	if f.For == 0 {
		return duration
	}
	return f.At + f.For
}

// Fallacies returns the fallacy names an experiment can name: the eight
// fallacies of distributed computing and two more the testbed shows.
func Fallacies() []string { return slices.Clone(fallacies) }

var fallacies = []string{
	"latency-is-zero", "network-is-reliable", "bandwidth-is-infinite", "network-is-secure",
	"topology-doesnt-change", "one-administrator", "transport-cost-is-zero", "network-is-homogeneous",
	"messaging", "failure-propagation",
}

// Topologies returns the topology names an experiment can ask for.
func Topologies() []string { return slices.Clone(topologies) }

var topologies = []string{"embedded", "processes", "compose"}

var phases = []Phase{Before, During, After, Always}

// Load reads and parses an experiment file. The error is Errors when the
// content is invalid, and a plain error naming the file when it cannot be
// read, is not a regular file or is larger than MaxFileSize.
func Load(path string) (*Experiment, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadFile reads an experiment file: a regular file of at most
// MaxFileSize bytes. Anything else (a folder, a named pipe, a device such
// as /dev/zero, a socket) is refused at once, without reading from it
// (faults.ReadRegularFile, the testbed's one reader of small files).
func ReadFile(path string) ([]byte, error) {
	data, err := faults.ReadRegularFile(path, MaxFileSize, "an experiment file")
	var nr *faults.NotRegularError
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, &ioError{msg: path + ": no such file", err: err}
	case errors.As(err, &nr):
		return nil, &ioError{msg: nr.Msg, err: err}
	}
	return nil, fmt.Errorf("read experiment %s: %w", path, err)
}

// ioError is an I/O error with a message of its own.
type ioError struct {
	msg string
	err error
}

func (e *ioError) Error() string { return e.msg }
func (e *ioError) Unwrap() error { return e.err }

// LoadDir returns the experiment files (*.yaml) of a directory, sorted.
// It is an error when there are none.
func LoadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ioError{msg: dir + ": no such directory", err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("list experiments in %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".yaml" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no experiment files (*.yaml)", dir)
	}
	slices.Sort(out)
	return out, nil
}
