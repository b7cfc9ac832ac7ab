package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/crash"
)

// Run drives d with cfg's arrival schedule until cfg.Duration has passed
// or ctx ends, waits for the requests in flight to finish (each is bounded
// by cfg.Timeout), and returns what it measured. It blocks for the whole
// run. An invalid cfg is an error and nothing is sent. When ctx ends
// first, Run returns the partial result together with an error wrapping
// ctx's error; requests in flight then see their context canceled.
func Run(ctx context.Context, cfg Config, d Doer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid load: %w", err)
	}
	if d == nil {
		return nil, fmt.Errorf("run load %s: nil Doer", cfg.RunID)
	}
	r := &runner{
		cfg:     cfg,
		d:       d,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0x10ad)),
		share:   cfg.mixShare(),
		rec:     newRecorder(cfg.Duration, cfg.Phase != nil),
		sendLag: newHist(),
		userID:  cfg.UserID,
	}
	if r.userID == nil {
		r.userID = func(i int) string { return fmt.Sprintf("u-%04d", i) }
	}
	// A panic of a worker (in the Doer) stops the run and is its error.
	ctx, r.crashed = context.WithCancelCause(ctx)
	defer r.crashed(nil)
	res := r.run(ctx)
	if res.Canceled {
		return res, fmt.Errorf("run load %s: %w", cfg.RunID, context.Cause(ctx))
	}
	return res, nil
}

// runner is the state of one run. The atomics are shared with the worker
// goroutines; rng, share, lastPlaced, sendLag and wall belong to the
// scheduling goroutine.
type runner struct {
	cfg     Config
	d       Doer
	rec     *recorder
	userID  func(int) string
	start   time.Time
	workers sync.WaitGroup
	crashed context.CancelCauseFunc // cancels the run with a worker's panic

	inFlight   atomic.Int64
	inFlightOp [2]atomic.Int64
	lastAcked  atomic.Int64 // highest seq of an acknowledged place_order

	// cur is the phase the schedule is in, for Watch: its name, the wall
	// time of its earlier stretches, and when its current stretch began.
	cur struct {
		sync.Mutex
		phase string
		wall  time.Duration
		since time.Time
	}

	rng        *rand.Rand
	share      float64 // of place_order
	lastPlaced int64   // seq of the last place_order sent
	sendLag    *hdrhistogram.Histogram
	wall       map[string]time.Duration
	// The first and the last request sent: when each really left and
	// when it was meant to.
	firstSent, lastSent         time.Time
	firstIntended, lastIntended time.Time
}

// run schedules arrivals and returns the result.
func (r *runner) run(ctx context.Context) *Result {
	r.start = r.cfg.Start
	if r.start.IsZero() {
		r.start = time.Now()
	}
	r.wall = map[string]time.Duration{}
	stopProgress := r.startProgress()
	stopWatch := r.startWatch()

	sched := newSchedule(r.cfg)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// wait sleeps until offset off; false when ctx ended first.
	wait := func(off time.Duration) bool {
		if d := time.Until(r.start.Add(off)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return false
			case <-timer.C:
				return true
			}
		}
		return ctx.Err() == nil
	}

	canceled := false
	prevOff, curPhase := time.Duration(0), r.phaseOf(0)
	r.enterPhase(curPhase, 0, r.start)
	var seq int64
	for {
		off, ok := sched.next()
		if !ok {
			break
		}
		// Several arrivals may be due at once (timers tick at about 1 ms):
		// wait returns at once for those already due and they all leave
		// now; intended times come from the schedule, never from the clock.
		if !wait(off) {
			canceled = true
			break
		}
		seq++
		phase := r.phaseOf(off)
		r.wall[curPhase] += off - prevOff
		if phase != curPhase {
			r.enterPhase(phase, r.wall[phase], r.start.Add(off))
			if r.cfg.PhaseEnd != nil {
				r.cfg.PhaseEnd(curPhase, r.rec.snapshotPhase(curPhase, r.wall[curPhase]))
			}
		}
		prevOff, curPhase = off, phase
		r.dispatch(ctx, seq, off, phase)
	}
	end := r.cfg.Duration
	if !canceled && !wait(end) {
		canceled = true
	}
	if canceled {
		end = min(max(time.Since(r.start), prevOff), r.cfg.Duration)
	}
	r.wall[curPhase] += end - prevOff

	r.rec.mu.Lock()
	r.rec.advanceLocked(len(r.rec.seconds))
	r.rec.mu.Unlock()
	stopWatch()
	r.workers.Wait()
	stopProgress()
	return r.result(end, canceled)
}

// phaseOf classifies an intended offset ("" without Config.Phase).
func (r *runner) phaseOf(off time.Duration) string {
	if r.cfg.Phase == nil {
		return ""
	}
	return r.cfg.Phase(off)
}

// orderID returns the order id of arrival seq.
func (r *runner) orderID(seq int64) string {
	s := strconv.FormatInt(seq, 10)
	if len(s) < 6 {
		s = "000000"[len(s):] + s
	}
	return r.cfg.RunID + "-" + s
}

// dispatch draws arrival seq's request and sends it, or drops it when
// MaxInFlight requests are in flight.
func (r *runner) dispatch(ctx context.Context, seq int64, off time.Duration, phase string) {
	// The draws happen for every arrival, sent or dropped, so that the
	// request stream depends on the seed only.
	op := OpPlaceOrder
	if r.rng.Float64() >= r.share {
		op = OpGetOrder
	}
	user := r.rng.IntN(r.cfg.Users)
	amount := r.cfg.AmountCents
	if draw := 100 + r.rng.Int64N(9900); amount == 0 {
		amount = draw
	}
	sec := int(off / time.Second)
	if r.inFlight.Load() >= int64(r.cfg.MaxInFlight) {
		r.rec.drop(phase, op, sec)
		return
	}

	req := Request{
		Seq:         seq,
		Op:          op,
		UserID:      r.userID(user),
		AmountCents: amount,
		Intended:    r.start.Add(off),
	}
	switch {
	case op == OpPlaceOrder:
		req.OrderID = r.orderID(seq)
		r.lastPlaced = seq
	case r.lastAcked.Load() > 0:
		req.OrderID = r.orderID(r.lastAcked.Load())
	default:
		// Nothing acknowledged yet: the last order attempted, or an id
		// that does not exist (NOT_FOUND) before any.
		req.OrderID = r.orderID(r.lastPlaced)
	}
	now := time.Now()
	recordDuration(r.sendLag, now.Sub(req.Intended))
	if r.firstSent.IsZero() {
		r.firstSent, r.firstIntended = now, req.Intended
	}
	r.lastSent, r.lastIntended = now, req.Intended
	n := r.inFlight.Add(1)
	nOp := r.inFlightOp[op.index()].Add(1)
	r.rec.send(phase, op, sec, nOp)

	r.workers.Add(1)
	go func() {
		defer r.workers.Done()
		defer func() {
			if p := recover(); p != nil {
				r.inFlightOp[op.index()].Add(-1)
				r.inFlight.Add(-1)
				r.crashed(crash.New(p))
			}
		}()
		rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		out := r.d.Do(rctx, req)
		cancel()
		lat := time.Since(req.Intended)
		if out.Code == codes.OK && op == OpPlaceOrder {
			for {
				cur := r.lastAcked.Load()
				if seq <= cur || r.lastAcked.CompareAndSwap(cur, seq) {
					break
				}
			}
		}
		r.rec.done(completion{req: req, phase: phase, sec: sec, out: out, latency: lat, inFlight: n, inFlightOp: nOp})
		r.inFlightOp[op.index()].Add(-1)
		r.inFlight.Add(-1)
	}()
}

// startProgress starts the progress goroutine, if any, and returns the
// function that stops it and sends the final snapshot.
func (r *runner) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	var last struct {
		at                time.Time
		completed, failed int64
	}
	last.at = r.start
	snap := func(now time.Time) Snapshot {
		sent, dropped, completed, failed, phase := r.rec.progress()
		s := Snapshot{
			Elapsed:  now.Sub(r.start),
			Total:    r.cfg.Duration,
			Phase:    phase,
			InFlight: int(r.inFlight.Load()),
			Sent:     sent,
			Dropped:  dropped,
		}
		if dc := completed - last.completed; dc > 0 {
			if dt := now.Sub(last.at); dt > 0 {
				s.RPS = float64(dc) / dt.Seconds()
			}
			s.ErrorRate = float64(failed-last.failed) / float64(dc)
		}
		last.at, last.completed, last.failed = now, completed, failed
		return s
	}
	stopTicks := r.every(time.Second, func(now time.Time) { r.cfg.Progress(snap(now)) })
	return func() {
		stopTicks()
		r.cfg.Progress(snap(time.Now()))
	}
}

// every calls fn on a goroutine of its own at each tick of interval,
// recovering a panic into the run, and returns the function that stops
// it and waits until it has.
func (r *runner) every(interval time.Duration, fn func(now time.Time)) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer r.recoverInto()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				fn(now)
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// recoverInto, deferred in a goroutine of Run's, stops the run with the
// goroutine's panic as its error.
func (r *runner) recoverInto() {
	if p := recover(); p != nil {
		r.crashed(crash.New(p))
	}
}

// enterPhase records that the schedule entered phase at time at, after
// wall in it earlier.
func (r *runner) enterPhase(phase string, wall time.Duration, at time.Time) {
	r.cur.Lock()
	defer r.cur.Unlock()
	r.cur.phase, r.cur.wall, r.cur.since = phase, wall, at
}

// startWatch starts the goroutine calling Config.Watch, if any, and
// returns the function that stops it.
func (r *runner) startWatch() (stop func()) {
	if r.cfg.Watch == nil {
		return func() {}
	}
	every := r.cfg.WatchEvery
	if every <= 0 {
		every = DefaultWatchEvery
	}
	return r.every(every, func(now time.Time) {
		r.cur.Lock()
		phase, wall := r.cur.phase, r.cur.wall
		if now.After(r.cur.since) {
			wall += now.Sub(r.cur.since)
		}
		r.cur.Unlock()
		r.cfg.Watch(phase, r.rec.snapshotPhase(phase, wall))
	})
}

// result assembles the Result once every request has completed.
func (r *runner) result(end time.Duration, canceled bool) *Result {
	rec := r.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	res := &Result{
		RunID:     r.cfg.RunID,
		Seed:      r.cfg.Seed,
		Start:     r.start,
		Duration:  end,
		Elapsed:   time.Since(r.start),
		Canceled:  canceled,
		Sent:      rec.sent,
		Dropped:   rec.dropped,
		Scheduled: rec.sent + rec.dropped,
		SendLag:   summarize(r.sendLag),
		Phases:    rec.phases,
		History:   slices.Clone(rec.history),
	}
	// The rates are the sends after the first over the time they took: a
	// generator that falls behind its schedule stretches the real window
	// and its achieved rate falls below the target, whatever the count.
	if n := rec.sent; n >= 2 {
		res.SendWindow = r.lastSent.Sub(r.firstSent)
		if res.SendWindow > 0 {
			res.Achieved = float64(n-1) * float64(time.Second) / float64(res.SendWindow)
		}
		if w := r.lastIntended.Sub(r.firstIntended); w > 0 {
			res.Target = float64(n-1) * float64(time.Second) / float64(w)
		}
	}
	var total time.Duration
	for name, w := range r.wall {
		total += w
		if name != "" {
			rec.phaseLocked(name).Wall += w
		}
	}
	rec.all.Wall = total
	for _, p := range rec.phases {
		for _, s := range append([]*Stats{p.Total}, mapsValues(p.Ops)...) {
			if p.Wall > 0 {
				s.Throughput = float64(s.Successes) / p.Wall.Seconds()
			}
		}
	}
	slices.SortStableFunc(res.History, func(a, b check.Attempt) int { return a.Intended.Compare(b.Intended) })

	res.Seconds = make([]Second, len(rec.seconds))
	for i := range rec.seconds {
		rec.finishLocked(i) // all completed: every second is final
		acc := &rec.seconds[i]
		res.Seconds[i] = Second{
			Offset:     i,
			Phase:      r.phaseOf(time.Duration(i) * time.Second),
			PlaceOrder: acc.ops[OpPlaceOrder.index()],
			GetOrder:   acc.ops[OpGetOrder.index()],
		}
	}
	if canceled {
		// Seconds never reached have nothing in them; keep those the run
		// covered.
		res.Seconds = res.Seconds[:min(len(res.Seconds), int((end+time.Second-1)/time.Second))]
	}
	return res
}

// mapsValues returns the values of m in Ops order.
func mapsValues(m map[Op]*Stats) []*Stats {
	out := make([]*Stats, 0, len(m))
	for _, op := range Ops {
		if s := m[op]; s != nil {
			out = append(out, s)
		}
	}
	return out
}
