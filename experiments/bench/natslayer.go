package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/internal/sleep"
)

// NATS-layer section sizes and names.
const (
	natsAccuracyMessages = 10_000
	proxyNATS            = "bench-nats"       // the proxy alone
	proxyNATSLayered     = "bench-nats-layer" // the same with a NATS layer on its upstream
	natsEchoSubject      = "bench.echo"
)

// natsLayer measures the NATS layer of the message-level faults: what it
// costs with no fault (and with a fault on another subject) against the
// same Toxiproxy proxy without it, in one run; how exactly nats-drop draws;
// and the added median of nats-delay with jitter.
func (b *bench) natsLayer(ctx context.Context) (*Section, error) {
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	ns, err := startBenchNATS()
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	upstream := ns.Addr().String()
	plainAddr, err := r.tp.AddProxy(proxyNATS, upstream)
	if err != nil {
		return nil, err
	}
	layeredAddr, err := r.tp.AddProxy(proxyNATSLayered, upstream)
	if err != nil {
		return nil, err
	}
	var layer *natslayer.Layer
	a, err := r.inj.Interpose(ctx, proxyNATSLayered, "bench-nats-layer", faults.LayerFunc(func(up string) (string, error) {
		l, err := natslayer.Listen("127.0.0.1", up)
		layer = l
		if err != nil {
			return "", err
		}
		return l.Addr(), nil
	}))
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = r.inj.Remove(context.WithoutCancel(ctx), a)
		layer.Close()
	}()
	responder, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer responder.Close()
	if _, err := responder.Subscribe(natsEchoSubject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return nil, err
	}
	if err := responder.Flush(); err != nil {
		return nil, err
	}
	s := &Section{
		Title: "NATS layer: message-level faults (faults/natslayer)",
		Intro: "A core NATS request and its reply (16 bytes each way) through a Toxiproxy proxy to an in-process nats-server, " +
			"the responder connected directly; the same proxy with a NATS layer interposed on its upstream, in one run, the paths alternating, " +
			"closed loop on one connection for 2 s per path and repetition. The layer parses every operation of both streams; " +
			"'a rule on another subject' is the cost a link pays for its other subjects while a fault is on.",
		Header: []string{"figure", "condition", "measured: median (range)", "note"},
	}
	if err := b.natsLayerCost(ctx, s, layer, plainAddr, layeredAddr); err != nil {
		return nil, err
	}
	if err := b.natsAccuracy(ctx, s, layer, layeredAddr, ns.ClientURL()); err != nil {
		return nil, err
	}
	if err := b.natsDelay(ctx, s, layer, plainAddr, layeredAddr); err != nil {
		return nil, err
	}
	return s, nil
}

// startBenchNATS starts an in-process nats-server on loopback.
func startBenchNATS() (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats-server not ready in 10s")
	}
	return ns, nil
}

// natsRequests runs a closed loop of requests from c workers on one new
// connection to addr.
func natsRequests(ctx context.Context, addr string, c int, d time.Duration) (loop, error) {
	nc, err := nats.Connect("nats://"+addr, nats.Timeout(5*time.Second))
	if err != nil {
		return loop{}, err
	}
	defer nc.Close()
	body := make([]byte, 16)
	call := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := nc.RequestWithContext(ctx, natsEchoSubject, body)
		return err
	}
	if err := warmUp(ctx, c, call); err != nil {
		return loop{}, err
	}
	return closedLoop(ctx, c, d, 0, call)
}

// natsRequestsEach runs a closed loop of requests from c workers, each
// request on a connection of its own among c, so that no two requests are
// in flight on one connection. With pause, each call first sleeps a pause
// drawn from it, and its time counts the pause.
func natsRequestsEach(ctx context.Context, addr string, c int, d time.Duration, pause func() time.Duration) (loop, error) {
	idle := make(chan *nats.Conn, c)
	defer func() {
		close(idle)
		for nc := range idle {
			nc.Close()
		}
	}()
	for range c {
		nc, err := nats.Connect("nats://"+addr, nats.Timeout(5*time.Second))
		if err != nil {
			return loop{}, err
		}
		idle <- nc
	}
	body := make([]byte, 16)
	call := func(ctx context.Context) error {
		if pause != nil {
			if err := sleep.For(ctx, pause()); err != nil {
				return err
			}
		}
		nc := <-idle
		defer func() { idle <- nc }()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := nc.RequestWithContext(ctx, natsEchoSubject, body)
		return err
	}
	if err := warmUp(ctx, c, call); err != nil {
		return loop{}, err
	}
	return closedLoop(ctx, c, d, 0, call)
}

// natsLayerCost compares the proxy with the proxy and the layer, with no
// rule and with one rule on another subject.
func (b *bench) natsLayerCost(ctx context.Context, s *Section, layer *natslayer.Layer, plainAddr, layeredAddr string) error {
	const round = 2 * time.Second
	conditions := []struct {
		what  string
		rules []natslayer.Rule
	}{
		{"no fault", nil},
		{"a rule on another subject", []natslayer.Rule{{Name: "other", Kind: natslayer.Drop, Subject: "orders.>"}}},
	}
	for _, cond := range conditions {
		if err := layer.SetRules(cond.rules); err != nil {
			return err
		}
		for _, c := range []int{1, 32} {
			var added, ratio, p50 sample
			for rep := range b.cfg.Reps {
				plain, err := natsRequests(ctx, plainAddr, c, round)
				if err != nil {
					return fmt.Errorf("nats proxy alone, c=%d: %w", c, err)
				}
				layered, err := natsRequests(ctx, layeredAddr, c, round)
				if err != nil {
					return fmt.Errorf("nats layer, c=%d: %w", c, err)
				}
				p50 = append(p50, us(plain.p50()))
				added = append(added, us(layered.p50()-plain.p50()))
				ratio = append(ratio, layered.perSecond()/plain.perSecond())
				b.logf("nats layer cost (%s) c=%d rep %d/%d: p50 %.1f µs vs %.1f µs, %.0f vs %.0f requests/s", cond.what, c, rep+1, b.cfg.Reps,
					us(layered.p50()), us(plain.p50()), layered.perSecond(), plain.perSecond())
			}
			label := fmt.Sprintf("%s, concurrency %d", cond.what, c)
			s.row("added p50 of a request, µs (layer vs proxy alone)", label, added.format(1), fmt.Sprintf("proxy alone p50 %s µs", p50.format(1)))
			s.row("requests/s, layer ÷ proxy alone", label, ratio.format(2), "")
			if cond.rules != nil {
				continue
			}
			if c == 1 {
				s.target("the NATS layer with no fault adds ≤ 60 µs p50 to a request at concurrency 1", added.format(1)+" µs", added.median() <= 60)
			} else {
				s.target("the NATS layer with no fault keeps ≥ 0.7 of the throughput at concurrency 32", ratio.format(2), ratio.median() >= 0.7)
			}
		}
	}
	return layer.SetRules(nil)
}

// natsAccuracy publishes natsAccuracyMessages messages through a
// nats-drop at probability 0.1 per repetition and compares the share
// dropped, and what the subscriber got, with the counters.
func (b *bench) natsAccuracy(ctx context.Context, s *Section, layer *natslayer.Layer, layeredAddr, directURL string) error {
	var share sample
	worst := 0.0
	for rep := range b.cfg.Reps {
		// Each repetition has subjects of its own: the connection of the
		// last repetition's subscriber may outlive its Close by a moment
		// (the proxy and the layer close their halves in turn), and the
		// server would deliver this repetition's messages to it too, through
		// the layer, which would count them.
		root := fmt.Sprintf("acc%d", rep)
		if err := layer.SetRules([]natslayer.Rule{{Name: "acc", Kind: natslayer.Drop, Subject: root + ".x", Probability: 0.1, Flow: natslayer.ToClient}}); err != nil {
			return err
		}
		got, err := countThrough(ctx, layeredAddr, directURL, root)
		if err != nil {
			return err
		}
		c := layer.Counters()["acc"]
		if c.Messages != natsAccuracyMessages || got != natsAccuracyMessages-c.Faulted {
			return fmt.Errorf("nats-drop accuracy: the layer saw %d messages and dropped %d, the subscriber got %d of %d", c.Messages, c.Faulted, got, natsAccuracyMessages)
		}
		p := float64(c.Faulted) / float64(c.Messages)
		share = append(share, 100*p)
		worst = max(worst, 100*math.Abs(p-0.1))
		b.logf("nats-drop 10%% rep %d/%d: %d of %d dropped", rep+1, b.cfg.Reps, c.Faulted, c.Messages)
		if err := layer.SetRules(nil); err != nil {
			return err
		}
	}
	s.row("share of messages dropped, %", "nats-drop probability 0.1, 10,000 messages", share.format(2), "the subscriber got exactly the messages not counted as faulted")
	s.target("nats-drop: share faulted within 1.5 points of the probability over 10,000 messages", fmt.Sprintf("worst: %.2f points", worst), worst <= 1.5)
	return nil
}

// countThrough subscribes to root.> through the layer, publishes the
// accuracy messages to root.x directly, and returns how many arrived,
// waiting for an end marker (root.end).
func countThrough(ctx context.Context, layeredAddr, directURL, root string) (int64, error) {
	sub, err := nats.Connect("nats://" + layeredAddr)
	if err != nil {
		return 0, err
	}
	defer sub.Close()
	// One subscription: its messages are handled in order, so the end
	// marker comes after every message counted.
	var got atomic.Int64
	end := make(chan struct{})
	counted, err := sub.Subscribe(root+".>", func(m *nats.Msg) {
		if m.Subject == root+".end" {
			close(end)
			return
		}
		got.Add(1)
	})
	if err != nil {
		return 0, err
	}
	if err := counted.SetPendingLimits(-1, -1); err != nil {
		return 0, err
	}
	if err := sub.Flush(); err != nil {
		return 0, err
	}
	pub, err := nats.Connect(directURL)
	if err != nil {
		return 0, err
	}
	defer pub.Close()
	body := make([]byte, 64)
	for i := range natsAccuracyMessages {
		if err := pub.Publish(root+".x", body); err != nil {
			return 0, err
		}
		if i%1000 == 999 {
			if err := pub.Flush(); err != nil { // bounded in flight: no slow consumer
				return 0, err
			}
		}
	}
	if err := pub.Publish(root+".end", nil); err != nil {
		return 0, err
	}
	select {
	case <-end:
	case <-time.After(30 * time.Second):
		return 0, errors.New("nats-drop accuracy: the end marker did not arrive in 30 s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return got.Load(), nil
}

// natsDelay measures the added median of a request through nats-delay 50
// ms ± 20 ms on the request (drawn per message), two ways, as callDelay
// does for grpc-delay: against undelayed requests in a busy loop, and
// against the same waits made by the client (each request of that loop
// first sleeps a pause drawn from the same 50 ± 20 ms, then goes through
// the layer undelayed), which pays the machine's late wake-ups as the
// layer's timers do. A delay rule keeps the order of the messages it holds
// on a connection, so two requests in flight on one connection would wait
// for each other's draws: both loops run on delayConns connections with
// one request in flight on each, enough of them that the median of the
// draws is known to a fraction of a millisecond (one connection gives
// about 60 draws in 3 s, whose median has a standard error near 2 ms).
func (b *bench) natsDelay(ctx context.Context, s *Section, layer *natslayer.Layer, plainAddr, layeredAddr string) error {
	const latency, jitter, delayConns = 50 * time.Millisecond, 20 * time.Millisecond, 32
	draw := func() time.Duration { return latency - jitter + rand.N(2*jitter+1) }
	defer layer.SetRules(nil)
	var added, beyond sample
	for rep := range b.cfg.Reps {
		if err := layer.SetRules(nil); err != nil {
			return err
		}
		plain, err := natsRequests(ctx, plainAddr, 1, time.Second)
		if err != nil {
			return err
		}
		paced, err := natsRequestsEach(ctx, layeredAddr, delayConns, 3*time.Second, draw)
		if err != nil {
			return err
		}
		if err := layer.SetRules([]natslayer.Rule{{Name: "slow", Kind: natslayer.Delay, Subject: natsEchoSubject, Flow: natslayer.ToServer, Latency: latency, Jitter: jitter}}); err != nil {
			return err
		}
		delayed, err := natsRequestsEach(ctx, layeredAddr, delayConns, 3*time.Second, nil)
		if err != nil {
			return err
		}
		added = append(added, ms(delayed.p50()-plain.p50()))
		beyond = append(beyond, ms(delayed.p50()-paced.p50()))
		b.logf("nats-delay 50±20 ms rep %d/%d: p50 %.2f ms vs %.2f ms; the client's own 50 ± 20 ms waits then undelayed requests %.2f ms",
			rep+1, b.cfg.Reps, ms(delayed.p50()), ms(plain.p50()), ms(paced.p50()))
	}
	errMs := math.Abs(added.median() - ms(latency))
	s.row("added p50 of a request, ms", "nats-delay 50 ms ± 20 ms on the request", added.format(2), fmt.Sprintf("jitter drawn once per message, uniform; %d connections, one request in flight on each", delayConns))
	s.row("delayed median minus the median of the same waits made by the client, ms", "the client's own waits of 50 ± 20 ms, each then an undelayed request", beyond.format(2), "what the layer adds beyond its draw")
	s.target("nats-delay 50 ms ± 20 ms: added p50 within 2% or 1 ms", fmt.Sprintf("+%.2f ms", added.median()), errMs <= max(1, 0.02*ms(latency)))
	s.target("nats-delay adds within 1 ms of its draw: delayed median minus the client's own waits' median", beyond.format(2)+" ms", math.Abs(beyond.median()) <= 1)
	return nil
}
