package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/experiments/load"
)

// Bounds of the load generator measurements.
const (
	loadRound     = 5 * time.Second // one fixed-rate run
	maxRateRound  = 2 * time.Second // one step of the search for the maximum
	maxRateFirst  = 5_000           // first rate the search tries
	maxRateGrowth = 1.25            // each step multiplies the rate by this
	loadInFlight  = 512
)

// loadGenerator measures the open-loop generator against the trivial
// endpoint at fixed rates and searches for the highest rate it sustains;
// ghz measures the same endpoint as a cross-check.
func (b *bench) loadGenerator(ctx context.Context) (*Section, error) {
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	s := &Section{
		Title: "3. Load generator",
		Intro: fmt.Sprintf("The open-loop generator (experiments/load) against the trivial endpoint, direct, at fixed arrival rates for %v each; send lag is how late a request left against its intended time, latency runs from the intended time. "+
			"The maximum is the highest rate of a search (from %d/s, ×%.2f per %v step, then two bisection steps) at which the achieved rate stayed within 1%% of the target with nothing dropped, no error and send lag p99 ≤ 5 ms. "+
			"ghz %s measures the same endpoint in the same repetition: at 1,000/s (-c 16), and unthrottled (-c 32) for its maximum.",
			loadRound, maxRateFirst, maxRateGrowth, maxRateRound, ghzVersion),
		Header: []string{"generator", "target /s", "achieved /s", "send lag p50 ms", "send lag p99 ms", "latency p50 ms", "latency p99 ms", "dropped"},
	}
	doer := load.DoerFunc(func(ctx context.Context, _ load.Request) load.Outcome {
		if err := check(ctx, r.direct); err != nil {
			return load.Outcome{Code: status.Code(err)}
		}
		return load.Outcome{Code: codes.OK}
	})
	rates := []float64{1_000, 5_000, 10_000}
	type fig struct{ achieved, lag50, lag99, p50, p99, dropped sample }
	figs := make([]fig, len(rates))
	var ours, ghzMax, ghzAch, ghzP50, ghzP99 sample
	var ghzErr error
	var timer50, timer99 sample
	for rep := range b.cfg.Reps {
		tl, err := load.TimerFloor(ctx, 1_000, 3_000)
		if err != nil {
			return nil, err
		}
		timer50, timer99 = append(timer50, ms(tl.P50)), append(timer99, ms(tl.P99))
		for i, rate := range rates {
			res, err := runLoad(ctx, rate, loadRound, doer)
			if err != nil {
				return nil, err
			}
			all := res.Phases[load.PhaseAll].Total
			f := &figs[i]
			f.achieved = append(f.achieved, res.Achieved)
			f.lag50 = append(f.lag50, ms(res.SendLag.P50))
			f.lag99 = append(f.lag99, ms(res.SendLag.P99))
			f.p50 = append(f.p50, ms(all.P50()))
			f.p99 = append(f.p99, ms(all.P99()))
			f.dropped = append(f.dropped, float64(res.Dropped))
			b.logf("load %.0f/s rep %d/%d: achieved %.1f/s, send lag p50 %.2f ms p99 %.2f ms, dropped %d",
				rate, rep+1, b.cfg.Reps, res.Achieved, ms(res.SendLag.P50), ms(res.SendLag.P99), res.Dropped)
		}
		top, err := b.maxRate(ctx, doer)
		if err != nil {
			return nil, err
		}
		ours = append(ours, top)
		b.logf("load max rep %d/%d: %.0f/s sustained", rep+1, b.cfg.Reps, top)
		if b.cfg.GHZ != "" {
			fixed, err := runGHZ(ctx, b.cfg.GHZ, r.grpcAddr, 16, 1_000)
			var open ghzResult
			if err == nil {
				open, err = runGHZ(ctx, b.cfg.GHZ, r.grpcAddr, 32, 0)
			}
			if err != nil {
				ghzErr = err
				b.logf("ghz rep %d/%d: %v (no cross-check in this repetition)", rep+1, b.cfg.Reps, err)
			} else {
				ghzAch, ghzP50, ghzP99 = append(ghzAch, fixed.RPS), append(ghzP50, ms(fixed.quantile(50))), append(ghzP99, ms(fixed.quantile(99)))
				ghzMax = append(ghzMax, open.RPS)
				b.logf("ghz rep %d/%d: 1000/s gives p50 %.2f ms p99 %.2f ms; unthrottled %.0f/s", rep+1, b.cfg.Reps,
					ms(fixed.quantile(50)), ms(fixed.quantile(99)), open.RPS)
			}
		}
	}
	for i, rate := range rates {
		f := figs[i]
		s.row("fallacies", fmt.Sprintf("%.0f", rate), f.achieved.format(1), f.lag50.format(2), f.lag99.format(2), f.p50.format(2), f.p99.format(2), f.dropped.format(0))
		if rate <= 5_000 {
			errPct := 100 * (f.achieved.median() - rate) / rate
			s.target(fmt.Sprintf("load generator achieves %.0f/s within %.0f%% (first-to-last send)", rate, 100*load.RateTolerance), fmt.Sprintf("%.1f/s (%+.2f%%)", f.achieved.median(), errPct), abs(errPct) <= 100*load.RateTolerance)
		}
		if rate == 1_000 {
			lim50, lim99 := load.SendLagLimits(load.LatencySummary{P50: fromMs(timer50.median()), P99: fromMs(timer99.median())})
			s.target(fmt.Sprintf("send lag at 1,000/s: p50 ≤ 2 × a bare timer's + %v", load.SendLagP50Margin),
				fmt.Sprintf("%s ms (a bare timer: %s ms; limit %.2f ms)", f.lag50.format(2), timer50.format(2), ms(lim50)), f.lag50.median() <= ms(lim50))
			s.target(fmt.Sprintf("send lag at 1,000/s: p99 ≤ 2 × a bare timer's + %v", load.SendLagP99Margin),
				fmt.Sprintf("%s ms (a bare timer: %s ms; limit %.2f ms)", f.lag99.format(2), timer99.format(2), ms(lim99)), f.lag99.median() <= ms(lim99))
		}
	}
	s.row("fallacies", "maximum", ours.format(0), "", "", "", "", "0")
	s.row("a bare timer (the floor)", "1000", "", timer50.format(2), timer99.format(2), "", "", "")
	s.note("The floor: a bare Go timer reset to each intended time of a 1,000/s schedule (how the generator waits) woke %s ms late at p50 and %s ms at p99 on this machine in this run; the generator's send lag cannot be below it without spinning a CPU, which on two cores the system under test needs.",
		timer50.format(2), timer99.format(2))
	switch {
	case b.cfg.GHZ == "":
		s.note("ghz was not given (--ghz): no cross-check.")
	case len(ghzMax) == 0:
		s.note("ghz failed, no cross-check: %v", ghzErr)
	default:
		if ghzErr != nil {
			s.note("ghz failed in %d of %d repetitions (its figures are from the others): %v", b.cfg.Reps-len(ghzMax), b.cfg.Reps, ghzErr)
		}
		s.row("ghz", "1000", ghzAch.format(1), "", "", ghzP50.format(2), ghzP99.format(2), "")
		s.row("ghz", "maximum", ghzMax.format(0), "", "", "", "", "")
		s.target("maximum sustained rate ≥ ghz's on the same endpoint", fmt.Sprintf("%s vs ghz %s /s", ours.format(0), ghzMax.format(0)), ours.median() >= ghzMax.median())
		s.note("ghz is closed loop: its latency runs from when a worker actually sent, so a stall shows in its throughput rather than its latency; ours runs from the intended time.")
	}
	return s, nil
}

// runLoad runs the generator at rate for d against doer, its orders
// spread over chainClients users as the saturation rounds' are (order
// publishes one user's events one at a time: one user's orders would
// measure that queue).
func runLoad(ctx context.Context, rate float64, d time.Duration, doer load.Doer) (*load.Result, error) {
	return load.Run(ctx, load.Config{
		Rate: rate, Duration: d, MaxInFlight: loadInFlight, Timeout: 5 * time.Second,
		Users: chainClients, RunID: fmt.Sprintf("bench-%d", time.Now().UnixNano()), Seed: 1,
	}, doer)
}

// maxRate searches for the highest rate the generator sustains against
// doer: it raises the rate by maxRateGrowth until a step falls short, then
// bisects twice between the last rate kept and the first one missed, and
// returns the highest rate kept (0 if even the first was not).
func (b *bench) maxRate(ctx context.Context, doer load.Doer) (float64, error) {
	kept := func(rate float64) (bool, error) {
		res, err := runLoad(ctx, rate, maxRateRound, doer)
		if err != nil {
			return false, err
		}
		all := res.Phases[load.PhaseAll].Total
		ok := res.Achieved >= 0.99*rate && res.Dropped == 0 && all.ErrorCount() == 0 && res.SendLag.P99 <= 5*time.Millisecond
		b.logf("load max: %.0f/s → achieved %.0f/s, dropped %d, errors %d, send lag p99 %.2f ms", rate, res.Achieved, res.Dropped, all.ErrorCount(), ms(res.SendLag.P99))
		return ok, nil
	}
	best, missed := 0.0, 0.0
	for rate := float64(maxRateFirst); rate <= load.MaxRate; rate = math.Round(rate * maxRateGrowth) {
		ok, err := kept(rate)
		if err != nil {
			return 0, err
		}
		if !ok {
			missed = rate
			break
		}
		best = rate
	}
	for range 2 {
		if best == 0 || missed == 0 {
			break
		}
		mid := math.Round((best + missed) / 2)
		ok, err := kept(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			best = mid
		} else {
			missed = mid
		}
	}
	return best, nil
}

// ghzVersion is the ghz release `make bench` installs.
const ghzVersion = "v0.121.0"

// ghzResult is what we read of ghz's JSON output.
type ghzResult struct {
	Count   int64   `json:"count"`
	RPS     float64 `json:"rps"`
	Latency []struct {
		Percentage float64       `json:"percentage"`
		Latency    time.Duration `json:"latency"`
	} `json:"latencyDistribution"`
	StatusCodes map[string]int64 `json:"statusCodeDistribution"`
}

func (g ghzResult) quantile(p float64) time.Duration {
	for _, l := range g.Latency {
		if l.Percentage == p {
			return l.Latency
		}
	}
	return 0
}

// runGHZ calls the health check at addr with ghz for loadRound from c
// workers at rps per second (0: as fast as they can).
func runGHZ(ctx context.Context, bin, addr string, c int, rps int) (ghzResult, error) {
	args := []string{"--insecure", "--call", "grpc.health.v1.Health.Check", "-d", "{}",
		"-c", strconv.Itoa(c), "--connections", "1", "-z", loadRound.String(), "-O", "json"}
	if rps > 0 {
		args = append(args, "--rps", strconv.Itoa(rps))
	}
	args = append(args, addr)
	ctx, cancel := context.WithTimeout(ctx, loadRound+30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return ghzResult{}, fmt.Errorf("%s: %v: %s", bin, err, bytes.TrimSpace(errOut.Bytes()))
	}
	var g ghzResult
	if err := json.Unmarshal(out.Bytes(), &g); err != nil {
		return ghzResult{}, fmt.Errorf("ghz output: %w", err)
	}
	// The calls in flight when the duration ends are cut off and count as
	// errors (Unavailable or Canceled): at most one per worker.
	if bad := g.Count - g.StatusCodes["OK"]; bad > int64(c) || g.Count == 0 {
		return ghzResult{}, fmt.Errorf("ghz: %d of %d calls failed: %v", bad, g.Count, g.StatusCodes)
	}
	return g, nil
}
