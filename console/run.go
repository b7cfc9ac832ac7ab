package console

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/tracing"
)

// The console of a run in progress (`fallacies run --console`,
// Options.Run): it starts nothing and changes nothing. cmd/fallacies
// tells it of the run as the runner goes (RunVariant, RunProgress,
// RunCompleted, RunFault, RunReport, RunEnded); the page shows the
// experiment, its variant, phase and time left, the run's faults on their
// links and on the chart, the run's load per second, the traces of the
// moment, and the report of every experiment that ended. Every request
// that would change the system (a fault, a load, an experiment) is
// refused with 409 and the reason, since the run's verdict would measure
// it too.

// RunVariant is a variant of the run as its load starts.
type RunVariant struct {
	Experiment string
	Variant    string
	Index, Of  int               // Index counts from 0
	Proxies    map[string]string // its system's proxies: name → listen address
	// Spans returns the spans its services ended since the last call.
	Spans func() []tracing.Span
}

// runState is what the console knows of the run it shows.
type runState struct {
	mu      sync.Mutex
	view    runView
	spans   func() []tracing.Span
	proxies map[string]string
}

// runView is the run as the page shows it (state.run).
type runView struct {
	Experiment string  `json:"experiment,omitempty"`
	Variant    string  `json:"variant,omitempty"`
	Index      int     `json:"index,omitempty"` // from 1
	Of         int     `json:"of,omitempty"`
	Phase      string  `json:"phase,omitempty"` // before, during, after; "starting" until the load starts
	ElapsedS   float64 `json:"elapsed_s"`
	TotalS     float64 `json:"total_s"`
	LeftS      float64 `json:"left_s"`
	// Topology counts the variants started: the page draws the graph
	// again (GET /api/topology) when it changes.
	Topology int         `json:"topology"`
	Reports  []runReport `json:"reports"` // the experiments that ended, in order
	Ended    bool        `json:"ended"`   // the whole run is over
}

// runReport is one experiment of the run that ended.
type runReport struct {
	Experiment string `json:"experiment"`
	Passed     bool   `json:"passed"`
	// Verdict is its report's one word (report.Report.Verdict): PASS,
	// FAIL, INCONCLUSIVE, ERROR or INTERRUPTED; ERROR when it ended with
	// an error and no report, or a report that passed.
	Verdict string `json:"verdict"`
	Error   string `json:"error,omitempty"`
	Dir     string `json:"dir,omitempty"` // its report folder on disk
	URL     string `json:"url,omitempty"` // its report.html, as this console serves it
}

// RunVariant tells the console that a variant's load is about to start.
func (c *Console) RunVariant(v RunVariant) {
	c.run.mu.Lock()
	c.run.view.Experiment, c.run.view.Variant, c.run.view.Index, c.run.view.Of = v.Experiment, v.Variant, v.Index+1, v.Of
	c.run.view.Phase, c.run.view.ElapsedS, c.run.view.TotalS, c.run.view.LeftS = "starting", 0, 0, 0
	c.run.view.Topology++
	c.run.spans = v.Spans
	c.run.proxies = maps.Clone(v.Proxies)
	c.run.mu.Unlock()
	c.live.setProxies(v.Proxies)
	c.poke()
}

// RunProgress tells the console where the variant's load is.
func (c *Console) RunProgress(phase string, elapsed, total time.Duration) {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	c.run.view.Phase = phase
	c.run.view.ElapsedS, c.run.view.TotalS = elapsed.Seconds(), total.Seconds()
	c.run.view.LeftS = max(total-elapsed, 0).Seconds()
}

// RunCompleted tells the console that a request of the run's load
// completed: when, its latency, whether it succeeded (the chart).
func (c *Console) RunCompleted(at time.Time, latency time.Duration, ok bool) {
	c.load.record(at, latency, ok)
}

// RunFault tells the console that the run put a fault on or took it off.
func (c *Console) RunFault(f faults.Fault, on bool, at time.Time) {
	c.faults.runFault(f, on, at)
	c.poke()
}

// RunReport tells the console that an experiment of the run ended, with
// its report folder (empty when none was written), its report's verdict
// (report.Report.Verdict; empty when none was written) and its error.
func (c *Console) RunReport(experiment, dir, verdict string, err error) {
	if verdict == "" || (err != nil && verdict == "PASS") {
		verdict = "ERROR"
	}
	r := runReport{Experiment: experiment, Verdict: verdict, Passed: verdict == "PASS" && err == nil, Dir: dir}
	if err != nil {
		r.Error = err.Error()
	}
	if dir != "" {
		r.URL = "/reports/" + filepath.Base(dir) + "/report.html"
	}
	c.run.mu.Lock()
	c.run.view.Reports = append(c.run.view.Reports, r)
	c.run.view.Phase = "ended"
	c.run.view.LeftS = 0
	c.run.mu.Unlock()
	c.poke()
}

// RunEnded tells the console that the run is over: every page gets the
// final state as an "ended" event, the last event it gets.
func (c *Console) RunEnded() {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.run.mu.Lock()
	c.run.view.Ended = true
	c.run.mu.Unlock()
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	now := time.Now()
	c.live.add(c.takeSpans(), now)
	c.events.publish("ended", c.state(now, nil, nil))
}

// runReportServed reports whether dir (a folder name) is the report
// folder of an experiment of the run.
func (r *runState) reportServed(dir string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.view.Reports, func(rr runReport) bool { return rr.Dir != "" && filepath.Base(rr.Dir) == dir })
}

func (r *runState) state() *runView {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.view
	v.Reports = slices.Clone(v.Reports)
	if v.Reports == nil {
		v.Reports = []runReport{}
	}
	return &v
}

// lockReason says why this console refuses every change: "" on the
// console of `fallacies up`.
func (c *Console) lockReason() string {
	if !c.opts.Run {
		return ""
	}
	v := c.run.state()
	switch {
	case v.Ended:
		return "the run this console showed has ended; this console only watches (fallacies up --console serves one that breaks a system by hand)"
	case v.Experiment == "":
		return "a run is starting: this console only watches it; a fault or a load added by hand would be measured by its verdict too"
	}
	return fmt.Sprintf("experiment %s is running (variant %s, %d of %d): this console only watches it; a fault or a load added by hand would be measured by its verdict too",
		v.Experiment, v.Variant, v.Index, v.Of)
}
