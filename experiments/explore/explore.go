package explore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/tracing"
)

// SpansFunc receives the spans a variant captured and the proxies of its
// topology (name → listen address).
type SpansFunc func(variant string, spans []tracing.Span, proxies map[string]string)

// Hooks are what a RunFunc tells the search as a run goes.
type Hooks struct {
	// Spans, when not nil, is given every span of the run.
	Spans SpansFunc
	// Step is told how long each step of the run took (runner.Options.Step).
	Step func(step string, took time.Duration)
}

// RunFunc runs one experiment on a fresh topology and returns its
// report, telling h what it saw. cmd/fallacies hands the runner in: this
// package starts nothing.
type RunFunc func(ctx context.Context, exp *definition.Experiment, h Hooks) (*report.Report, error)

// Options configures a search.
type Options struct {
	Run RunFunc
	// From is the experiment whose load rate, variant knobs and
	// hypotheses the search takes; nil: the defaults.
	From *definition.Experiment
	// Variant of From to take; "": its last (by convention the
	// resilient one).
	Variant string
	// Set are knobs applied after the variant's (--set knob=value).
	Set []definition.Knob
	// Budget bounds the search's wall time; the baseline and the
	// scenario under way finish past it.
	Budget time.Duration
	// MaxFaults is the most faults on at once: 1 singles, 2 pairs too.
	MaxFaults int
	Seed      int64
	// Out is the folder of explore.json, explore.html and findings/.
	Out string
	// Only restricts the search to these edges (proxy names); empty: all.
	Only []string
	// Kinds restricts the search to these fault kinds; empty: every kind
	// of the registry that applies.
	Kinds []faults.Kind
	// Phases of every scenario; zero values take the defaults below.
	Rate                                   float64
	Before, Window, After, Drain, Recovery time.Duration
	MinWindow                              time.Duration
	// AckWait is the consumers' ack wait the search runs with, unless
	// the variant or Set gives one (a knob of AckWaitKnobs): a redelivery
	// the fault causes comes this long after it, inside a short run.
	AckWait time.Duration
	// Parallel is how many scenarios run at once, each on its own
	// fresh topology.
	Parallel int
	// StopOn ends the search at the first finding that fails one of
	// these hypotheses (by name); empty: the search runs its course.
	StopOn   []string
	Progress io.Writer
	Now      func() time.Time
}

// AckWaitKnobs are the knobs of the consumers' ack waits: Options.AckWait
// sets each one the variant and --set leave alone.
var AckWaitKnobs = []string{"ledger.ack_wait", "notification.ack_wait"}

// Defaults of a scenario's shape: short phases, so that a search runs
// dozens of scenarios a minute, each on a fresh topology.
const (
	DefaultRate      = 100
	DefaultBefore    = 500 * time.Millisecond
	DefaultWindow    = time.Second
	DefaultAfter     = time.Second
	DefaultDrain     = 5 * time.Second
	DefaultRecovery  = time.Second
	DefaultMinWindow = 250 * time.Millisecond
	DefaultAckWait   = time.Second
	DefaultParallel  = 3
)

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Before, DefaultBefore)
	def(&o.Window, DefaultWindow)
	def(&o.After, DefaultAfter)
	def(&o.Drain, DefaultDrain)
	def(&o.Recovery, DefaultRecovery)
	def(&o.MinWindow, DefaultMinWindow)
	def(&o.AckWait, DefaultAckWait)
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	def(&o.Budget, 10*time.Minute)
	if o.MaxFaults <= 0 {
		o.MaxFaults = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Outcome of one scenario.
const (
	Tolerated = "tolerated" // every hypothesis held
	Failed    = "failed"    // a hypothesis failed: a finding
	Unjudged  = "unjudged"  // the steady state before the fault failed twice, or the testbed failed
)

// Result is a whole search, as explore.json holds it.
type Result struct {
	StartedAt  time.Time           `json:"started_at"`
	Seconds    float64             `json:"seconds"`
	Seed       int64               `json:"seed"`
	From       string              `json:"from,omitempty"`
	Variant    string              `json:"variant"`
	Knobs      []definition.Knob   `json:"knobs"`
	Budget     string              `json:"budget"`
	MaxFaults  int                 `json:"max_faults"`
	Invariants []string            `json:"invariants"`
	Hypotheses []string            `json:"hypotheses"`         // of --from, kept
	Dropped    []DroppedHypothesis `json:"dropped_hypotheses"` // of --from, failed without any fault
	Graph      *Graph              `json:"graph"`
	Candidates []Candidate         `json:"candidates"`
	Counts     Counts              `json:"counts"`
	Pruned     []Pruned            `json:"pruned"` // by reason, with examples
	Scenarios  []ScenarioRun       `json:"scenarios"`
	Findings   []Finding           `json:"findings"`
	// Time is where the search's time went: each step of the runs
	// (baseline, scenarios, shrinking, replays, controls) summed.
	Time []StepTime `json:"time"`
	// Stopped says why the search ended before running every planned
	// scenario ("budget spent", "interrupted"); "" when it ran them all.
	Stopped string `json:"stopped,omitempty"`
}

// DroppedHypothesis is a hypothesis of --from the baseline failed.
type DroppedHypothesis struct {
	Name     string `json:"name"`
	Check    string `json:"check"`
	Observed string `json:"observed"`
}

// Counts compares the naive enumeration with what ran.
type Counts struct {
	Singles    int `json:"singles"`     // every candidate alone
	Pairs      int `json:"pairs"`       // every two candidates at once (with max_faults >= 2)
	Enumerated int `json:"enumerated"`  // singles + pairs
	Planned    int `json:"planned"`     // left after pruning
	Run        int `json:"run"`         // scenarios run (budget permitting), shrinking excluded
	ShrinkRuns int `json:"shrink_runs"` // runs spent shrinking and confirming findings
	Controls   int `json:"controls"`    // fault-free control runs of failed scenarios
	Skipped    int `json:"skipped"`     // pruned
	NotReached int `json:"not_reached"` // planned but the budget ran out
}

// Pruned is one reason scenarios were skipped, how many, and a few of
// them.
type Pruned struct {
	Reason   string   `json:"reason"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"`
}

// ScenarioRun is one scenario the search ran.
type ScenarioRun struct {
	ID      string        `json:"id"`
	Faults  []Candidate   `json:"faults"`
	Outcome string        `json:"outcome"`
	Failed  []FailedCheck `json:"failed,omitempty"`
	Seconds float64       `json:"seconds"`
	Finding string        `json:"finding,omitempty"` // the file written from it
	Note    string        `json:"note,omitempty"`
	// Effect is what the fault visibly did although it was tolerated
	// (orders failed or slowed during it, a mechanism acted); "" none.
	Effect string `json:"effect,omitempty"`
	// EffectClass is the effect's signature (failed, slowed, the
	// mechanisms that acted and where): two faults of one edge with the
	// same signature made the system use the same alternative.
	EffectClass string `json:"effect_class,omitempty"`
}

// FailedCheck is one hypothesis a scenario failed.
type FailedCheck struct {
	Name     string `json:"name"`
	Check    string `json:"check"`
	Phase    string `json:"phase"`
	Observed string `json:"observed"`
}

// Finding is one shrunk failing scenario written as an experiment file.
type Finding struct {
	File      string        `json:"file"` // relative to the output folder
	From      string        `json:"from"` // the scenario it was shrunk from
	Scenario  Scenario      `json:"scenario"`
	Failed    []FailedCheck `json:"failed"`
	Runs      int           `json:"shrink_runs"`
	Confirmed bool          `json:"confirmed"` // the written file, run again, failed the same hypothesis
	// Want names the hypotheses the scenario failed as found, and Class
	// is what its fault visibly did (ScenarioRun.EffectClass): a later
	// failure of the same edges, hypotheses and class is the same weakness.
	Want  []string `json:"want"`
	Class string   `json:"effect_class,omitempty"`
	// At is when the finding was written, in seconds since the search
	// started (the baseline included).
	At float64 `json:"at_seconds"`
}

// Explore runs a search and writes its report folder: explore.json,
// explore.html and findings/. The error is for a search that could not
// run (the baseline failed); a search cut short by its budget or its
// context is a result.
func Explore(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	s, err := newSearch(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, FolderFindings), 0o755); err != nil {
		return nil, err
	}
	res, err := s.run(ctx)
	if res != nil {
		res.Seconds = o.Now().Sub(res.StartedAt).Seconds()
		res.Time = s.clock.steps()
		if werr := WriteReport(o.Out, res); werr != nil && err == nil {
			err = werr
		}
	}
	return res, err
}

// search is the state of one search.
type search struct {
	// mu guards res and clock against the scenarios running at once;
	// findMu lets one finding at a time be shrunk and written.
	mu, findMu sync.Mutex
	stopped    atomic.Bool // a finding failed a hypothesis of StopOn
	o          Options
	setup      Setup
	res        *Result
	deadline   time.Time
	planned    int
	sys        config.System
	rng        *rand.Rand
	clock      clock
}

func newSearch(o Options) (*search, error) {
	su := Setup{Rate: cmp.Or(o.Rate, DefaultRate), Variant: "explore", Before: o.Before, After: o.After,
		Drain: o.Drain, Recovery: o.Recovery, Seed: o.Seed}
	res := &Result{StartedAt: o.Now(), Seed: o.Seed, Budget: o.Budget.String(), MaxFaults: o.MaxFaults}
	if f := o.From; f != nil {
		res.From = f.Path
		su.Fallacy = f.Fallacy
		if o.Rate == 0 {
			su.Rate = f.Load.Rate
		}
		v := f.Variants[len(f.Variants)-1]
		if o.Variant != "" {
			var ok bool
			if v, ok = f.Variant(o.Variant); !ok {
				var names []string
				for _, v := range f.Variants {
					names = append(names, v.Name)
				}
				return nil, fmt.Errorf("%s has no variant %q (it has %s)", f.Path, o.Variant, strings.Join(names, ", "))
			}
		}
		su.Variant = v.Name
		su.Knobs = slices.Clone(v.Knobs)
		for _, h := range f.Hypotheses {
			if h.Variant == "" || h.Variant == v.Name {
				su.Hypotheses = append(su.Hypotheses, h)
			}
		}
	}
	for _, k := range o.Set {
		su.Knobs = slices.DeleteFunc(su.Knobs, func(x definition.Knob) bool { return x.Name == k.Name })
		su.Knobs = append(su.Knobs, k)
	}
	for _, name := range AckWaitKnobs {
		if !slices.ContainsFunc(su.Knobs, func(x definition.Knob) bool { return x.Name == name }) {
			su.Knobs = append(su.Knobs, definition.Knob{Name: name, Value: o.AckWait.String()})
		}
	}
	res.Variant, res.Knobs = su.Variant, su.Knobs
	for _, inv := range su.Invariants(o.Window) {
		res.Invariants = append(res.Invariants, fmt.Sprintf("%s: %s (%s)", inv.When, inv.Check, inv.Name))
	}
	return &search{o: o, setup: su, res: res, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15))}, nil
}

// experiment renders a scenario and parses it back, exactly as a finding
// file would be read.
func (s *search) experiment(name string, sc Scenario, su Setup) (*definition.Experiment, []byte, error) {
	text := su.Render(name, "a scenario of fallacies explore: "+sc.ID(), sc, nil)
	exp, err := definition.Parse(name+".yaml", text)
	if err != nil {
		return nil, text, fmt.Errorf("explore wrote an experiment it cannot read (a bug of explore):\n%v\n%s", err, text)
	}
	return exp, text, nil
}

func (s *search) run(ctx context.Context) (*Result, error) {
	s.deadline = s.o.Now().Add(s.o.Budget)
	if err := s.baseline(ctx); err != nil {
		return s.res, err
	}
	g := s.res.Graph
	all := Enumerate(s.sysOf(), g.Edges, s.o.Window)
	s.res.Candidates = all
	n := len(all)
	s.res.Counts.Singles = n
	if s.o.MaxFaults >= 2 {
		s.res.Counts.Pairs = n * (n - 1) / 2
	}
	s.res.Counts.Enumerated = s.res.Counts.Singles + s.res.Counts.Pairs

	singles, pruned := s.pruneSingles(all)
	s.planned = len(singles)
	var scs []Scenario
	for _, c := range singles {
		scs = append(scs, Scenario{Faults: []Candidate{c}})
	}
	var tolerated []Candidate
	for _, r := range s.runAll(ctx, scs) {
		if r.Outcome == Tolerated {
			tolerated = append(tolerated, r.Faults[0])
		}
	}
	if s.o.MaxFaults >= 2 && !s.over(ctx) {
		pairs, pp := s.prunePairs(all, singles, tolerated)
		pruned = append(pruned, pp...)
		s.planned += len(pairs)
		s.runAll(ctx, pairs)
	}
	s.res.Pruned = pruned
	for _, p := range pruned {
		s.res.Counts.Skipped += p.Count
	}
	s.res.Counts.Planned = s.planned
	s.res.Counts.NotReached = s.planned - s.res.Counts.Run
	switch {
	case ctx.Err() != nil:
		s.res.Stopped = "interrupted"
	case s.stopped.Load():
		s.res.Stopped = "a finding failed " + strings.Join(s.o.StopOn, " or ")
	case s.res.Counts.NotReached > 0:
		s.res.Stopped = "budget spent"
	}
	s.progress("done")
	return s.res, nil
}

// over reports the budget spent, the search interrupted, or a finding
// of StopOn made.
func (s *search) over(ctx context.Context) bool {
	return ctx.Err() != nil || !s.o.Now().Before(s.deadline) || s.stopped.Load()
}

// runAll runs the scenarios in their order, Options.Parallel at once,
// until they are done or the search is over, and records those run in
// that order (the pairs' planning reads them).
func (s *search) runAll(ctx context.Context, scs []Scenario) []ScenarioRun {
	done := make([]*ScenarioRun, len(scs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range s.o.Parallel {
		wg.Go(func() {
			for !s.over(ctx) {
				i := int(next.Add(1)) - 1
				if i >= len(scs) {
					return
				}
				r := s.runScenario(ctx, scs[i])
				done[i] = &r
			}
		})
	}
	wg.Wait()
	var out []ScenarioRun
	for _, r := range done {
		if r != nil {
			out = append(out, *r)
		}
	}
	s.mu.Lock()
	s.res.Scenarios = append(s.res.Scenarios, out...)
	s.mu.Unlock()
	return out
}

// progress draws the progress line.
func (s *search) progress(now string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := max(0, s.deadline.Sub(s.o.Now())).Round(time.Second)
	fmt.Fprintf(s.o.Progress, "explore: %d/%d scenarios · %d findings · %s of budget left · %s\n",
		s.res.Counts.Run, s.planned, len(s.res.Findings), left, now)
}

// errNoOrders is a baseline in which no order succeeded.
var errNoOrders = errors.New("no order succeeded in the fault-free baseline")

type reportVariant = report.Variant
