// Package load is an open-loop load generator: requests leave at a
// constant arrival rate (with optional rate steps), whatever the system
// under test does, so a slow system cannot slow the load down and hide its
// own latency.
//
// The data flow of a run:
//
//	schedule ──intended times──▶ scheduler ──(in flight < MaxInFlight?)──▶ worker goroutine ──▶ Doer.Do
//	                                 │ no: dropped                               │
//	                                 ▼                                           ▼
//	                              recorder ◀──── outcome, latency from the intended time
//
// Latency is measured from the intended send time, not from the moment the
// request actually left, so stalls of the system (and of the generator
// itself) show up in the figures instead of being omitted ("coordinated
// omission"). How late the generator itself sent is measured separately
// (Result.SendLag). When MaxInFlight requests are already in flight an
// arrival is not sent at all and counts as dropped: the generator never
// queues, so it never delays later arrivals.
//
// Everything a run decides (which operation, which user, which amount) is
// drawn from one *rand.Rand seeded by Config.Seed, one draw sequence per
// arrival whether or not the arrival is sent, so the same seed gives the same
// request stream.
package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/codes"
)

// Op is the operation a request performs.
type Op string

// The operations the generator sends.
const (
	OpPlaceOrder Op = "place_order" // OrderService.PlaceOrder
	OpGetOrder   Op = "get_order"   // OrderService.GetOrder
)

// Ops lists the operations in a fixed order.
var Ops = []Op{OpPlaceOrder, OpGetOrder}

// index returns the position of o in Ops (place_order for anything else).
func (o Op) index() int {
	if o == OpGetOrder {
		return 1
	}
	return 0
}

// The phase names a Config.Phase function returns, and the name of the
// phase that aggregates them all.
const (
	PhaseBefore = "before" // steady state, before any fault
	PhaseDuring = "during" // inside any fault window
	PhaseAfter  = "after"  // recovery, after the faults
	PhaseAll    = "all"    // the whole run
)

// Bounds on a Config.
const (
	MaxRate     = 100_000          // arrivals per second
	MaxDuration = time.Hour        // a hard bound on a run
	MaxTimeout  = 60 * time.Second // per request; also the histograms' ceiling
)

// DefaultWatchEvery is how often Config.Watch is called when
// Config.WatchEvery is 0.
const DefaultWatchEvery = 200 * time.Millisecond

// Request is one arrival handed to a Doer.
type Request struct {
	// Seq numbers arrivals from 1 in intended order, dropped ones included.
	Seq int64
	Op  Op
	// OrderID is the order placed (place_order) or read (get_order).
	OrderID     string
	UserID      string
	AmountCents int64
	// Intended is when the request was scheduled to leave.
	Intended time.Time
}

// Outcome is what a Doer reports about one request.
type Outcome struct {
	// Code is codes.OK on success, else the gRPC status code received (or
	// produced by the client when it gave up).
	Code codes.Code
	// Unknown reports that the client gave up (its own deadline or a
	// cancel) before an answer arrived: the server may have completed it.
	Unknown bool
}

// Doer performs requests against the system under test. Do is called from
// many goroutines at once and must be safe for concurrent use; it must
// return soon after ctx ends (Run waits for every Do to return).
type Doer interface {
	Do(ctx context.Context, r Request) Outcome
}

// DoerFunc adapts a function to the Doer interface.
type DoerFunc func(ctx context.Context, r Request) Outcome

// Do calls f(ctx, r).
func (f DoerFunc) Do(ctx context.Context, r Request) Outcome { return f(ctx, r) }

// Step changes the arrival rate from offset At on.
type Step struct {
	At   time.Duration // offset from the start of the run, in [0, Duration)
	Rate float64       // arrivals per second from At on; 0 pauses the load
}

// Mix weighs the operations. The zero Mix sends only place_order.
type Mix struct {
	PlaceOrder float64
	GetOrder   float64
}

// Config describes a run. See Validate for the bounds.
type Config struct {
	// Rate is the arrival rate (per second) from the start of the run.
	Rate float64
	// Steps change the rate at given offsets, in increasing order of At.
	Steps []Step
	// Duration is how long arrivals are scheduled; the run stops by
	// itself then (and earlier when the context ends).
	Duration time.Duration
	// MaxInFlight caps the requests in flight; an arrival finding the cap
	// reached is dropped, not queued.
	MaxInFlight int
	// Timeout bounds each request: the Doer's context expires after it.
	Timeout time.Duration
	// Users is how many users the requests are spread over.
	Users int
	// Mix weighs the operations.
	Mix Mix
	// Seed seeds the run's random source (a PCG).
	Seed int64
	// RunID prefixes order ids, RunID-000042, so that runs never collide.
	RunID string
	// AmountCents is the amount of every order; 0 draws each amount
	// uniformly from 100..9999 cents.
	AmountCents int64
	// UserID names user i in [0, Users); nil gives "u-%04d", the ids the
	// user service seeds.
	UserID func(i int) string
	// Phase classifies an intended offset as PhaseBefore, PhaseDuring or
	// PhaseAfter (any other name makes a phase of its own). It is called
	// from the scheduling goroutine only. Nil puts every request in
	// PhaseAll only.
	Phase func(offset time.Duration) string
	// Progress, when set, is called about once a second from a goroutine
	// of Run's, and once more at the end. It must not block for long.
	Progress func(Snapshot)
	// PhaseEnd, when set, is called from the scheduling goroutine when the
	// schedule leaves a phase, with a copy of that phase's figures so far
	// (requests still in flight are not in it yet). It may cancel the
	// run's context to stop it early.
	PhaseEnd func(phase string, figures *Phase)
	// Watch, when set, is called every WatchEvery from a goroutine of
	// Run's while the schedule runs, with the phase the schedule is in and
	// a copy of that phase's figures so far (completed requests only;
	// Throughput over the phase's wall time so far). It may cancel the
	// run's context to stop it early, and must not block for long.
	Watch func(phase string, figures *Phase)
	// WatchEvery is the period of Watch; 0 means DefaultWatchEvery.
	WatchEvery time.Duration
	// Start is offset 0 of the schedule, so that load and a fault schedule
	// share one origin; zero means when Run is called. A start in the past
	// sends the arrivals already due at once.
	Start time.Time
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !(c.Rate > 0 && c.Rate <= MaxRate) { // also catches NaN
		bad("rate: %v/s, want more than 0 and at most %d/s", c.Rate, MaxRate)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		bad("duration: %v, want more than 0 and at most %v", c.Duration, MaxDuration)
	}
	if c.MaxInFlight < 1 {
		bad("max_in_flight: %d, want at least 1", c.MaxInFlight)
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		bad("timeout: %v, want more than 0 and at most %v", c.Timeout, MaxTimeout)
	}
	if c.Users < 1 {
		bad("users: %d, want at least 1", c.Users)
	}
	if c.Mix.PlaceOrder < 0 || c.Mix.GetOrder < 0 || math.IsNaN(c.Mix.PlaceOrder) || math.IsNaN(c.Mix.GetOrder) ||
		math.IsInf(c.Mix.PlaceOrder, 0) || math.IsInf(c.Mix.GetOrder, 0) {
		bad("mix: place_order %v, get_order %v, want finite weights of at least 0", c.Mix.PlaceOrder, c.Mix.GetOrder)
	}
	if c.RunID == "" {
		bad("run_id: empty, want a prefix that makes order ids unique")
	}
	if c.AmountCents < 0 {
		bad("amount_cents: %d, want at least 0", c.AmountCents)
	}
	prev := time.Duration(-1)
	for i, s := range c.Steps {
		if s.At < 0 || (c.Duration > 0 && s.At >= c.Duration) {
			bad("steps[%d].at: %v, want in [0, duration %v)", i, s.At, c.Duration)
		}
		if s.At <= prev {
			bad("steps[%d].at: %v, want after steps[%d].at %v", i, s.At, i-1, prev)
		}
		if !(s.Rate >= 0 && s.Rate <= MaxRate) {
			bad("steps[%d].rate: %v/s, want at least 0 and at most %d/s", i, s.Rate, MaxRate)
		}
		prev = s.At
	}
	return errors.Join(errs...)
}

// mixShare returns the share of place_order among arrivals.
func (c Config) mixShare() float64 {
	total := c.Mix.PlaceOrder + c.Mix.GetOrder
	if total == 0 {
		return 1
	}
	return c.Mix.PlaceOrder / total
}

// segment is a stretch of the schedule at one rate.
type segment struct {
	start, end time.Duration
	rate       float64
}

// schedule yields intended offsets in increasing order. Offsets are
// computed from the segment start and the arrival's index in the segment,
// never from the clock, so pacing cannot drift.
type schedule struct {
	segs []segment
	seg  int
	k    int64
}

// newSchedule builds the schedule of a valid config.
func newSchedule(c Config) *schedule {
	s := &schedule{}
	start, rate := time.Duration(0), c.Rate
	for _, st := range c.Steps {
		if st.At > start {
			s.segs = append(s.segs, segment{start: start, end: st.At, rate: rate})
		}
		start, rate = st.At, st.Rate
	}
	s.segs = append(s.segs, segment{start: start, end: c.Duration, rate: rate})
	return s
}

// next returns the next intended offset, or false when the schedule is
// exhausted.
func (s *schedule) next() (time.Duration, bool) {
	for s.seg < len(s.segs) {
		g := s.segs[s.seg]
		if g.rate > 0 {
			off := g.start + time.Duration(math.Round(float64(s.k)*float64(time.Second)/g.rate))
			if off < g.end {
				s.k++
				return off, true
			}
		}
		s.seg++
		s.k = 0
	}
	return 0, false
}

// Snapshot is the state of a run for a progress line.
type Snapshot struct {
	Elapsed time.Duration // since the start of the run
	Total   time.Duration // Config.Duration
	Phase   string        // phase of the latest arrival
	// RPS is the number of requests completed per second since the
	// previous snapshot (about the last second).
	RPS float64
	// ErrorRate is the share of those completions that were not OK.
	ErrorRate float64
	InFlight  int
	Sent      int64
	Dropped   int64
}
