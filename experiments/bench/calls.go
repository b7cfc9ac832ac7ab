package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/internal/sleep"
)

// Call-layer section sizes: the share of calls a probability faults is
// counted over shareCalls calls, attempts over attemptRequests logical
// requests, grpc-delay's median over delayCalls calls (the median of a
// uniform ±20 ms spread drawn 4,000 times is known to about ±0.3 ms).
const (
	shareCalls      = 10_000
	attemptRequests = 2_000
	delayCalls      = 4_000
	proxyCalls      = "bench-grpc-calls"
	checkMethod     = "grpc.health.v1.Health/Check"
)

// callLayer measures the gRPC call layer (faults/grpclayer) as experiments
// use it, through the Injector on a Toxiproxy proxy: how exactly grpc-error
// faults the share its probability asks and the attempts it names, how
// close grpc-delay's added median is to its latency, and what the layer
// costs a call when no fault of it acts on that call.
func (b *bench) callLayer(ctx context.Context) (*Section, error) {
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	listen, err := r.tp.AddProxy(proxyCalls, r.grpcAddr)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	s := &Section{
		Title: "Call-level faults: the gRPC layer (faults/grpclayer)",
		Intro: "Health checks through a Toxiproxy proxy on which the Injector applies call-level faults (the layer is interposed with the first). " +
			"Share: 10,000 calls, concurrency 8, grpc-error probability 0.1. Attempts: 2,000 logical requests (each its own request message), " +
			"retried until the server answers, under grpc-error attempts 2. Delay: 4,000 calls at concurrency 32 under grpc-delay 50 ms ± 20 ms, " +
			"against the layer's busy-loop median and against the same 50 ± 20 ms waits made by the client before undelayed calls (which pay the machine's late wake-ups too). " +
			"Cost: the same proxy with and without the layer (a fault on another method keeps it interposed), interleaved in one run, 2 s closed loops of health checks.",
		Header: []string{"figure", "condition", "measured: median (range)", "note"},
	}
	if err := b.callShare(ctx, r, client, s); err != nil {
		return nil, err
	}
	if err := b.callAttempts(ctx, r, client, s); err != nil {
		return nil, err
	}
	if err := b.callDelay(ctx, r, client, s); err != nil {
		return nil, err
	}
	if err := b.callCost(ctx, r, listen, s); err != nil {
		return nil, err
	}
	return s, nil
}

// callFault is a call-level fault on the section's proxy, on Check unless
// method says otherwise.
func callFault(name string, kind faults.Kind, attrs map[string]int64, text map[string]string) faults.Fault {
	t := map[string]string{"method": checkMethod}
	for k, v := range text {
		t[k] = v
	}
	return faults.Fault{Name: name, Kind: kind, Target: proxyCalls, Attrs: attrs, Text: t}
}

// callShare counts the calls a grpc-error of probability 0.1 faults.
func (b *bench) callShare(ctx context.Context, r *rig, client healthpb.HealthClient, s *Section) error {
	var share, seen sample
	for rep := range b.cfg.Reps {
		f := callFault(fmt.Sprintf("share-%d", rep), faults.GRPCError, map[string]int64{"probability": faults.FractionOne / 10},
			map[string]string{"code": "UNAVAILABLE"})
		var failed atomic.Int64
		_, err := withFault(ctx, r.inj, f, func() (none, error) {
			_, err := closedLoop(ctx, 8, time.Minute, shareCalls, func(ctx context.Context) error {
				err := check(ctx, client)
				if status.Code(err) == codes.Unavailable {
					failed.Add(1)
					return nil
				}
				return err
			})
			return none{}, err
		})
		if err != nil {
			return fmt.Errorf("share: %w", err)
		}
		c := r.inj.Counters(f.Name)
		share = append(share, 100*float64(c["faulted"])/float64(c["calls"]))
		seen = append(seen, 100*float64(failed.Load())/shareCalls)
		b.logf("call share rep %d/%d: layer %d of %d faulted, client saw %d UNAVAILABLE", rep+1, b.cfg.Reps, c["faulted"], c["calls"], failed.Load())
	}
	s.row("share faulted, % (layer counters)", "grpc-error probability 0.1, 10,000 calls", share.format(2), "")
	s.row("share failed, % (seen by the client)", "same calls", seen.format(2), "")
	worst := 0.0
	for _, v := range share {
		worst = max(worst, abs(v-10))
	}
	s.target("share faulted within 1.5 points of the probability (10%) over 10,000 calls",
		fmt.Sprintf("%s%%, worst deviation %.2f points", share.format(2), worst), worst <= 1.5)
	return nil
}

// callAttempts retries 2,000 logical requests under attempts 2 and counts
// those that did not take exactly 3 attempts.
func (b *bench) callAttempts(ctx context.Context, r *rig, client healthpb.HealthClient, s *Section) error {
	var wrong sample
	for rep := range b.cfg.Reps {
		f := callFault(fmt.Sprintf("attempts-%d", rep), faults.GRPCError, map[string]int64{"attempts": 2},
			map[string]string{"code": "UNAVAILABLE"})
		var next, bad atomic.Int64
		_, err := withFault(ctx, r.inj, f, func() (none, error) {
			_, err := closedLoop(ctx, 8, time.Minute, attemptRequests, func(ctx context.Context) error {
				// A service name of its own makes each request's message
				// unique; the health server answers NOT_FOUND, which is
				// an answer from the server all the same.
				req := &healthpb.HealthCheckRequest{Service: fmt.Sprintf("rep%d-req%d", rep, next.Add(1))}
				tries := 0
				for tries < 10 {
					tries++
					_, err := client.Check(ctx, req)
					if status.Code(err) == codes.Unavailable {
						continue
					}
					if status.Code(err) != codes.NotFound {
						return err
					}
					break
				}
				if tries != 3 {
					bad.Add(1)
				}
				return nil
			})
			return none{}, err
		})
		if err != nil {
			return fmt.Errorf("attempts: %w", err)
		}
		wrong = append(wrong, float64(bad.Load()))
		b.logf("call attempts rep %d/%d: %d of %d requests not answered on their 3rd attempt", rep+1, b.cfg.Reps, bad.Load(), attemptRequests)
	}
	s.row("logical requests not answered on exactly their 3rd attempt", "grpc-error attempts 2, 2,000 requests", wrong.format(0), "")
	s.target("attempts: N exact for every logical request", wrong.format(0)+" requests wrong", slices.Max(wrong) == 0)
	return nil
}

// callDelay measures grpc-delay 50 ms ± 20 ms's added median two ways.
// Against the layer's undelayed median in a busy loop, as a user sees it.
// And against the same waits made by the client: each call of that loop
// first sleeps a pause drawn from the same 50 ± 20 ms, then calls the same
// layer undelayed, and its time counts the pause. On a loaded machine a
// wait ends late now and then (a thread off the CPU for a scheduler
// period), and the median of a flat spread moves by the width times the
// share of calls pushed across it, while the median of a busy loop does
// not move; the client's own waits pay the same, so the difference between
// the two medians is what the layer adds beyond its draw.
func (b *bench) callDelay(ctx context.Context, r *rig, client healthpb.HealthClient, s *Section) error {
	const latency, jitter = 50 * time.Millisecond, 20 * time.Millisecond
	var added, beyond, late sample
	for rep := range b.cfg.Reps {
		var base, paced, delayed loop
		// The layer stays on with a fault on another method.
		keep := callFault(fmt.Sprintf("keep-%d", rep), faults.GRPCError, nil,
			map[string]string{"method": "grpc.health.v1.Health/Watch", "code": "UNAVAILABLE"})
		_, err := withFault(ctx, r.inj, keep, func() (none, error) {
			var err error
			if base, err = closedLoop(ctx, 1, 2*time.Second, 0, func(ctx context.Context) error { return check(ctx, client) }); err != nil {
				return none{}, err
			}
			pauseThenCheck := func(ctx context.Context) error {
				if err := sleep.For(ctx, latency-jitter+rand.N(2*jitter+1)); err != nil {
					return err
				}
				return check(ctx, client)
			}
			if paced, err = closedLoop(ctx, 32, time.Minute, delayCalls, pauseThenCheck); err != nil {
				return none{}, err
			}
			f := callFault(fmt.Sprintf("delay-%d", rep), faults.GRPCDelay,
				map[string]int64{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()}, nil)
			return withFault(ctx, r.inj, f, func() (none, error) {
				var wg sync.WaitGroup
				wg.Go(func() { late = append(late, ms(timerLateness(ctx, latency, 32, delayCalls))) })
				var err error
				delayed, err = closedLoop(ctx, 32, time.Minute, delayCalls, func(ctx context.Context) error { return check(ctx, client) })
				wg.Wait()
				return none{}, err
			})
		})
		if err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		added = append(added, ms(delayed.p50()-base.p50()))
		beyond = append(beyond, ms(delayed.p50()-paced.p50()))
		b.logf("call delay rep %d/%d: median %.2f ms; the client's own 50 ± 20 ms waits then undelayed calls %.2f ms; busy loop %.3f ms; 50 ms sleeps late by %.2f ms",
			rep+1, b.cfg.Reps, ms(delayed.p50()), ms(paced.p50()), ms(base.p50()), late[len(late)-1])
	}
	s.row("grpc-delay added median, ms", "50 ms ± 20 ms, 4,000 calls, concurrency 32; base: undelayed calls in a busy loop", added.format(2), "")
	s.row("delayed median minus the median of the same waits made by the client, ms", "4,000 client waits of 50 ± 20 ms, each then an undelayed call", beyond.format(2),
		"what the layer adds beyond its draw")
	s.row("the machine's 50 ms sleeps, median lateness, ms", "4,000 sleeps beside the delayed calls", late.format(2), "")
	s.target("grpc-delay's added median within 2% or 1 ms of latency (50 ms ± 20), against a busy loop", added.format(2)+" ms",
		abs(added.median()-ms(latency)) <= max(1, 0.02*ms(latency)))
	s.target("grpc-delay adds within 1 ms of its draw: delayed median minus the client's own waits' median", beyond.format(2)+" ms",
		abs(beyond.median()) <= 1)
	return nil
}

// callCost compares the proxy alone with the same proxy with the layer
// interposed (a fault on a method the loop does not call), interleaved.
func (b *bench) callCost(ctx context.Context, r *rig, listen string, s *Section) error {
	const round = 2 * time.Second
	for _, c := range []int{1, 32} {
		var added, ratio, bare sample
		for rep := range b.cfg.Reps {
			plain, err := healthLoop(ctx, r.proxyAddr, c, round)
			if err != nil {
				return err
			}
			direct, err := healthLoop(ctx, r.grpcAddr, c, round)
			if err != nil {
				return err
			}
			var layered loop
			keep := callFault(fmt.Sprintf("cost-%d-%d", c, rep), faults.GRPCError, nil,
				map[string]string{"method": "grpc.health.v1.Health/Watch", "code": "UNAVAILABLE"})
			_, err = withFault(ctx, r.inj, keep, func() (none, error) {
				var err error
				layered, err = healthLoop(ctx, listen, c, round)
				return none{}, err
			})
			if err != nil {
				return err
			}
			added = append(added, us(layered.p50()-plain.p50()))
			ratio = append(ratio, layered.perSecond()/plain.perSecond())
			bare = append(bare, layered.perSecond()/direct.perSecond())
			b.logf("call layer cost c=%d rep %d/%d: p50 %.1f µs vs %.1f µs through the proxy alone (%.1f µs direct), %.0f vs %.0f calls/s (%.0f direct)",
				c, rep+1, b.cfg.Reps, us(layered.p50()), us(plain.p50()), us(direct.p50()), layered.perSecond(), plain.perSecond(), direct.perSecond())
		}
		cond := fmt.Sprintf("no fault on the call, concurrency %d", c)
		s.row("added p50, µs (proxy + layer vs proxy alone)", cond, added.format(1), "")
		s.row("throughput, proxy + layer / proxy alone", cond, ratio.format(2), "")
		s.row("throughput, proxy + layer / the server without proxy", cond, bare.format(2), "for scale: no link at all")
		if c == 1 {
			s.target("the layer adds ≤ 60 µs p50 at concurrency 1 when no fault acts", added.format(1)+" µs", added.median() <= 60)
		} else {
			s.target("the layer keeps ≥ 70% of the link's throughput at concurrency 32", ratio.format(2), ratio.median() >= 0.7)
		}
	}
	return nil
}

// none is what a measurement that returns only an error gives withFault.
type none = struct{}

// timerLateness sleeps d n times from c goroutines and returns the median
// of how much later than d each woke.
func timerLateness(ctx context.Context, d time.Duration, c, n int) time.Duration {
	var mu sync.Mutex
	var lates []time.Duration
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				t0 := time.Now()
				time.Sleep(d)
				l := time.Since(t0) - d
				mu.Lock()
				lates = append(lates, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(lates) == 0 {
		return 0
	}
	slices.Sort(lates)
	return lates[len(lates)/2]
}
