// Package report is the model of an experiment's result and its renderers:
// a terminal summary (text), the machine-readable truth (json), JUnit XML for
// CI systems (junit) and one self-contained HTML page with charts (html).
//
// The model is plain data. The runner converts what the load generator, the
// hypothesis checker, the consistency checker and the trace analysis
// measured into a Report; this package imports no other package of the
// project and does no network I/O, so it can be read, tested and reused on
// its own (for example by a tool that reads report.json files back and
// compares runs).
//
//	runner ──converts──▶ *Report ──Renderers["text"|"json"|"junit"|"html"]──▶ io.Writer
//	                         └──────WriteDir──▶ report.json, junit.xml, report.html
//
// The JSON shape of Report is a contract documented in docs/report.md: keys
// are snake_case, timestamps are RFC 3339 with nanoseconds, durations are in
// milliseconds unless the key says seconds, rates are fractions between 0
// and 1, and arrays and maps are never null.
//
// # Charts
//
// The HTML report draws its charts as inline SVG with a small writer of its
// own (svg.go) rather than a charting library. The charts needed are few and
// simple (lines over seconds, shaded windows, state bands, waterfall bars);
// a library would add a dependency, usually JavaScript or a network fetch,
// for little gain, while a page that must open offline, from a CI artifact,
// years later, must carry everything inline. Writing the SVG ourselves also
// gives full control over what a chart shows (the same y scale across
// variants, fault windows labelled by name, gaps where a second had no
// data) and deterministic output: the same Report always renders to the same
// bytes, so reports can be diffed and tested.
package report

import (
	"math"
	"slices"
	"time"
)

// Phase names as used in Variant.Phases, Hypothesis.Phase and Exemplar.Phase.
const (
	PhaseBefore = "before" // steady state before the first fault
	PhaseDuring = "during" // any fault window
	PhaseAfter  = "after"  // recovery after the last fault
)

// Exemplar kinds.
const (
	ExemplarSlowest = "slowest" // the slowest request of its phase
	ExemplarFailed  = "failed"  // a failed request of its phase
)

// Breaker states as used in BreakerTransition.From and To.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// Report is the result of one experiment run: its identity, its verdict, and
// per variant everything measured.
type Report struct {
	Experiment      string    `json:"experiment"`          // experiment name
	Fallacy         string    `json:"fallacy"`             // fallacy it demonstrates, e.g. latency-is-zero
	Description     string    `json:"description"`         // one or two sentences from the experiment file
	File            string    `json:"file"`                // path of the experiment file
	Topology        string    `json:"topology"`            // embedded, processes or compose
	Passed          bool      `json:"passed"`              // every hypothesis of every variant held and nothing failed
	Seed            int64     `json:"seed"`                // seed of the run's random source
	StartedAt       time.Time `json:"started_at"`          // when the run started
	DurationSeconds float64   `json:"duration_seconds"`    // wall time of the whole run
	Variants        []Variant `json:"variants"`            // in the order of the experiment file
	Error           string    `json:"error,omitempty"`     // the testbed itself failed (exit code 3)
	JaegerUI        string    `json:"jaeger_ui,omitempty"` // base URL of a Jaeger UI holding the traces
	// Interrupted is set when a signal (Ctrl-C, SIGTERM) stopped the run
	// before its end: what was measured until then is kept, the hypotheses
	// are not judged.
	Interrupted *Interruption `json:"interrupted,omitempty"`
	// Trials is how many times each variant ran, each on a fresh
	// topology (fallacies run --trials N); 1 unless asked.
	Trials int `json:"trials"`
	// Control is set for a control run (fallacies calibrate --control):
	// the faults' schedule was followed but no fault was put on the
	// system.
	Control bool `json:"control,omitempty"`
	// FaultEffect says whether the fault measurably changed the naive
	// variant: a gate whose fault does nothing proves nothing. Absent
	// when nothing could be compared (a --target run, no fault window).
	FaultEffect *FaultEffect `json:"fault_effect,omitempty"`
}

// Interruption says what stopped a run from outside, and when.
type Interruption struct {
	Reason   string    `json:"reason"`    // e.g. "interrupted by SIGINT"
	At       time.Time `json:"at"`        // when the run's context ended (before the clean-up)
	ExitCode int       `json:"exit_code"` // 130 after SIGINT, 143 after SIGTERM
}

// Stop says when and why an abort hypothesis stopped a variant's run
// before its end.
type Stop struct {
	Hypothesis string    `json:"hypothesis"`     // the check as written
	Name       string    `json:"name,omitempty"` // the hypothesis's name, if it has one
	Phase      string    `json:"phase"`          // the phase it was checked in
	Observed   string    `json:"observed"`       // the value that breached it
	BreachedAt time.Time `json:"breached_at"`    // when the runner saw the breach
	StoppedAt  time.Time `json:"stopped_at"`     // when the load had stopped (in-flight requests cancelled)
	// Seconds from the run start (the load's), like Fault's offsets.
	BreachedOffset float64 `json:"breached_offset"`
	StoppedOffset  float64 `json:"stopped_offset"`
}

// LateRemoval says that the after phase began later than its schedule
// because a fault came off late (a process or container to start again,
// an API slow to answer on a loaded machine). The after
// phase is the system with every fault off, so it is measured from the
// removal of the last fault, never from the scheduled end; the time in
// between counts in the during phase.
type LateRemoval struct {
	// Offsets in seconds from the run start, like Fault's.
	ScheduledOffset float64 `json:"scheduled_offset"` // where the schedule began the after phase: the faults' scheduled end
	AfterOffset     float64 `json:"after_offset"`     // where it began: the last fault was off
	// The after phase's length as measured and as scheduled, in seconds.
	AfterSeconds     float64 `json:"after_seconds"`
	ScheduledSeconds float64 `json:"scheduled_seconds"`
	// Judged is false when the after phase kept less than half its
	// scheduled length: the hypotheses that read it are then inconclusive,
	// not judged (their skip_reason says why).
	Judged bool     `json:"judged"`
	Faults []string `json:"faults"` // the faults that came off more than 100 ms after their scheduled end
	Note   string   `json:"note"`   // one sentence: which fault, how late, what was left of the phase
}

// Variant is what one variant of an experiment measured: the same topology
// and fault schedule with its own knobs.
type Variant struct {
	Name        string                      `json:"name"`
	Passed      bool                        `json:"passed"`
	Knobs       []Knob                      `json:"knobs"`             // the knobs this variant sets, in file order
	Phases      map[string]Phase            `json:"phases"`            // place_order by phase: before, during, after
	Ops         map[string]map[string]Phase `json:"ops"`               // other operations (get_order, …) → phase → Phase
	Load        Load                        `json:"load"`              // how the load generator kept its schedule
	Hypotheses  []Hypothesis                `json:"hypotheses"`        // every hypothesis that applies to this variant
	Faults      []Fault                     `json:"faults"`            // the faults as actually applied
	Timeseries  []Second                    `json:"timeseries"`        // one entry per second of the run
	Consistency Consistency                 `json:"consistency"`       // event and payment accounting after drain
	Breakers    []BreakerTransition         `json:"breakers"`          // circuit breaker state changes in time order
	Metrics     map[string]float64          `json:"metrics"`           // every scalar metric computed, by vocabulary name; durations in ms
	Exemplars   []Exemplar                  `json:"exemplars"`         // slowest and failed traces per phase
	Mechanisms  []Mechanism                 `json:"mechanisms"`        // what the resilience mechanisms did, by the services' own counters
	Consumers   []ConsumerSeries            `json:"consumers"`         // per asynchronous consumer, events published and applied per second
	Error       string                      `json:"error,omitempty"`   // the testbed failed while running this variant
	Stopped     *Stop                       `json:"stopped,omitempty"` // an abort hypothesis stopped the run early
	// LateRemoval is set when the faults came off so late that the after
	// phase began noticeably later than scheduled: it was measured from
	// their removal, and is too short to judge when Judged is false.
	LateRemoval *LateRemoval `json:"late_removal,omitempty"`
	// Trials lists every trial of the variant with its scalar metrics;
	// the other fields (phases, charts, exemplars, …) are the first
	// trial's. One entry for a run of one trial.
	Trials []Trial `json:"trials"`
}

// Trial is one run of a variant on its own fresh topology.
type Trial struct {
	Trial           int                `json:"trial"` // 1-based
	Passed          bool               `json:"passed"`
	DurationSeconds float64            `json:"duration_seconds"`
	Metrics         map[string]float64 `json:"metrics"`    // as Variant.Metrics
	Timeseries      []Second           `json:"timeseries"` // as Variant.Timeseries
	Error           string             `json:"error,omitempty"`
}

// Mechanism kinds as used in Mechanism.Kind, in the order reports list them.
const (
	MechanismFallback         = "fallback"          // a call failed and a fallback answered instead
	MechanismRetry            = "retry"             // a failed attempt was sent again
	MechanismDeadline         = "deadline"          // an attempt ran out of time (DEADLINE_EXCEEDED)
	MechanismBreakerOpen      = "breaker_open"      // a circuit breaker opened
	MechanismBreakerRejected  = "breaker_rejected"  // a call was failed fast by an open breaker
	MechanismBulkheadRejected = "bulkhead_rejected" // a call was refused by a full bulkhead
	MechanismHedge            = "hedge"             // a second attempt went to another replica
	MechanismHedgeWon         = "hedge_won"         // a hedge answered first
	MechanismDuplicateSkipped = "duplicate_skipped" // a consumer recognised a redelivered event and skipped it
)

// MechanismKinds lists every mechanism kind in report order.
var MechanismKinds = []string{
	MechanismFallback, MechanismRetry, MechanismDeadline, MechanismBreakerOpen, MechanismBreakerRejected,
	MechanismBulkheadRejected, MechanismHedge, MechanismHedgeWon, MechanismDuplicateSkipped,
}

// Mechanism is how often one resilience mechanism acted in one place during
// a variant's run, as the services counted it: why one variant's figures
// differ from another's (a resilient variant is fast during a fault because
// its fallback answered, not by luck).
type Mechanism struct {
	Kind  string `json:"kind"`  // one of MechanismKinds
	Where string `json:"where"` // the link (order.user, order.payment) or the consumer (ledger)
	Count int64  `json:"count"` // how many times, over the whole run; never 0
	// Phases splits Count by phase (before, during, after), where the
	// counters were read at the phase boundaries.
	Phases map[string]int64 `json:"phases"`
}

// ConsumerSeries is one asynchronous consumer seen second by second: the
// events published to it and the events it applied, and how far it was
// behind. It shows whether the asynchronous path inherits a fault.
type ConsumerSeries struct {
	Consumer string           `json:"consumer"` // notification, ledger
	Seconds  []ConsumerSecond `json:"seconds"`  // one entry per second from the run start
}

// ConsumerSecond is one second of a ConsumerSeries.
type ConsumerSecond struct {
	T         int     `json:"t"`          // seconds from the run start
	Published int64   `json:"published"`  // orders.created events published in the second
	Applied   int64   `json:"applied"`    // distinct events the consumer first applied in the second
	LagEvents int64   `json:"lag_events"` // published but not yet applied at the end of the second
	LagMs     float64 `json:"lag_ms"`     // the oldest unapplied event's age at the end of the second; 0 when none
}

// Knob is one setting a variant changes.
type Knob struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Phase is what the load generator saw in one phase.
type Phase struct {
	Requests    int64            `json:"requests"`     // requests sent
	Successes   int64            `json:"successes"`    // requests answered OK
	SuccessRate float64          `json:"success_rate"` // Successes/Requests, a fraction 0–1
	Errors      map[string]int64 `json:"errors"`       // failed requests by gRPC code name
	Dropped     int64            `json:"dropped"`      // requests not sent because the generator was saturated
	Throughput  float64          `json:"throughput"`   // successes per second
	LatencyMs   Latency          `json:"latency_ms"`   // latency from the intended send time
	// OverBeforeP99 and OverBeforeP999 count the phase's requests slower
	// than the before phase's p99 and p999 (to the latency histogram's
	// precision): about 1% and 0.1% of the before phase's own requests,
	// and of any phase's when nothing changed its tail. The fault effect
	// tests a tail over them. Nil in reports of older versions.
	OverBeforeP99  *int64 `json:"over_before_p99,omitempty"`
	OverBeforeP999 *int64 `json:"over_before_p999,omitempty"`
}

// Load is how the open-loop load generator kept its schedule over the
// whole run, every operation together: a generator that falls behind
// shows here, not as a slower system.
type Load struct {
	TargetPerSecond   float64 `json:"target_per_second"`   // the rate the schedule asked of the requests sent
	AchievedPerSecond float64 `json:"achieved_per_second"` // the rate they really left at, over the first-to-last send window
	SendWindowSeconds float64 `json:"send_window_seconds"` // from the first request sent to the last
	Sent              int64   `json:"sent"`                // requests sent
	Dropped           int64   `json:"dropped"`             // arrivals not sent because the generator was saturated
	SendLagMs         Latency `json:"send_lag_ms"`         // how late requests left against their intended send times
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Verdicts of a hypothesis, as in Hypothesis.Verdict.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive" // over several trials, an interval straddles a bound; or not judged (Hypothesis.NotJudged)
	VerdictSkipped      = "skipped"
)

// HypothesisVerdict is the verdict word of a hypothesis that passed,
// was skipped, or was inconclusive, else failed.
func HypothesisVerdict(passed, skipped, inconclusive bool) string {
	switch {
	case skipped:
		return VerdictSkipped
	case inconclusive:
		return VerdictInconclusive
	case passed:
		return VerdictPass
	}
	return VerdictFail
}

// Hypothesis is one checked hypothesis and its outcome.
type Hypothesis struct {
	Name    string `json:"name"`    // optional name from the experiment file; may be empty
	Expr    string `json:"expr"`    // the check as written, e.g. order.latency.p99 < 150ms
	Phase   string `json:"phase"`   // before, during or after
	Variant string `json:"variant"` // the variant it was checked against
	Passed  bool   `json:"passed"`
	Skipped bool   `json:"skipped"`
	// SkipReason says why a skipped hypothesis was skipped, or why an
	// inconclusive one could not be judged at all (NotJudged).
	SkipReason string `json:"skip_reason,omitempty"`
	Observed   string `json:"observed"` // the value seen, formatted, e.g. 312ms or 97.5%
	Abort      bool   `json:"abort"`    // the hypothesis aborts the run when it fails
	// Verdict is pass, fail, inconclusive or skipped: Passed and Skipped
	// say the same for the first two and the last; an inconclusive
	// hypothesis is neither passed nor skipped.
	Verdict string `json:"verdict"`
	// Confidence is the confidence level of the intervals the verdict
	// was decided on (0.95); 0 for one trial, which is judged on its
	// value alone as it always was.
	Confidence float64 `json:"confidence,omitempty"`
	// Intervals are the numeric comparisons of the check, each with the
	// trials' mean and its interval against the bound.
	Intervals []Estimate `json:"intervals"`
	// Trials is the check as judged in each trial on its own.
	Trials []HypothesisTrial `json:"trials"`
}

// NotJudged reports whether h is inconclusive because it could not be
// judged at all (its phase too short after a late fault removal: see
// LateRemoval), not because trials straddle its bound; SkipReason says why.
func (h Hypothesis) NotJudged() bool {
	return h.Verdict == VerdictInconclusive && h.SkipReason != ""
}

// Estimate is one numeric comparison of a hypothesis judged over the
// trials: the mean of the left side and its confidence interval in the
// metric's unit (durations in ms, ratios as fractions), against the bound.
// When the bound is another metric, the values are left − factor·right
// and the bound is the offset (0 without one).
type Estimate struct {
	Comparison string  `json:"comparison"` // as written, e.g. order.latency.p99 < 250ms
	Metric     string  `json:"metric"`
	Unit       string  `json:"unit"`
	Op         string  `json:"op"`
	Bound      float64 `json:"bound"`
	Relative   bool    `json:"relative"` // the bound is another metric
	Mean       float64 `json:"mean"`
	Low        float64 `json:"low"`
	High       float64 `json:"high"`
	N          int     `json:"n"`       // trials
	Verdict    string  `json:"verdict"` // pass, fail or inconclusive
}

// HypothesisTrial is a hypothesis as judged in one trial.
type HypothesisTrial struct {
	Trial    int    `json:"trial"`
	Passed   bool   `json:"passed"`
	Observed string `json:"observed"`
}

// FaultEffect is whether the fault changed the naive variant measurably,
// by the same statistics as the verdicts: each figure during the fault
// against before it (or the naive variant against the others), and the
// test that says whether the change is more than noise.
type FaultEffect struct {
	Variant     string   `json:"variant"`     // the variant examined: naive, else the first
	Significant bool     `json:"significant"` // at least one change is significant
	Alpha       float64  `json:"alpha"`       // the family-wise false-alarm rate, split over the tests (Bonferroni)
	Effects     []Effect `json:"effects"`
	Note        string   `json:"note,omitempty"` // why some figures could not be tested
}

// Effect is one figure compared.
type Effect struct {
	Metric      string  `json:"metric"`  // e.g. order.latency.p50
	Compare     string  `json:"compare"` // "during vs before" or "naive vs resilient"
	Unit        string  `json:"unit"`
	Base        float64 `json:"base"`   // before, or the other variant
	Value       float64 `json:"value"`  // during, or the naive variant
	Change      float64 `json:"change"` // Value − Base
	P           float64 `json:"p"`      // two-sided p-value of no change
	Method      string  `json:"method"` // e.g. "paired t over 3 trials", "rank-sum over seconds (10 before, 10 during; 1 trial(s))", "exceedances over requests: …"
	Significant bool    `json:"significant"`
}

// Fault is one fault as applied during the run.
type Fault struct {
	Name        string           `json:"name"`
	Kind        string           `json:"kind"`      // latency, bandwidth, partition, kill, …
	Target      string           `json:"target"`    // proxy or process name
	Direction   string           `json:"direction"` // upstream, downstream, both; empty for process faults
	Attrs       map[string]int64 `json:"attrs"`     // attributes as Toxiproxy takes them (durations in ms)
	Start       time.Time        `json:"start"`
	End         time.Time        `json:"end"`
	StartOffset float64          `json:"start_offset"` // seconds from the run start
	EndOffset   float64          `json:"end_offset"`   // seconds from the run start
	// Counters are what the fault's injector counted while it was on,
	// by name (a packet fault's packets, dropped, retransmits, …); absent
	// for kinds that count nothing.
	Counters map[string]uint64 `json:"counters,omitempty"`
	// RemovalError is why taking the fault off at its end failed: the
	// fault may have stayed on. The runner then tried again before
	// measuring anything; RolledBack says whether that took it off (End
	// is then that moment, after which the after phase began). A fault
	// not rolled back makes the run a testbed failure (exit code 3).
	RemovalError string `json:"removal_error,omitempty"`
	RolledBack   bool   `json:"rolled_back,omitempty"`
}

// Second is what the load generator saw in one second of the run.
type Second struct {
	T            int      `json:"t"` // seconds from the run start
	Requests     int64    `json:"requests"`
	Successes    int64    `json:"successes"`
	Errors       int64    `json:"errors"`
	Dropped      int64    `json:"dropped"`
	SuccessRate  float64  `json:"success_rate"` // fraction 0–1
	P50Ms        float64  `json:"p50_ms"`
	P99Ms        float64  `json:"p99_ms"`
	InFlight     int64    `json:"in_flight"`     // requests outstanding at the end of the second
	ActiveFaults []string `json:"active_faults"` // names of the faults active during the second
}

// Consistency is the Jepsen-style accounting after the run drained: what
// clients were told against what the services recorded.
type Consistency struct {
	Acknowledged int                            `json:"acknowledged"` // orders the client was told succeeded
	Lost         int                            `json:"lost"`         // acknowledged but never recorded
	Duplicated   int                            `json:"duplicated"`   // recorded more than once
	Ghost        int                            `json:"ghost"`        // recorded though the client was told it failed
	Recovered    int                            `json:"recovered"`    // failed for the client, recorded once, and expected to be
	Unexpected   int                            `json:"unexpected"`   // recorded but never requested
	Consumers    map[string]ConsumerConsistency `json:"consumers"`    // by consumer name: notification, ledger
	Payments     PaymentConsistency             `json:"payments"`
}

// ConsumerConsistency is the accounting of one asynchronous consumer.
type ConsumerConsistency struct {
	Applied    int `json:"applied"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Unexpected int `json:"unexpected"`
}

// PaymentConsistency is the accounting of the payment ledger.
type PaymentConsistency struct {
	Lost       int `json:"lost"`       // acknowledged orders never charged
	Duplicated int `json:"duplicated"` // orders charged more than once
	Ghost      int `json:"ghost"`      // charges for orders the client was told failed
}

// BreakerTransition is one state change of a circuit breaker.
type BreakerTransition struct {
	Link   string    `json:"link"` // the guarded link, e.g. order.user
	From   string    `json:"from"` // closed, open, half-open
	To     string    `json:"to"`
	At     time.Time `json:"at"`
	Offset float64   `json:"offset"` // seconds from the run start
}

// Exemplar is one trace chosen to illustrate a phase: its slowest request or
// a failed one, with its spans laid out as a waterfall.
type Exemplar struct {
	Phase      string          `json:"phase"`
	Kind       string          `json:"kind"` // slowest or failed
	TraceID    string          `json:"trace_id"`
	Root       string          `json:"root"` // name of the root span
	DurationMs float64         `json:"duration_ms"`
	Error      bool            `json:"error"`
	JaegerURL  string          `json:"jaeger_url,omitempty"`
	Spans      []WaterfallSpan `json:"spans"` // depth-first, parents before children
}

// WaterfallSpan is one span of an exemplar trace, positioned relative to the
// start of the trace.
type WaterfallSpan struct {
	Service    string  `json:"service"`
	Name       string  `json:"name"`
	StartMs    float64 `json:"start_ms"` // from the start of the root span
	DurationMs float64 `json:"duration_ms"`
	Depth      int     `json:"depth"` // 0 for the root
	Error      bool    `json:"error"`
	Note       string  `json:"note,omitempty"` // e.g. retry attempt 2, breaker open, fallback
	// Fault names the fault that was on this call's link while the call
	// ran (client spans only); Held is when the call was outside the
	// server span that answered it, the time the fault held its bytes.
	Fault string     `json:"fault,omitempty"`
	Held  []Interval `json:"held,omitempty"`
}

// Interval is a stretch of an exemplar trace, relative to its start.
type Interval struct {
	StartMs    float64 `json:"start_ms"`
	DurationMs float64 `json:"duration_ms"`
}

// Suite is the result of running several experiments one after the other.
type Suite struct {
	Name            string    `json:"name"`
	Reports         []*Report `json:"reports"`
	Passed          bool      `json:"passed"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Error is the testbed failure of an experiment of the suite, which
	// may have left no report in Reports: the suite's verdict is then
	// ERROR, as its exit code 3, whatever the reports say.
	Error string `json:"error,omitempty"`
	// Interrupted is set when a signal stopped the suite before its end:
	// its verdict is INTERRUPTED, as its exit code (130, 143).
	Interrupted *Interruption `json:"interrupted,omitempty"`
	// Unreported are the experiments of the suite that left no report:
	// those an interruption kept from starting, and those whose testbed
	// failed before it could write one. CI sees them as much as the
	// others.
	Unreported []Unreported `json:"unreported,omitempty"`
}

// Unreported is an experiment of a suite that left no report, and why.
type Unreported struct {
	Experiment string `json:"experiment"`
	File       string `json:"file"`
	// Error is the testbed failure that ended it; empty when it never
	// started.
	Error string `json:"error,omitempty"`
}

// Counts tallies the hypotheses of a report. Total, Passed, Failed and
// Skipped count checks: a hypothesis is checked once in every variant it
// applies to, so a file with 6 hypotheses and 2 variants can make 9 checks.
type Counts struct {
	Total, Passed, Failed, Skipped int
	Inconclusive                   int // neither passed nor failed over the trials
	Errors                         int // testbed errors: the report's and its variants'
	Hypotheses                     int // distinct hypotheses of the file that were checked
}

// Count tallies the hypotheses of every variant of r and its testbed errors.
func (r *Report) Count() Counts {
	var c Counts
	if r.Error != "" {
		c.Errors++
	}
	type key struct{ name, expr, phase string }
	distinct := map[key]bool{}
	for _, v := range r.Variants {
		if v.Error != "" {
			c.Errors++
		}
		for _, h := range v.Hypotheses {
			distinct[key{h.Name, h.Expr, h.Phase}] = true
			c.Total++
			switch {
			case h.Skipped:
				c.Skipped++
			case h.Verdict == VerdictInconclusive:
				c.Inconclusive++
			case h.Passed:
				c.Passed++
			default:
				c.Failed++
			}
		}
	}
	c.Hypotheses = len(distinct)
	return c
}

// ExitCodeInconclusive is the exit code of a run whose hypotheses held
// or were inconclusive, none failed (fallacies run --inconclusive maps it).
const ExitCodeInconclusive = 4

// ExitCode is the process exit code the report calls for: 0 when every
// hypothesis held, 1 when one failed, 4 when none failed but one was
// inconclusive over the trials, 3 when the testbed itself failed,
// 130 or 143 when SIGINT or SIGTERM interrupted the run (the
// Interruption's code). (2, an invalid experiment, is decided before any
// report exists.)
func (r *Report) ExitCode() int {
	c := r.Count()
	switch {
	case c.Errors > 0:
		return 3
	case r.Interrupted != nil && r.Interrupted.ExitCode > 0:
		return r.Interrupted.ExitCode
	case c.Failed > 0:
		return 1
	case c.Inconclusive > 0:
		return ExitCodeInconclusive
	case !r.Passed:
		return 1
	default:
		return 0
	}
}

// Verdict is a one-word verdict: PASS, FAIL, INCONCLUSIVE, ERROR or INTERRUPTED.
func (r *Report) Verdict() string {
	switch r.ExitCode() {
	case 0:
		return "PASS"
	case 1:
		return "FAIL"
	case 3:
		return "ERROR"
	case ExitCodeInconclusive:
		return "INCONCLUSIVE"
	default:
		return "INTERRUPTED"
	}
}

// phaseOrder sorts phase names: before, during, after, then others by name.
func phaseOrder[V any](m map[string]V) []string {
	rank := func(p string) int {
		switch p {
		case PhaseBefore:
			return 0
		case PhaseDuring:
			return 1
		case PhaseAfter:
			return 2
		}
		return 3
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return keys
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// finite returns x, or 0 when x is NaN or infinite (JSON cannot carry them).
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
