package load

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/experiments/check"
)

// recorder holds a run's bookkeeping. Every method takes the lock once.
//
// Per-second latency histograms are the only ones whose number grows with
// the run, so they live only while their second is open: a second closes
// when the scheduler has moved past it and every request intended in it
// has completed; its quantiles are then read and its histogram reused.
type recorder struct {
	mu        sync.Mutex
	withPhase bool
	phases    map[string]*Phase
	all       *Phase
	seconds   []secondAcc
	closed    int // seconds [0, closed) get no more arrivals
	pool      []*hdrhistogram.Histogram
	history   []check.Attempt

	// For progress snapshots.
	sent, dropped, completed, failed int64
	phase                            string
}

// secondAcc accumulates one second.
type secondAcc struct {
	ops     [2]SecondStats
	hists   [2]*hdrhistogram.Histogram
	pending int // sent and not yet completed
	done    bool
}

// newRecorder returns a recorder for a run of the given duration.
func newRecorder(duration time.Duration, withPhase bool) *recorder {
	n := int((duration + time.Second - 1) / time.Second)
	rec := &recorder{
		withPhase: withPhase,
		phases:    map[string]*Phase{},
		seconds:   make([]secondAcc, n),
	}
	for _, name := range []string{PhaseBefore, PhaseDuring, PhaseAfter, PhaseAll} {
		rec.phases[name] = newPhase()
	}
	rec.all = rec.phases[PhaseAll]
	return rec
}

// phaseLocked returns the phase called name, creating it.
func (rec *recorder) phaseLocked(name string) *Phase {
	p := rec.phases[name]
	if p == nil {
		p = newPhase()
		rec.phases[name] = p
	}
	return p
}

// advanceLocked closes the seconds before sec.
func (rec *recorder) advanceLocked(sec int) {
	sec = min(sec, len(rec.seconds))
	for ; rec.closed < sec; rec.closed++ {
		if rec.seconds[rec.closed].pending == 0 {
			rec.finishLocked(rec.closed)
		}
	}
}

// finishLocked reads second s's quantiles and recycles its histograms.
func (rec *recorder) finishLocked(s int) {
	acc := &rec.seconds[s]
	if acc.done {
		return
	}
	acc.done = true
	for i, h := range acc.hists {
		if h == nil {
			continue
		}
		acc.ops[i].P50 = quantile(h, 50)
		acc.ops[i].P99 = quantile(h, 99)
		h.Reset()
		rec.pool = append(rec.pool, h)
		acc.hists[i] = nil
	}
}

// drop records an arrival not sent.
func (rec *recorder) drop(phase string, op Op, sec int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.advanceLocked(sec)
	rec.dropped++
	rec.phase = phase
	i := op.index()
	rec.all.Ops[op].Dropped++
	rec.all.Total.Dropped++
	if rec.withPhase {
		p := rec.phaseLocked(phase)
		p.Ops[op].Dropped++
		p.Total.Dropped++
	}
	if sec < len(rec.seconds) {
		rec.seconds[sec].ops[i].Dropped++
	}
}

// send records an arrival sent, with the in-flight counts including it.
func (rec *recorder) send(phase string, op Op, sec int, inFlightOp int64) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.advanceLocked(sec)
	rec.sent++
	rec.phase = phase
	if sec < len(rec.seconds) {
		acc := &rec.seconds[sec]
		acc.pending++
		acc.ops[op.index()].InFlight = max(acc.ops[op.index()].InFlight, inFlightOp)
	}
}

// completion is a request's record once it has completed.
type completion struct {
	req        Request
	phase      string
	sec        int
	out        Outcome
	latency    time.Duration
	inFlight   int64 // all operations, at send
	inFlightOp int64 // this operation, at send
}

// done records a completed request.
func (rec *recorder) done(c completion) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	op := c.req.Op
	rec.completed++
	if c.out.Code != codes.OK {
		rec.failed++
	}
	rec.all.Ops[op].add(c.out, c.latency, c.inFlightOp)
	rec.all.Total.add(c.out, c.latency, c.inFlight)
	if rec.withPhase {
		p := rec.phaseLocked(c.phase)
		p.Ops[op].add(c.out, c.latency, c.inFlightOp)
		p.Total.add(c.out, c.latency, c.inFlight)
	}
	if c.sec < len(rec.seconds) {
		acc := &rec.seconds[c.sec]
		i := op.index()
		st := &acc.ops[i]
		st.Requests++
		if c.out.Code == codes.OK {
			st.Successes++
		} else {
			st.Errors++
		}
		if acc.hists[i] == nil {
			if n := len(rec.pool); n > 0 {
				acc.hists[i] = rec.pool[n-1]
				rec.pool = rec.pool[:n-1]
			} else {
				acc.hists[i] = newHist()
			}
		}
		recordDuration(acc.hists[i], c.latency)
		acc.pending--
		if acc.pending == 0 && c.sec < rec.closed {
			rec.finishLocked(c.sec)
		}
	}
	if op == OpPlaceOrder {
		a := check.Attempt{
			OrderID:  c.req.OrderID,
			Code:     CodeName(c.out.Code),
			Intended: c.req.Intended,
			Latency:  c.latency,
		}
		switch {
		case c.out.Code == codes.OK:
			a.Outcome = check.OutcomeAcknowledged
		case c.out.Unknown:
			a.Outcome = check.OutcomeUnknown
		default:
			a.Outcome = check.OutcomeFailed
		}
		rec.history = append(rec.history, a)
	}
}

// progress returns the counters for a snapshot.
func (rec *recorder) progress() (sent, dropped, completed, failed int64, phase string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.sent, rec.dropped, rec.completed, rec.failed, rec.phase
}

// snapshotPhase copies the figures recorded so far for a phase.
func (rec *recorder) snapshotPhase(name string, wall time.Duration) *Phase {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := newPhase()
	out.Wall = wall
	p := rec.phases[name]
	if p == nil {
		return out
	}
	copyStats := func(dst, src *Stats) {
		dst.Requests, dst.Successes, dst.Dropped, dst.Unknown = src.Requests, src.Successes, src.Dropped, src.Unknown
		dst.InFlightMax = src.InFlightMax
		for k, v := range src.Errors {
			dst.Errors[k] = v
		}
		dst.Latency.Merge(src.Latency)
		if wall > 0 {
			dst.Throughput = float64(src.Successes) / wall.Seconds()
		}
	}
	for op, st := range p.Ops {
		if out.Ops[op] == nil {
			out.Ops[op] = newStats()
		}
		copyStats(out.Ops[op], st)
	}
	copyStats(out.Total, p.Total)
	return out
}
