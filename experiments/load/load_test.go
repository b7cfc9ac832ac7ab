package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/experiments/check"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// config returns a valid config: 100/s for 10 s.
func config() Config {
	return Config{
		Rate:        100,
		Duration:    10 * time.Second,
		MaxInFlight: 100,
		Timeout:     time.Second,
		Users:       10,
		Seed:        1,
		RunID:       "run",
	}
}

// sleep waits d or until ctx ends, and reports the outcome a real client
// would see.
func sleep(ctx context.Context, d time.Duration) Outcome {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return Outcome{Code: codes.OK}
	case <-ctx.Done():
		return Outcome{Code: status.FromContextError(ctx.Err()).Code(), Unknown: true}
	}
}

// sleeper is a Doer that takes d per request.
func sleeper(d time.Duration) Doer {
	return DoerFunc(func(ctx context.Context, _ Request) Outcome { return sleep(ctx, d) })
}

// run runs cfg with d and fails the test on error.
func run(t *testing.T, cfg Config, d Doer) *Result {
	t.Helper()
	res, err := Run(t.Context(), cfg, d)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// near reports whether a histogram reading got is want to 3 significant
// digits (the histograms' precision).
func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)/1000+float64(time.Microsecond)
}

func TestRunSendsExactlyTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		res := run(t, config(), sleeper(5*time.Millisecond))
		if took := time.Since(start); took != 10*time.Second {
			t.Errorf("run took %v of fake time, want exactly 10s", took)
		}
		if res.Sent != 1000 || res.Dropped != 0 || res.Scheduled != 1000 {
			t.Errorf("sent %d dropped %d scheduled %d, want 1000 0 1000", res.Sent, res.Dropped, res.Scheduled)
		}
		if res.Achieved != 100 || res.Target != 100 || res.SendWindow != 9990*time.Millisecond || res.Duration != 10*time.Second || res.Canceled {
			t.Errorf("achieved %v/s of %v/s in a send window of %v over %v (canceled %v), want 100/s of 100/s in 9.99s over 10s",
				res.Achieved, res.Target, res.SendWindow, res.Duration, res.Canceled)
		}
		all := res.Stats(PhaseAll, OpPlaceOrder)
		if all.Requests != 1000 || all.Successes != 1000 || all.ErrorCount() != 0 || all.SuccessRate() != 1 {
			t.Errorf("place_order stats %+v", all)
		}
		if !near(all.P50(), 5*time.Millisecond) || !near(all.Max(), 5*time.Millisecond) || !near(all.P999(), 5*time.Millisecond) {
			t.Errorf("latency p50 %v max %v, want 5ms", all.P50(), all.Max())
		}
		if all.Throughput != 100 {
			t.Errorf("throughput %v, want 100/s", all.Throughput)
		}
		// Every request sleeps 5 ms and one leaves every 10 ms.
		if all.InFlightMax != 1 {
			t.Errorf("in flight max %d, want 1", all.InFlightMax)
		}
		if res.SendLag.Max != 0 || res.SendLag.Count != 1000 {
			t.Errorf("send lag %+v, want 1000 sends all on time", res.SendLag)
		}
		if len(res.Seconds) != 10 {
			t.Fatalf("%d seconds, want 10", len(res.Seconds))
		}
		for _, s := range res.Seconds {
			p := s.PlaceOrder
			if p.Requests != 100 || p.Successes != 100 || !near(p.P50, 5*time.Millisecond) || !near(p.P99, 5*time.Millisecond) || p.InFlight != 1 {
				t.Errorf("second %d: %+v", s.Offset, p)
			}
			if s.GetOrder != (SecondStats{}) {
				t.Errorf("second %d: get_order %+v, want nothing", s.Offset, s.GetOrder)
			}
		}
		if len(res.History) != 1000 {
			t.Fatalf("history of %d, want 1000", len(res.History))
		}
		for i, a := range res.History {
			want := fmt.Sprintf("run-%06d", i+1)
			if a.OrderID != want || a.Outcome != check.OutcomeAcknowledged || a.Code != "OK" ||
				!a.Intended.Equal(start.Add(time.Duration(i)*10*time.Millisecond)) || a.Latency != 5*time.Millisecond {
				t.Fatalf("history[%d] = %+v, want %s acknowledged at +%v after 5ms", i, a, want, time.Duration(i)*10*time.Millisecond)
			}
		}
	})
}

func TestRunStepsChangeTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Steps = []Step{{At: 3 * time.Second, Rate: 200}, {At: 6 * time.Second, Rate: 0}, {At: 7 * time.Second, Rate: 50}}
		res := run(t, cfg, sleeper(time.Millisecond))
		want := []int64{100, 100, 100, 200, 200, 200, 0, 50, 50, 50}
		var got []int64
		for _, s := range res.Seconds {
			got = append(got, s.PlaceOrder.Requests)
		}
		if !slices.Equal(got, want) {
			t.Errorf("requests per second %v, want %v", got, want)
		}
		// The last arrival is due at 7 s + 149 × 20 ms: 1,049 sends after
		// the first in 9.98 s, on time.
		if want := 1049 / 9.98; res.Sent != 1050 || res.Achieved != res.Target || math.Abs(res.Target-want) > 1e-9 {
			t.Errorf("sent %d achieved %v/s of %v/s, want 1050 at %v/s", res.Sent, res.Achieved, res.Target, want)
		}
	})
}

// TestRunThatFallsBehindSaysSo makes the scheduling goroutine take 11 ms
// per arrival of a 100/s schedule (the user-id function runs on it): every
// request is still sent, so a rate of count ÷ duration would read 100/s;
// the achieved rate and the send lag must show the generator fell behind.
func TestRunThatFallsBehindSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.UserID = func(i int) string {
			time.Sleep(11 * time.Millisecond) // fake time: the generator is busy
			return fmt.Sprintf("u-%d", i)
		}
		res := run(t, cfg, sleeper(time.Millisecond))
		if res.Sent != 1000 || res.Target != 100 {
			t.Fatalf("sent %d at a target of %v/s, want all 1000 at 100/s", res.Sent, res.Target)
		}
		// 999 sends after the first, 11 ms apart.
		if want := 999 / (999 * 0.011); math.Abs(res.Achieved-want) > 1e-6 {
			t.Errorf("achieved %v/s, want %v/s: one send every 11 ms", res.Achieved, want)
		}
		// The last request was due at 9.99 s and left at 999 × 11 ms + 11 ms.
		if !near(res.SendLag.Max, 11*time.Second-9990*time.Millisecond) {
			t.Errorf("send lag max %v, want %v", res.SendLag.Max, 11*time.Second-9990*time.Millisecond)
		}
	})
}

func TestRunDropsAtMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One arrival every 10 ms, each taking 25 ms, two at most in
		// flight: sends at 0 and 10 ms, the one at 20 ms finds both
		// busy, and so on: every third arrival is dropped.
		cfg := config()
		cfg.Duration = time.Second
		cfg.MaxInFlight = 2
		res := run(t, cfg, sleeper(25*time.Millisecond))
		if res.Sent != 67 || res.Dropped != 33 {
			t.Errorf("sent %d dropped %d, want 67 and 33", res.Sent, res.Dropped)
		}
		st := res.Stats(PhaseAll, OpPlaceOrder)
		if st.Dropped != 33 || st.Requests != 67 || st.InFlightMax != 2 {
			t.Errorf("stats: dropped %d requests %d in flight max %d", st.Dropped, st.Requests, st.InFlightMax)
		}
		if s := res.Seconds[0].PlaceOrder; s.Dropped != 33 || s.Requests != 67 || s.InFlight != 2 {
			t.Errorf("second 0: %+v", s)
		}
		if !near(st.P50(), 25*time.Millisecond) || !near(st.Max(), 25*time.Millisecond) {
			t.Errorf("latency p50 %v max %v, want 25ms: drops must not delay", st.P50(), st.Max())
		}
		if len(res.History) != 67 {
			t.Errorf("history of %d, want only the 67 sent", len(res.History))
		}
	})
}

func TestRunDropsInsteadOfDelaying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Rate = 10
		cfg.Duration = 3 * time.Second
		cfg.MaxInFlight = 1
		cfg.Timeout = 2 * time.Second
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			if r.Seq == 1 {
				return sleep(ctx, 1050*time.Millisecond)
			}
			return sleep(ctx, 5*time.Millisecond)
		})
		res := run(t, cfg, d)
		// Arrivals at 0.1 s … 1.0 s find the first request in flight.
		if res.Sent != 20 || res.Dropped != 10 {
			t.Errorf("sent %d dropped %d, want 20 and 10", res.Sent, res.Dropped)
		}
		st := res.Stats(PhaseAll, OpPlaceOrder)
		if !near(st.Max(), 1050*time.Millisecond) || !near(st.P50(), 5*time.Millisecond) {
			t.Errorf("latency max %v p50 %v, want 1.05s and 5ms", st.Max(), st.P50())
		}
		var ids []string
		for _, a := range res.History {
			ids = append(ids, a.OrderID)
			if a.OrderID == "run-000012" && a.Latency != 5*time.Millisecond {
				t.Errorf("first request after the stall took %v from its intended time, want 5ms", a.Latency)
			}
		}
		if ids[0] != "run-000001" || ids[1] != "run-000012" || len(ids) != 20 {
			t.Errorf("history ids %v, want run-000001 then run-000012 … (2-11 dropped)", ids)
		}
		if s := res.Seconds[0].PlaceOrder; s.Dropped != 9 || s.Requests != 1 {
			t.Errorf("second 0: %+v, want 1 request and 9 dropped", s)
		}
		if s := res.Seconds[1].PlaceOrder; s.Dropped != 1 || s.Requests != 9 {
			t.Errorf("second 1: %+v, want 9 requests and 1 dropped", s)
		}
	})
}

// TestLatencyFromIntendedTime runs a system that serves one request at a
// time, 20 ms each, under 100 arrivals per second: a queue builds up, and
// latency timed from the intended send time shows it, while the service
// time stays 20 ms.
func TestLatencyFromIntendedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Duration = time.Second
		cfg.MaxInFlight = 1000
		cfg.Timeout = 10 * time.Second
		token := make(chan struct{}, 1) // blocked senders queue in FIFO order
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			token <- struct{}{}
			defer func() { <-token }()
			return sleep(ctx, 20*time.Millisecond)
		})
		start := time.Now()
		res := run(t, cfg, d)
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("run took %v, want 2s: it must wait for the queue to drain", took)
		}
		// Request i is intended at 10i ms and answered at 20(i+1) ms.
		st := res.Stats(PhaseAll, OpPlaceOrder)
		if !near(st.Max(), 1010*time.Millisecond) || !near(st.P50(), 510*time.Millisecond) || !near(st.Mean(), 515*time.Millisecond) {
			t.Errorf("latency max %v p50 %v mean %v, want 1.01s, 510ms, 515ms", st.Max(), st.P50(), st.Mean())
		}
		if st.InFlightMax != 51 {
			t.Errorf("in flight max %d, want 51", st.InFlightMax)
		}
		for i, a := range res.History {
			if want := time.Duration(20+10*i) * time.Millisecond; a.Latency != want {
				t.Fatalf("history[%d] latency %v, want %v", i, a.Latency, want)
			}
		}
	})
}

func TestRunPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Phase = func(off time.Duration) string {
			switch {
			case off < 3*time.Second:
				return PhaseBefore
			case off < 6*time.Second:
				return PhaseDuring
			}
			return PhaseAfter
		}
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			if r.Seq > 300 && r.Seq <= 600 {
				return Outcome{Code: codes.Unavailable}
			}
			return sleep(ctx, time.Millisecond)
		})
		res := run(t, cfg, d)
		tests := []struct {
			phase                  string
			requests, successes    int64
			unavailable            int64
			wall                   time.Duration
			throughput, errorRatio float64
		}{
			{PhaseBefore, 300, 300, 0, 3 * time.Second, 100, 0},
			{PhaseDuring, 300, 0, 300, 3 * time.Second, 0, 1},
			{PhaseAfter, 400, 400, 0, 4 * time.Second, 100, 0},
			{PhaseAll, 1000, 700, 300, 10 * time.Second, 70, 0.3},
		}
		for _, tt := range tests {
			p := res.Phases[tt.phase]
			st := res.Stats(tt.phase, OpPlaceOrder)
			if p.Wall != tt.wall || st.Requests != tt.requests || st.Successes != tt.successes ||
				st.Errors["UNAVAILABLE"] != tt.unavailable || math.Abs(st.Throughput-tt.throughput) > 1e-9 ||
				math.Abs(st.ErrorRate()-tt.errorRatio) > 1e-9 {
				t.Errorf("%s: wall %v stats %+v, want %+v", tt.phase, p.Wall, st, tt)
			}
			if tot := res.Stats(tt.phase, ""); tot.Requests != tt.requests {
				t.Errorf("%s: total requests %d, want %d", tt.phase, tot.Requests, tt.requests)
			}
		}
		if names := res.PhaseNames(); !slices.Equal(names, []string{"after", "all", "before", "during"}) {
			t.Errorf("phases %v", names)
		}
		var phases []string
		for _, s := range res.Seconds {
			phases = append(phases, s.Phase)
		}
		want := []string{"before", "before", "before", "during", "during", "during", "after", "after", "after", "after"}
		if !slices.Equal(phases, want) {
			t.Errorf("second phases %v, want %v", phases, want)
		}
		if s := res.Seconds[4].PlaceOrder; s.Errors != 100 || s.Successes != 0 {
			t.Errorf("second 4: %+v, want 100 errors", s)
		}
	})
}

func TestRunWithoutPhaseFillsOnlyAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Duration = time.Second
		res := run(t, cfg, sleeper(time.Millisecond))
		if got := res.Stats(PhaseAll, OpPlaceOrder).Requests; got != 100 {
			t.Errorf("all: %d requests, want 100", got)
		}
		for _, p := range []string{PhaseBefore, PhaseDuring, PhaseAfter} {
			if got := res.Stats(p, OpPlaceOrder).Requests; got != 0 || res.Phases[p] == nil {
				t.Errorf("%s: %d requests (present %v), want an empty phase", p, got, res.Phases[p] != nil)
			}
		}
		if res.Stats("nope", OpGetOrder) == nil {
			t.Error("Stats of an unknown phase is nil")
		}
	})
}

func TestRunOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Duration = time.Second
		cfg.Timeout = 50 * time.Millisecond
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			switch r.Seq % 3 {
			case 0: // hangs until the client gives up
				return sleep(ctx, time.Hour)
			case 1:
				return Outcome{Code: codes.Unavailable}
			}
			return Outcome{Code: codes.OK}
		})
		res := run(t, cfg, d)
		st := res.Stats(PhaseAll, OpPlaceOrder)
		if st.Requests != 100 || st.Successes != 33 || st.Unknown != 33 ||
			st.Errors["DEADLINE_EXCEEDED"] != 33 || st.Errors["UNAVAILABLE"] != 34 || len(st.Errors) != 2 {
			t.Errorf("stats %+v", st)
		}
		if !near(st.Max(), 50*time.Millisecond) {
			t.Errorf("max latency %v, want the 50ms timeout", st.Max())
		}
		counts := map[check.Outcome]int{}
		charges := map[string]int{}
		for _, a := range res.History {
			counts[a.Outcome]++
			var seq int
			fmt.Sscanf(strings.TrimPrefix(a.OrderID, "run-"), "%d", &seq)
			wantOutcome, wantCode := check.OutcomeAcknowledged, "OK"
			switch seq % 3 {
			case 0:
				wantOutcome, wantCode = check.OutcomeUnknown, "DEADLINE_EXCEEDED"
			case 1:
				wantOutcome, wantCode = check.OutcomeFailed, "UNAVAILABLE"
			}
			if a.Outcome != wantOutcome || a.Code != wantCode {
				t.Errorf("%s: %v %s, want %v %s", a.OrderID, a.Outcome, a.Code, wantOutcome, wantCode)
			}
			if a.Outcome != check.OutcomeFailed {
				charges[a.OrderID] = 1
			}
		}
		// The history goes straight into the consistency checker.
		c := check.CheckConsistency(res.History, check.Observed{Charges: charges})
		if c.Acknowledged != 33 || c.Recovered != 33 || c.Lost != 0 || c.Ghost != 0 {
			t.Errorf("consistency %+v", c)
		}
	})
}

// recording is a Doer that answers OK at once and remembers the requests.
type recording struct {
	mu   sync.Mutex
	reqs []Request
}

func (d *recording) Do(_ context.Context, r Request) Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqs = append(d.reqs, r)
	return Outcome{Code: codes.OK}
}

// sorted returns the requests by Seq.
func (d *recording) sorted() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.reqs)
	slices.SortFunc(out, func(a, b Request) int { return int(a.Seq - b.Seq) })
	return out
}

func TestRunMixUsersAndSeed(t *testing.T) {
	requests := func(seed int64) []Request {
		var d recording
		synctest.Test(t, func(t *testing.T) {
			cfg := config()
			cfg.Seed = seed
			cfg.Users = 5
			cfg.Mix = Mix{PlaceOrder: 1, GetOrder: 1}
			res := run(t, cfg, &d)
			if place, get := res.Stats(PhaseAll, OpPlaceOrder).Requests, res.Stats(PhaseAll, OpGetOrder).Requests; place+get != 1000 || len(res.History) != int(place) {
				t.Errorf("place %d get %d history %d", place, get, len(res.History))
			}
		})
		return d.sorted()
	}
	a, b, c := requests(7), requests(7), requests(8)
	strip := func(rs []Request) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%d %s %s %s %d", r.Seq, r.Op, r.OrderID, r.UserID, r.AmountCents))
		}
		return out
	}
	if !slices.Equal(strip(a), strip(b)) {
		t.Error("the same seed gave different request streams")
	}
	if slices.Equal(strip(a), strip(c)) {
		t.Error("different seeds gave the same request stream")
	}

	var place int
	users := map[string]int{}
	lastPlaced := "run-000000"
	for _, r := range a {
		users[r.UserID]++
		if r.AmountCents < 100 || r.AmountCents > 9999 {
			t.Errorf("seq %d: amount %d outside 100..9999", r.Seq, r.AmountCents)
		}
		switch r.Op {
		case OpPlaceOrder:
			place++
			if want := fmt.Sprintf("run-%06d", r.Seq); r.OrderID != want {
				t.Errorf("seq %d: order id %s, want %s", r.Seq, r.OrderID, want)
			}
			lastPlaced = r.OrderID
		case OpGetOrder:
			// Every place_order is acknowledged before the next arrival.
			if r.OrderID != lastPlaced {
				t.Errorf("seq %d: get_order targets %s, want the last acknowledged %s", r.Seq, r.OrderID, lastPlaced)
			}
		}
	}
	if place < 400 || place > 600 {
		t.Errorf("%d place_order of 1000 with a 1:1 mix", place)
	}
	if len(users) != 5 {
		t.Errorf("users %v, want u-0000 … u-0004", users)
	}
	for u, n := range users {
		if !strings.HasPrefix(u, "u-000") || n < 100 {
			t.Errorf("user %s got %d requests", u, n)
		}
	}
}

func TestRunGetOrderTargetsBeforeAnyAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d recording
		cfg := config()
		cfg.Duration = time.Second
		cfg.Mix = Mix{GetOrder: 1}
		res := run(t, cfg, &d)
		for _, r := range d.sorted() {
			if r.Op != OpGetOrder || r.OrderID != "run-000000" {
				t.Fatalf("request %+v, want get_order of run-000000", r)
			}
		}
		if len(res.History) != 0 {
			t.Errorf("history of %d for a get_order only run", len(res.History))
		}
	})
}

func TestRunCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2505*time.Millisecond)
		defer cancel()
		res, err := Run(ctx, config(), sleeper(50*time.Millisecond))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run error %v, want deadline exceeded", err)
		}
		if !res.Canceled || res.Duration != 2505*time.Millisecond || res.Sent != 251 {
			t.Errorf("canceled %v duration %v sent %d, want true 2.505s 251", res.Canceled, res.Duration, res.Sent)
		}
		// Requests sent at 2.46 … 2.50 s were in flight.
		st := res.Stats(PhaseAll, OpPlaceOrder)
		if st.Unknown != 5 || st.Successes != 246 || st.Errors["DEADLINE_EXCEEDED"] != 5 {
			t.Errorf("stats %+v, want 5 unknown and 246 successes", st)
		}
		if len(res.Seconds) != 3 {
			t.Errorf("%d seconds, want 3", len(res.Seconds))
		}
	})
}

func TestRunProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var snaps []Snapshot // Progress runs on one goroutine at a time
		var mu sync.Mutex
		cfg := config()
		cfg.Duration = 5 * time.Second
		cfg.Phase = func(time.Duration) string { return PhaseDuring }
		cfg.Progress = func(s Snapshot) { mu.Lock(); snaps = append(snaps, s); mu.Unlock() }
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			if r.Seq%4 == 0 {
				return Outcome{Code: codes.Internal}
			}
			return sleep(ctx, 5*time.Millisecond)
		})
		run(t, cfg, d)
		mu.Lock()
		defer mu.Unlock()
		if len(snaps) < 5 || len(snaps) > 6 {
			t.Fatalf("%d snapshots in 5 s, want 5 or 6", len(snaps))
		}
		for i, s := range snaps[:4] {
			if s.Elapsed != time.Duration(i+1)*time.Second || s.Total != 5*time.Second || s.Phase != PhaseDuring {
				t.Errorf("snapshot %d: %+v", i, s)
			}
			if s.RPS < 99 || s.RPS > 101 || s.ErrorRate < 0.2 || s.ErrorRate > 0.3 {
				t.Errorf("snapshot %d: rps %v error rate %v, want about 100 and 0.25", i, s.RPS, s.ErrorRate)
			}
		}
		if last := snaps[len(snaps)-1]; last.Sent != 500 || last.Dropped != 0 || last.InFlight != 0 {
			t.Errorf("last snapshot %+v", last)
		}
	})
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		count int
		first []time.Duration
	}{
		{"integral", Config{Rate: 100, Duration: 10 * time.Second}, 1000, []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}},
		{"thirds", Config{Rate: 3, Duration: time.Second}, 3, []time.Duration{0, 333333333, 666666667}},
		{"fractional", Config{Rate: 7.5, Duration: 2 * time.Second}, 15, nil},
		{"ceil", Config{Rate: 7.3, Duration: 10 * time.Second}, 73, nil},
		{"max rate for a minute", Config{Rate: MaxRate, Duration: time.Minute}, 6_000_000, []time.Duration{0, 10 * time.Microsecond}},
		{"step at zero", Config{Rate: 1, Duration: time.Second, Steps: []Step{{At: 0, Rate: 10}}}, 10, nil},
		{"pause", Config{Rate: 10, Duration: 2 * time.Second, Steps: []Step{{At: 500 * time.Millisecond, Rate: 0}, {At: 1500 * time.Millisecond, Rate: 2}}}, 6,
			[]time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 1500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(tt.cfg)
			var got []time.Duration
			prev := time.Duration(-1)
			n := 0
			for {
				off, ok := s.next()
				if !ok {
					break
				}
				if off <= prev || off >= tt.cfg.Duration {
					t.Fatalf("offset %v after %v (duration %v)", off, prev, tt.cfg.Duration)
				}
				prev = off
				if n < len(tt.first) {
					got = append(got, off)
				}
				n++
			}
			if n != tt.count || !slices.Equal(got, tt.first) {
				t.Errorf("%d arrivals starting %v, want %d starting %v", n, got, tt.count, tt.first)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"valid", func(*Config) {}, nil},
		{"zero rate", func(c *Config) { c.Rate = 0 }, []string{"rate: 0/s"}},
		{"NaN rate", func(c *Config) { c.Rate = math.NaN() }, []string{"rate: NaN/s"}},
		{"rate too high", func(c *Config) { c.Rate = 100_001 }, []string{"rate: 100001/s", "at most 100000/s"}},
		{"max rate", func(c *Config) { c.Rate = MaxRate }, nil},
		{"no duration", func(c *Config) { c.Duration = 0 }, []string{"duration: 0s"}},
		{"duration too long", func(c *Config) { c.Duration = time.Hour + time.Second }, []string{"duration: 1h0m1s", "at most 1h0m0s"}},
		{"no in flight", func(c *Config) { c.MaxInFlight = 0 }, []string{"max_in_flight: 0"}},
		{"no timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout: 0s"}},
		{"timeout too long", func(c *Config) { c.Timeout = 2 * time.Minute }, []string{"timeout: 2m0s"}},
		{"no users", func(c *Config) { c.Users = 0 }, []string{"users: 0"}},
		{"negative mix", func(c *Config) { c.Mix.GetOrder = -1 }, []string{"mix: place_order 0, get_order -1"}},
		{"no run id", func(c *Config) { c.RunID = "" }, []string{"run_id: empty"}},
		{"negative amount", func(c *Config) { c.AmountCents = -5 }, []string{"amount_cents: -5"}},
		{"step past the end", func(c *Config) { c.Steps = []Step{{At: 10 * time.Second, Rate: 1}} }, []string{"steps[0].at: 10s"}},
		{"steps out of order", func(c *Config) {
			c.Steps = []Step{{At: 5 * time.Second, Rate: 1}, {At: 2 * time.Second, Rate: 1}}
		}, []string{"steps[1].at: 2s, want after steps[0].at 5s"}},
		{"step rate", func(c *Config) { c.Steps = []Step{{At: time.Second, Rate: -1}} }, []string{"steps[0].rate: -1/s"}},
		{"all at once", func(c *Config) { c.Rate, c.Users, c.MaxInFlight = -1, 0, 0 }, []string{"rate: -1/s", "users: 0", "max_in_flight: 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if res, err := Run(t.Context(), cfg, sleeper(0)); err == nil || res != nil {
				t.Errorf("Run accepted the config: %v", err)
			}
		})
	}
	if _, err := Run(t.Context(), config(), nil); err == nil {
		t.Error("Run accepted a nil Doer")
	}
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK: "OK", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Canceled: "CANCELED",
		codes.Unauthenticated: "UNAUTHENTICATED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED", 99: "CODE_99",
	} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", c, got, want)
		}
	}
}

// BenchmarkRecord measures the bookkeeping of one request: send and
// completion records, with the phase, per-second and history updates.
func BenchmarkRecord(b *testing.B) {
	rec := newRecorder(MaxDuration, true)
	start := time.Now()
	req := Request{Op: OpPlaceOrder, OrderID: "run-000001", Intended: start}
	out := Outcome{Code: codes.OK}
	b.ReportAllocs()
	var i int
	for b.Loop() {
		sec := (i / 1000) % 3600
		rec.send(PhaseDuring, OpPlaceOrder, sec, 1)
		rec.done(completion{req: req, phase: PhaseDuring, sec: sec, out: out, latency: time.Duration(i%5000) * time.Microsecond, inFlight: 1, inFlightOp: 1})
		i++
		if i%1_000_000 == 0 {
			rec.history = rec.history[:0] // keep memory flat in long benchmarks
		}
	}
}

func TestResultJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config()
		cfg.Duration = time.Second
		d := DoerFunc(func(ctx context.Context, r Request) Outcome {
			if r.Seq%2 == 0 {
				return Outcome{Code: codes.Unavailable}
			}
			return sleep(ctx, 7*time.Millisecond)
		})
		res := run(t, cfg, d)
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back struct {
			Sent   int64
			Phases map[string]struct {
				Ops map[string]struct {
					Requests int64
					Errors   map[string]int64
					Latency  LatencySummary
				}
			}
			Seconds []Second
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		po := back.Phases[PhaseAll].Ops[string(OpPlaceOrder)]
		if back.Sent != 100 || po.Requests != 100 || po.Errors["UNAVAILABLE"] != 50 || po.Latency.Count != 100 ||
			!near(po.Latency.Max, 7*time.Millisecond) || len(back.Seconds) != 1 || back.Seconds[0].PlaceOrder.Errors != 50 {
			t.Errorf("decoded %s", b)
		}
	})
}

// TestSecondHistogramsAreRecycled checks that a long run keeps a bounded
// number of per-second histograms alive.
func TestSecondHistogramsAreRecycled(t *testing.T) {
	rec := newRecorder(1000*time.Second, false)
	req := Request{Op: OpPlaceOrder, OrderID: "run-000001"}
	for sec := range 1000 {
		rec.send("", OpPlaceOrder, sec, 1)
		rec.done(completion{req: req, sec: sec, out: Outcome{Code: codes.OK}, latency: time.Duration(sec+1) * time.Millisecond})
		if len(rec.pool) > 1 {
			t.Fatalf("second %d: %d histograms pooled, want at most 1", sec, len(rec.pool))
		}
	}
	rec.mu.Lock()
	rec.advanceLocked(len(rec.seconds))
	rec.mu.Unlock()
	if len(rec.pool) != 1 {
		t.Errorf("%d histograms after the run, want the 1 reused throughout", len(rec.pool))
	}
	for _, sec := range []int{0, 499, 999} {
		if got, want := rec.seconds[sec].ops[0].P50, time.Duration(sec+1)*time.Millisecond; !near(got, want) {
			t.Errorf("second %d: p50 %v, want %v", sec, got, want)
		}
	}
}

func TestPhaseEndReportsEachPhaseAsItEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type end struct {
			phase    string
			at       time.Duration
			requests int64
		}
		var ends []end
		start := time.Now()
		cfg := Config{
			Rate: 10, Duration: 6 * time.Second, MaxInFlight: 100, Timeout: time.Second, Users: 1, RunID: "phase-end",
			Phase: func(off time.Duration) string {
				switch {
				case off < 2*time.Second:
					return PhaseBefore
				case off < 4*time.Second:
					return PhaseDuring
				}
				return PhaseAfter
			},
			PhaseEnd: func(phase string, fig *Phase) {
				ends = append(ends, end{phase, time.Since(start), fig.Ops[OpPlaceOrder].Requests})
			},
		}
		run(t, cfg, sleeper(time.Millisecond))
		// Arrivals at 0, 100 ms, …: the before phase holds 20 of them and
		// ends when the first arrival of during is due, at 2 s.
		want := []end{{PhaseBefore, 2 * time.Second, 20}, {PhaseDuring, 4 * time.Second, 20}}
		if fmt.Sprint(ends) != fmt.Sprint(want) {
			t.Fatalf("phase ends = %v, want %v", ends, want)
		}
	})
}

// TestGeneratorKeepsItsSchedule runs the generator at 1,000/s for 5 s on
// the real clock while a bare timer (TimerFloor) waits on the same
// schedule beside it, and checks what BENCHMARKS.md promises: the
// achieved rate, over the real first-to-last send window, within 1% of
// the target, and the send lag within a stated margin of the bare
// timer's, the machine's floor here and now. Requests take 5 ms on a
// timer, so the generator's own work is what is measured, not an
// endpoint's.
//
// Both bounds are relative to the floor: the rate may be off by no more
// than 1% or the bare timer's worst lateness over the window, whichever
// is larger (a sender that wakes that late stretches the window by that
// much), and the send lag p50 and p99 no more than twice the bare timer's
// plus a margin. A generator that falls behind its schedule by 10% misses
// both by far, whatever the machine's load.
func TestGeneratorKeepsItsSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s on the real clock; skipped with -short")
	}
	// The send lag is read against a bare timer measured at the same time,
	// but one 5 s sample of each still differs by chance on a busy machine
	// (another process takes a core for a few ms). A generator that really
	// lags fails every attempt; a noisy machine passes within three.
	const attempts = 3
	var failures []string
	for i := 1; i <= attempts; i++ {
		failures = scheduleAttempt(t)
		if len(failures) == 0 {
			return
		}
		t.Logf("attempt %d of %d: %s", i, attempts, strings.Join(failures, "; "))
	}
	t.Errorf("the generator missed its schedule in %d attempts of %d; the last: %s", attempts, attempts, strings.Join(failures, "; "))
}

// scheduleAttempt runs 5 s at 1000/s beside a bare timer and returns what
// the generator did worse than the bounds allow. A wrong count of scheduled
// requests is fatal at once: chance does not explain it.
func scheduleAttempt(t *testing.T) []string {
	t.Helper()
	cfg := config()
	cfg.Rate, cfg.Duration, cfg.MaxInFlight = 1000, 5*time.Second, 1000
	type floorResult struct {
		lag LatencySummary
		err error
	}
	floorDone := make(chan floorResult, 1)
	go func() {
		lag, err := TimerFloor(t.Context(), cfg.Rate, int(cfg.Rate*cfg.Duration.Seconds()))
		floorDone <- floorResult{lag, err}
	}()
	res, err := Run(t.Context(), cfg, sleeper(5*time.Millisecond))
	fl := <-floorDone
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if fl.err != nil {
		t.Fatal(fl.err)
	}
	floor := fl.lag
	rateErr := res.Achieved/res.Target - 1
	t.Logf("achieved %.2f/s of %.2f/s (%+.3f%%; sent %d, dropped %d) in a send window of %v",
		res.Achieved, res.Target, 100*rateErr, res.Sent, res.Dropped, res.SendWindow)
	t.Logf("send lag p50 %v p90 %v p99 %v max %v", res.SendLag.P50, res.SendLag.P90, res.SendLag.P99, res.SendLag.Max)
	t.Logf("bare timer (the floor) p50 %v p90 %v p99 %v max %v", floor.P50, floor.P90, floor.P99, floor.Max)

	if res.Sent+res.Dropped != 5000 || res.Target != cfg.Rate && res.Dropped == 0 {
		t.Fatalf("scheduled %d at a target of %v/s, want 5000 at %v/s", res.Sent+res.Dropped, res.Target, cfg.Rate)
	}
	var failures []string
	bound := max(RateTolerance, float64(floor.Max)/float64(res.SendWindow))
	if math.Abs(rateErr) > bound {
		failures = append(failures, fmt.Sprintf("achieved %.2f/s over a send window of %v, %+.2f%% off the target %.0f/s: want within %.2f%% (1%% or the bare timer's worst lateness, %v, over the window)",
			res.Achieved, res.SendWindow, 100*rateErr, res.Target, 100*bound, floor.Max))
	}
	lim50, lim99 := SendLagLimits(floor)
	if res.SendLag.P50 > lim50 {
		failures = append(failures, fmt.Sprintf("send lag p50 %v, want at most twice the bare timer's p50 %v + %v = %v", res.SendLag.P50, floor.P50, SendLagP50Margin, lim50))
	}
	if res.SendLag.P99 > lim99 {
		failures = append(failures, fmt.Sprintf("send lag p99 %v, want at most twice the bare timer's p99 %v + %v = %v", res.SendLag.P99, floor.P99, SendLagP99Margin, lim99))
	}
	return failures
}

func TestTimerFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		lag, err := TimerFloor(t.Context(), 1000, 20)
		if err != nil || lag.Count != 20 || lag.Max != 0 {
			t.Errorf("TimerFloor = %+v, %v; want 20 waits, none late (fake time)", lag, err)
		}
		if took := time.Since(start); took != 20*time.Millisecond {
			t.Errorf("20 waits at 1000/s took %v, want 20ms", took)
		}
	})
	if p50, p99 := SendLagLimits(LatencySummary{P50: time.Millisecond, P99: 3 * time.Millisecond}); p50 != 2250*time.Microsecond || p99 != 7*time.Millisecond {
		t.Errorf("SendLagLimits of a 1 ms / 3 ms floor = %v, %v; want 2.25ms, 7ms", p50, p99)
	}
	if _, err := TimerFloor(t.Context(), 0, 10); err == nil {
		t.Error("TimerFloor at rate 0: no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := TimerFloor(ctx, 1000, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("TimerFloor with a canceled context: %v, want context.Canceled", err)
	}
}

// TestWatchSeesThePhaseAsItGoes checks that Watch is called every
// WatchEvery with the phase the schedule is in and its figures so far,
// and that cancelling from Watch stops the run at once.
func TestWatchSeesThePhaseAsItGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type seen struct {
			phase    string
			at       time.Duration
			requests int64
			wall     time.Duration
		}
		var log []seen
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		cfg := Config{
			Rate: 10, Duration: 6 * time.Second, MaxInFlight: 100, Timeout: time.Second, Users: 1, RunID: "watch",
			Phase: func(off time.Duration) string {
				if off < 2*time.Second {
					return PhaseBefore
				}
				return PhaseDuring
			},
			WatchEvery: 300 * time.Millisecond,
			Watch: func(phase string, fig *Phase) {
				log = append(log, seen{phase, time.Since(start), fig.Total.Requests, fig.Wall})
				if phase == PhaseDuring && fig.Total.Requests >= 5 {
					cancel()
				}
			},
		}
		res, err := Run(ctx, cfg, sleeper(time.Millisecond))
		if err == nil || !res.Canceled {
			t.Fatalf("err %v, canceled %v: want the run stopped by Watch", err, res.Canceled)
		}
		// Arrivals every 100 ms, each done 1 ms later; ticks every 300 ms
		// (never at the 2 s phase change): 3 more before-phase requests
		// each tick, then the during phase from 2 s on.
		ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
		var want []seen
		for i := 1; i <= 6; i++ {
			want = append(want, seen{PhaseBefore, ms(300 * i), int64(3 * i), ms(300 * i)})
		}
		want = append(want, seen{PhaseDuring, ms(2100), 1, ms(100)}, seen{PhaseDuring, ms(2400), 4, ms(400)}, seen{PhaseDuring, ms(2700), 7, ms(700)})
		if fmt.Sprint(log) != fmt.Sprint(want) {
			t.Fatalf("watch saw\n%v\nwant\n%v", log, want)
		}
		if res.Duration > 2800*time.Millisecond {
			t.Errorf("the run went on to %v after Watch cancelled it at 2.7s", res.Duration)
		}
	})
}
