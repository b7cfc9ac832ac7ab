package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/internal/semconv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// Bounds of the full-chain measurements.
const (
	chainClients   = 32
	chainRound     = 3 * time.Second
	chainMaxOrders = 100_000 // per round
	chainHalfRound = 5 * time.Second
)

// chainSystem is an embedded topology, traced or not, and a client of its
// order service.
type chainSystem struct {
	name    string // as the report shows it
	id      string // in order ids
	top     topology.Topology
	capture *tracing.Capture
	tracers *topology.Tracers
	client  orderv1.OrderServiceClient
	conn    interface{ Close() error }
}

// startChain starts the embedded topology with the default knobs. With a
// sampleRatio above 0 (the share of orders traced) every service gets its
// own provider feeding one in-process capture, as the runner traces a run.
func startChain(ctx context.Context, name, id string, sampleRatio float64) (*chainSystem, error) {
	cs := &chainSystem{name: name, id: id}
	opts := topology.Options{System: config.Default()}
	traced := sampleRatio > 0
	if traced {
		cs.capture = tracing.NewCapture(tracing.DefaultCaptureLimit * 5)
		cs.tracers = topology.NewTracers(cs.capture, "").WithSampleRatio(sampleRatio)
		opts.Tracing = cs.tracers.ServeOptions
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	top, err := topology.StartEmbedded(sctx, opts)
	if err != nil {
		cs.stop()
		return nil, fmt.Errorf("start embedded topology: %w", err)
	}
	cs.top = top
	if traced {
		if err := cs.tracers.Err(); err != nil {
			cs.stop()
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	conn, err := serve.Dial(top.Endpoints().Services["order"], serve.Options{})
	if err != nil {
		cs.stop()
		return nil, err
	}
	cs.conn = conn
	cs.client = orderv1.NewOrderServiceClient(conn)
	if err := cs.place(ctx); err != nil {
		cs.stop()
		return nil, fmt.Errorf("first order: %w", err)
	}
	return cs, nil
}

func (cs *chainSystem) stop() {
	if cs.conn != nil {
		_ = cs.conn.Close()
	}
	if cs.top != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_ = cs.top.Stop(ctx)
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cs.tracers.Shutdown(ctx)
}

// place places one order with a fresh id.
func (cs *chainSystem) place(ctx context.Context) error {
	return placeOrder(ctx, cs.client, fmt.Sprintf("bench-%s-%d", cs.id, time.Now().UnixNano()))
}

func placeOrder(ctx context.Context, c orderv1.OrderServiceClient, id string) error {
	return placeOrderAs(ctx, c, id, semconv.UserID(1))
}

// placeOrderAs places one order for user: the saturation rounds spread
// their orders over chainClients users, since order publishes a user's
// events one at a time (their account versions follow the stream's order)
// and one user's orders would measure that queue, not the chain.
func placeOrderAs(ctx context.Context, c orderv1.OrderServiceClient, id, user string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		OrderId: id, UserId: user, AmountCents: 1999, CardNumber: load.TestCard,
	})
	return err
}

// saturate drives PlaceOrder from chainClients closed-loop clients for
// chainRound and returns the round and the process CPU time it took.
func (cs *chainSystem) saturate(ctx context.Context, round int) (loop, time.Duration, error) {
	l, cpu, err := cs.saturateFor(ctx, fmt.Sprint(round), chainRound)
	if cs.capture != nil {
		cs.capture.Reset()
	}
	return l, cpu, err
}

// saturateFor drives PlaceOrder from chainClients closed-loop clients for
// d (at most chainMaxOrders orders) with order ids named after round, and
// returns the round and the process CPU time it took.
func (cs *chainSystem) saturateFor(ctx context.Context, round string, d time.Duration) (loop, time.Duration, error) {
	var n atomic.Int64
	prefix := fmt.Sprintf("bench-%s-sat%s-%d", cs.id, round, time.Now().UnixNano())
	cpu0 := processCPU()
	l, err := closedLoop(ctx, chainClients, d, chainMaxOrders, func(ctx context.Context) error {
		k := n.Add(1)
		return placeOrderAs(ctx, cs.client, fmt.Sprintf("%s-%d", prefix, k), semconv.UserID(1+int(k%chainClients)))
	})
	return l, processCPU() - cpu0, err
}

// fullChain measures orders per second at saturation on the embedded
// topology untraced, traced and traced with sampling, each on a fresh
// topology and taking turns so that other load on the machine hits all
// alike, and p50/p99 of each at half its saturation rate.
func (b *bench) fullChain(ctx context.Context) ([]*Section, error) {
	s, err := b.fullChainFresh(ctx)
	if err != nil {
		return nil, err
	}
	over, err := b.overTime(ctx)
	if err != nil {
		return nil, err
	}
	return []*Section{s, over}, nil
}

// fullChainFresh is section 4: every measurement on a fresh topology.
func (b *bench) fullChainFresh(ctx context.Context) (*Section, error) {
	configs := []struct {
		name, id string
		ratio    float64
	}{{"off", "off", 0}, {"on", "on", 1}, {"on, 10% sampled", "sampled", 0.1}}
	s := &Section{
		Title: "4. Full chain",
		Intro: fmt.Sprintf("PlaceOrder on the embedded topology with the default (resilient) knobs: order → user → payment → NATS JetStream → notification and ledger, every link through Toxiproxy. "+
			"Every measurement starts a fresh topology (the system slows as its stream and ledgers grow, which would favour whichever ran first), and the configurations take turns in a rotating order. "+
			"Saturation: %d closed-loop clients for %v. \"on\" records every span, the way an experiment run traces; \"10%% sampled\" starts a trace for one order in ten. "+
			"CPU is this process's user+system time per order (every service, the clients and the infrastructure share it). Half rate: the open-loop generator at half the saturation rate just measured, for %v.",
			chainClients, chainRound, chainHalfRound),
		Header: []string{"tracing", "saturation orders/s", "CPU µs/order", "p50 ms at half rate", "p99 ms at half rate", "half rate /s"},
	}
	n := len(configs)
	tput, cpu, p50, p99, half := make([]sample, n), make([]sample, n), make([]sample, n), make([]sample, n), make([]sample, n)
	var ratio, cpuRatio sample
	for rep := range b.cfg.Reps {
		got, used := make([]float64, n), make([]float64, n)
		for k := range n {
			i := (k + rep) % n // rotate which configuration goes first
			c := configs[i]
			sys, err := startChain(ctx, c.name, c.id, c.ratio)
			if err != nil {
				return nil, err
			}
			l, cpuTime, err := sys.saturate(ctx, rep)
			if err != nil {
				sys.stop()
				return nil, fmt.Errorf("saturate %s: %w", c.name, err)
			}
			got[i], used[i] = l.perSecond(), us(cpuTime)/float64(l.calls)
			tput[i], cpu[i] = append(tput[i], got[i]), append(cpu[i], used[i])

			rate := float64(int(got[i] / 2))
			res, err := runLoad(ctx, rate, chainHalfRound, load.NewOrderDoer(sys.client, 5*time.Second))
			sys.stop()
			if err != nil {
				return nil, err
			}
			all := res.Phases[load.PhaseAll].Total
			if bad := all.ErrorCount(); bad > 0 {
				return nil, fmt.Errorf("half rate on %s: %d of %d orders failed: %v", c.name, bad, all.Requests, all.Errors)
			}
			p50[i], p99[i], half[i] = append(p50[i], ms(all.P50())), append(p99[i], ms(all.P99())), append(half[i], rate)
			b.logf("chain tracing %s rep %d/%d: %.0f orders/s, %.0f CPU µs/order; at %.0f/s p50 %.2f ms, p99 %.2f ms",
				c.name, rep+1, b.cfg.Reps, got[i], used[i], rate, ms(all.P50()), ms(all.P99()))
		}
		ratio, cpuRatio = append(ratio, got[1]/got[0]), append(cpuRatio, used[1]/used[0])
	}
	for i, c := range configs {
		s.row(c.name, tput[i].format(0), cpu[i].format(0), p50[i].format(2), p99[i].format(2), half[i].format(0))
	}
	s.row("on ÷ off", ratio.format(2), cpuRatio.format(2), "", "", "")
	s.target("full chain ≥ 3,000 orders/s with tracing on", tput[1].format(0)+" orders/s", tput[1].median() >= 3000)
	s.target("tracing costs ≤ 20% of throughput", fmt.Sprintf("on ÷ off = %s", ratio.format(2)), ratio.median() >= 0.8)
	return s, nil
}

// overTimeRounds is how many saturation rounds overTime runs on one topology.
const overTimeRounds = 10

// overTime saturates one untraced embedded topology for overTimeRounds
// consecutive rounds and reads the process's live heap after each (after a
// forced collection): a system whose state grows with the orders it has
// seen slows down and fills its heap round after round.
func (b *bench) overTime(ctx context.Context) (*Section, error) {
	s := &Section{
		Title: "4b. Full chain over time",
		Intro: fmt.Sprintf("%d consecutive saturation rounds (%d closed-loop clients, %v each) on one untraced embedded topology, as in section 4 but never restarted; "+
			"the heap is this process's live heap after a forced collection at the end of each round (every service, NATS and Toxiproxy share it). "+
			"One run: the rounds are the repetitions.", overTimeRounds, chainClients, chainRound),
		Header: []string{"round", "orders placed so far", "saturation orders/s", "CPU µs/order", "heap after the round MB"},
	}
	sys, err := startChain(ctx, "over time", "overtime", 0)
	if err != nil {
		return nil, err
	}
	defer sys.stop()
	var total, totalAtRound2 int64
	var heldAtRound2, heldAtLast map[string]float64
	rates, heaps := make([]float64, overTimeRounds), make([]float64, overTimeRounds)
	for i := range overTimeRounds {
		l, cpu, err := sys.saturate(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i+1, err)
		}
		total += l.calls
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if err := b.saveHeapProfile(fmt.Sprintf("heap-round-%02d.pb.gz", i+1)); err != nil {
			return nil, err
		}
		switch i {
		case 1:
			totalAtRound2 = total
			heldAtRound2, err = heapByHolder()
		case overTimeRounds - 1:
			heldAtLast, err = heapByHolder()
		}
		if err != nil {
			return nil, err
		}
		rates[i], heaps[i] = l.perSecond(), float64(m.HeapAlloc)/(1<<20)
		s.row(fmt.Sprint(i+1), fmt.Sprint(total), fmt.Sprintf("%.0f", rates[i]), fmt.Sprintf("%.0f", us(cpu)/float64(l.calls)), fmt.Sprintf("%.1f", heaps[i]))
		b.logf("chain over time round %d/%d: %.0f orders/s, heap %.1f MB", i+1, overTimeRounds, rates[i], heaps[i])
	}
	last := overTimeRounds - 1
	s.Notes = append(s.Notes, heapGrowthNote(heldAtRound2, heldAtLast, total-totalAtRound2, overTimeRounds))
	s.target(fmt.Sprintf("%d rounds on one topology: the last ≥ 0.95 × the first", overTimeRounds),
		fmt.Sprintf("%.0f → %.0f orders/s (× %.2f)", rates[0], rates[last], rates[last]/rates[0]), rates[last] >= 0.95*rates[0])
	s.target(fmt.Sprintf("heap after round %d within 1.5 × round 2's", overTimeRounds),
		fmt.Sprintf("%.1f MB vs %.1f MB (× %.2f)", heaps[last], heaps[1], heaps[last]/heaps[1]), heaps[last] <= 1.5*heaps[1])
	return s, nil
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
