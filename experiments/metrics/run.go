package metrics

import (
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/tracing"
)

// Run is what one variant measured, as plain data: the input of every
// family. The runner fills it; a field left empty leaves the metrics
// computed from it without a value.
type Run struct {
	// Start is the load's start: offset 0 of the schedule.
	Start time.Time
	// PhaseAt names the phase an instant falls in: the schedule's
	// phases, the after phase beginning when the last fault really came
	// off (never before its scheduled end), as the load generator
	// classified the requests.
	PhaseAt func(time.Time) string
	// NoAfter is set when the schedule has no after phase (the last
	// fault lasts to the end of the load).
	NoAfter bool
	// Faults are the faults as they really happened (applied to removed).
	Faults []Fault
	// FirstFaultDue is when the schedule's first fault was due; LoadEnd is
	// when the load was due to end. Zero FirstFaultDue: no fault scheduled.
	FirstFaultDue, LoadEnd time.Time

	// Requests are the load generator's figures by phase (Always: the
	// whole run) and operation prefix (order, get_order).
	Requests map[string]map[string]Requests
	// History is every request the load made, by intended send time.
	History []check.Attempt

	// Readings are the services' counters read at each phase's start
	// (Before, During, After) and at the end of the drain (End); a
	// reading that failed is missing.
	Readings map[string]*Counters
	// Breakers are the state changes of the breaker of each of order's
	// links, read after the drain.
	Breakers []Breaker
	// Applied are the events each consumer applied, read after the drain.
	Applied map[string][]Application
	// Consistency is the checker's account of every order after the drain.
	Consistency check.Consistency

	// Traces are the captured traces by phase.
	Traces Traces

	// Sniffed is what the sniffer on each proxy recorded; Secret is the
	// text (a card number) whose presence there means plaintext.
	Sniffed map[string][]byte
	Secret  string
	// Rogue is whether the rogue client's charge succeeded; nil when it
	// was not sent.
	Rogue *bool
}

// End names the counter reading taken after the drain.
const End = "end"

// Fault is a fault as it happened.
type Fault struct {
	Name       string // as the experiment names it
	Target     string // the proxy, service or container
	Start, End time.Time
	// Counters are what the fault's injector counted while it was on
	// (report.json's counters of the fault); nil for kinds that count
	// nothing.
	Counters map[string]uint64
}

// Requests are the figures of one operation in one phase.
type Requests struct {
	Requests, Successes, Dropped int64
	Errors                       map[string]int64 // failed requests by gRPC code name
	Throughput                   float64          // successes per second
	InFlightMax                  int64
	// P50 … Mean are latency figures, timed from the intended send time.
	P50, P90, P99, P999, Max, Mean time.Duration
}

// Counters is one reading of the services' cumulative counters.
type Counters struct {
	Links           map[string]LinkCounters     // order's links by name
	Consumers       map[string]ConsumerCounters // by consumer name
	PaymentAttempts int64                       // Charge calls, every replica
}

// LinkCounters are the counters of one of order's outgoing links.
type LinkCounters struct {
	Calls, Attempts, Retries, Fallbacks, Deadlines   int64
	BreakerOpened, BreakerRejected, BulkheadRejected int64
	HedgesSent, HedgesWon                            int64
}

// ConsumerCounters are the counters of one consumer.
type ConsumerCounters struct {
	Applied, DuplicatesApplied, DuplicatesRecognised, Redeliveries int64
	// Of versioned state (the ledger's accounts): stale events applied and
	// skipped (cumulative), and the keys behind the newest state received
	// (at the time of the reading).
	StaleApplied, StaleSkipped, KeysBehind int64
}

// Breaker is the history of the circuit breaker of one link.
type Breaker struct {
	Link        string
	State       string // after the drain: closed, open, half-open
	Transitions []Transition
}

// Transition is one state change of a breaker.
type Transition struct {
	At time.Time
	To string // open, closed, half-open
}

// Application is one application of an event by a consumer.
type Application struct {
	OrderID            string
	Published, Applied time.Time // Published zero: not known
}

// Traces are the captured traces sorted into phases (Always: all).
type Traces struct {
	Orders    map[string][]tracing.Trace // order traces by the phase their root started in
	Consumers map[string][]tracing.Span  // consumer spans by the phase of their producer's order
}

// faultsEnd is when the last fault was removed; zero without faults.
func (r *Run) faultsEnd() time.Time {
	var end time.Time
	for _, f := range r.Faults {
		end = later(end, f.End)
	}
	return end
}

// lastEnd returns when the last fault on target ended, or zero.
func (r *Run) lastEnd(target string) time.Time {
	var end time.Time
	for _, f := range r.Faults {
		if f.Target == target {
			end = later(end, f.End)
		}
	}
	return end
}

// healed is when the faults on target were over: the end of the last
// fault on it, else of the last fault.
func (r *Run) healed(target string) time.Time {
	if e := r.lastEnd(target); !e.IsZero() {
		return e
	}
	return r.faultsEnd()
}

// eventPhase names the phase in which something the system did at t
// happened: before the first fault went on, until the last one came off,
// after; the faults as they really happened, as the boundary readings of
// the counters. Without faults it is the schedule's phase.
func (r *Run) eventPhase(t time.Time) string {
	if len(r.Faults) == 0 {
		return r.PhaseAt(t)
	}
	first, last := r.Faults[0].Start, r.Faults[0].End
	for _, f := range r.Faults {
		if f.Start.Before(first) {
			first = f.Start
		}
		last = later(last, f.End)
	}
	switch {
	case t.Before(first):
		return Before
	case t.Before(last) || r.NoAfter:
		return During
	}
	return After
}

// counterWindow returns the readings that delimit a phase (Window).
func (r *Run) counterWindow(phase string) (from, to *Counters) { return Window(r.Readings, phase) }

// Window returns the readings at the start and at the end of a phase, or
// nils when one of them is missing. A phase ends where the next phase
// that has a reading begins, else at the end (End); Always runs from the
// Before reading to the End one.
func Window(readings map[string]*Counters, phase string) (from, to *Counters) {
	if phase == Always {
		return readings[Before], readings[End]
	}
	order := []string{Before, During, After, End}
	for i, p := range order[:3] {
		if p != phase {
			continue
		}
		from = readings[p]
		for _, q := range order[i+1:] {
			if rd, ok := readings[q]; ok {
				return from, rd
			}
		}
	}
	return from, nil
}

// Delta is how much a counter grew between two readings. A counter that
// shrank belongs to a service that restarted in between: it counted from
// zero since.
func Delta(from, to int64) int64 {
	if to < from {
		return to
	}
	return to - from
}
