package bench

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/segment"
	"github.com/fallacies/fallacies/internal/kernellink"
)

// Packet-section sizes: the accuracy figures count at least
// accuracyPackets packets; goodput is that of one transfer of
// goodputBytes.
const (
	accuracyPackets = 100_000
	goodputBytes    = 10 << 20
	proxySegmented  = "bench-grpc-segment"
)

// packetFaults measures the userspace segment of the packet faults: how
// exactly it draws its faults, what loss does to a small call and to a
// transfer, what the segment costs when no fault is on, and how fast
// removing a fault restores the link.
func (b *bench) packetFaults(ctx context.Context) (*Section, error) {
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	s := &Section{
		Title: "Packet faults: the userspace segment (faults/segment)",
		Intro: "Two gVisor netstack TCP/IP stacks joined by a wire of 1500-byte packets, in front of the rig's servers. " +
			"Accuracy counts the packets of repeated 10 MB transfers until at least 100,000 crossed the wire; " +
			"behaviour is a closed loop of health checks (concurrency 1, 3 s) and one 10 MB transfer per loss rate, each on a new link, " +
			"through the segment (gVisor's TCP: SACK, RACK with tail-loss probes, NewReno, minimum RTO 200 ms) and through the kernel reference " +
			"(internal/kernellink: a test host in a network namespace reached through a router namespace whose nftables drops `numgen random mod 10000 < N` " +
			"of the TCP packets it forwards both ways, one MSS per packet, a relay in the test host to the same upstream, Linux's TCP with CUBIC) in the same run; " +
			"cost compares a Toxiproxy proxy with the same proxy with a segment interposed on its upstream, in one run.",
		Header: []string{"figure", "condition", "measured: median (range)", "note"},
	}
	if err := b.packetAccuracy(ctx, r, s); err != nil {
		return nil, err
	}
	if err := b.packetBehaviour(ctx, r, s); err != nil {
		return nil, err
	}
	if err := b.segmentCost(ctx, r, s); err != nil {
		return nil, err
	}
	if err := b.packetRollback(ctx, r, s); err != nil {
		return nil, err
	}
	return s, nil
}

// newSegment starts a segment in front of upstream with rules on both
// directions; close it.
func newSegment(upstream string, rules segment.Rules, seed uint64) (*segment.Segment, error) {
	seg, err := segment.New("127.0.0.1:0", upstream, seed)
	if err != nil {
		return nil, err
	}
	if err := seg.Set(rules, rules); err != nil {
		seg.Close()
		return nil, err
	}
	return seg, nil
}

// packetAccuracy draws each fault over at least accuracyPackets packets
// and compares the measured share with the requested probability.
func (b *bench) packetAccuracy(ctx context.Context, r *rig, s *Section) error {
	cases := []struct {
		what  string
		p     float64
		rules segment.Rules
		count func(segment.Counters) uint64
	}{
		{"loss", 0.005, segment.Rules{Loss: 0.005}, func(c segment.Counters) uint64 { return c.Dropped }},
		{"loss", 0.01, segment.Rules{Loss: 0.01}, func(c segment.Counters) uint64 { return c.Dropped }},
		{"loss", 0.05, segment.Rules{Loss: 0.05}, func(c segment.Counters) uint64 { return c.Dropped }},
		{"loss, correlation 50%", 0.01, segment.Rules{Loss: 0.01, LossCorrelation: 0.5}, func(c segment.Counters) uint64 { return c.Dropped }},
		{"duplicate", 0.01, segment.Rules{Duplicate: 0.01}, func(c segment.Counters) uint64 { return c.Duplicated }},
		{"reorder (5 ms)", 0.01, segment.Rules{Reorder: 0.01, ReorderDelay: 5 * time.Millisecond}, func(c segment.Counters) uint64 { return c.Reordered }},
	}
	worst := 0.0
	for _, tc := range cases {
		var share sample
		var packets uint64
		for rep := range b.cfg.Reps {
			seg, err := newSegment(r.bytesAddr, tc.rules, uint64(rep+1))
			if err != nil {
				return err
			}
			deadline := time.Now().Add(2 * time.Minute)
			for seg.Counters().Packets < accuracyPackets && time.Now().Before(deadline) {
				if _, err := receive(ctx, seg.Addr(), goodputBytes); err != nil {
					seg.Close()
					return fmt.Errorf("%s %.1f%%: %w", tc.what, tc.p*100, err)
				}
			}
			c := seg.Counters()
			seg.Close()
			if c.Packets < accuracyPackets {
				return fmt.Errorf("%s %.1f%%: only %d packets in 2 minutes", tc.what, tc.p*100, c.Packets)
			}
			got := float64(tc.count(c)) / float64(c.Packets)
			share = append(share, got*100)
			packets = c.Packets
			worst = max(worst, abs(got-tc.p)*100)
			b.logf("packet accuracy %s %.1f%% rep %d/%d: %.3f%% of %d packets", tc.what, tc.p*100, rep+1, b.cfg.Reps, got*100, c.Packets)
		}
		s.row("share of packets, %", fmt.Sprintf("%s %.1f%%", tc.what, tc.p*100), share.format(3), fmt.Sprintf("last repetition: %d packets", packets))
	}
	s.target("every measured share within 0.3 points of the requested probability", fmt.Sprintf("worst: %.3f points", worst), worst <= 0.3)
	return nil
}

// packetBehaviour measures a small call's latency and a transfer's goodput
// through the segment at each loss rate and, where the machine allows it
// (kernellink.Available), through the kernel reference under the same
// loss in the same run: a network namespace whose nftables drops the
// packets, so that the Linux kernel's TCP repairs them.
func (b *bench) packetBehaviour(ctx context.Context, r *rig, s *Section) error {
	kernel := kernellink.Available() == ""
	if !kernel {
		s.note("No kernel reference on this machine (%s): the segment's figures stand alone.", kernellink.Available())
	}
	for _, loss := range []float64{0, 0.005, 0.01, 0.05} {
		seg, err := b.lossBehaviour(ctx, r, loss, "segment", func(upstream string, seed uint64) (lossyLink, error) {
			return newSegment(upstream, segment.Rules{Loss: loss}, seed)
		})
		if err != nil {
			return err
		}
		cond := fmt.Sprintf("loss %.1f%%", loss*100)
		if !kernel {
			s.row("health check p50, ms", cond, seg.p50.format(2), "")
			s.row("health check p99, ms", cond, seg.p99.format(2), "")
			s.row("10 MB goodput, MB/s", cond, seg.goodput.format(1), "")
			if loss > 0 {
				s.row("RTO expiries in the 10 MB transfer", cond, seg.rto.format(0), "")
			}
			continue
		}
		ker, err := b.lossBehaviour(ctx, r, loss, "kernel", func(upstream string, _ uint64) (lossyLink, error) {
			l, err := kernellink.New(upstream)
			if err != nil {
				return nil, err
			}
			if err := l.SetLoss(loss); err != nil {
				l.Close()
				return nil, err
			}
			return l, nil
		})
		if err != nil {
			return err
		}
		ratio := func(a, k sample) string { return fmt.Sprintf("segment/kernel %.2f×", a.median()/k.median()) }
		for _, f := range []struct {
			figure    string
			seg, ker  sample
			precision int
		}{
			{"health check p50, ms", seg.p50, ker.p50, 2},
			{"health check p99, ms", seg.p99, ker.p99, 2},
			{"10 MB goodput, MB/s", seg.goodput, ker.goodput, 1},
		} {
			s.row(f.figure, cond+", segment", f.seg.format(f.precision), ratio(f.seg, f.ker))
			s.row(f.figure, cond+", kernel (netns + nft)", f.ker.format(f.precision), "")
		}
		if loss > 0 {
			s.row("RTO expiries in the 10 MB transfer", cond+", segment", seg.rto.format(0), "")
			s.row("RTO expiries in the 10 MB transfer", cond+", kernel (netns + nft)", ker.rto.format(0), "")
			s.row("dropped/packets, % (kernel's nft counters)", cond+", kernel (netns + nft)", ker.dropped.format(2), "")
		}
	}
	return nil
}

// lossyLink is a link that loses packets: a segment or the kernel
// reference.
type lossyLink interface {
	Addr() string
	Close() error
}

// behaviour is what one kind of lossy link did at one loss rate, by
// repetition.
type behaviour struct{ p50, p99, goodput, rto, dropped sample }

// lossBehaviour measures health checks (concurrency 1, 3 s) and one 10 MB
// transfer through links made by open, each on a link of its own.
func (b *bench) lossBehaviour(ctx context.Context, r *rig, loss float64, what string, open func(upstream string, seed uint64) (lossyLink, error)) (behaviour, error) {
	var out behaviour
	for rep := range b.cfg.Reps {
		callLink, err := open(r.grpcAddr, uint64(rep+10))
		if err != nil {
			return out, err
		}
		l, err := healthLoop(ctx, callLink.Addr(), 1, 3*time.Second)
		callLink.Close()
		if err != nil {
			return out, fmt.Errorf("%s, loss %.1f%%: calls: %w", what, loss*100, err)
		}
		bytesLink, err := open(r.bytesAddr, uint64(rep+20))
		if err != nil {
			return out, err
		}
		kbps, err := receive(ctx, bytesLink.Addr(), goodputBytes)
		var rto uint64
		if err == nil {
			rto, err = transferFigures(bytesLink, &out)
		}
		bytesLink.Close()
		if err != nil {
			return out, fmt.Errorf("%s, loss %.1f%%: transfer: %w", what, loss*100, err)
		}
		out.p50, out.p99, out.goodput = append(out.p50, ms(l.p50())), append(out.p99, ms(l.p99())), append(out.goodput, kbps/1000)
		b.logf("packet loss %.1f%% %s rep %d/%d: call p50 %.2f ms p99 %.2f ms, 10 MB at %.1f MB/s, %d RTO expiries", loss*100, what, rep+1, b.cfg.Reps, ms(l.p50()), ms(l.p99()), kbps/1000, rto)
	}
	return out, nil
}

// transferFigures reads what the link that carried one transfer counted:
// its sender's RTO expiries (the segment's two stacks, or the kernel's
// test host, which sends the transfer) and, for the kernel, the share of
// packets its firewall dropped. It adds them to out and returns the RTO
// expiries.
func transferFigures(link lossyLink, out *behaviour) (uint64, error) {
	switch l := link.(type) {
	case *segment.Segment:
		rto := l.Counters().Timeouts
		out.rto = append(out.rto, float64(rto))
		return rto, nil
	case *kernellink.Link:
		tcp, err := l.TCP()
		if err != nil {
			return 0, err
		}
		c, err := l.Counters()
		if err != nil {
			return 0, err
		}
		if c.Packets > 0 {
			out.dropped = append(out.dropped, 100*float64(c.Dropped)/float64(c.Packets))
		}
		out.rto = append(out.rto, float64(tcp.Timeouts))
		return tcp.Timeouts, nil
	}
	return 0, nil
}

// healthLoop runs a closed loop of health checks on a new connection to
// addr.
func healthLoop(ctx context.Context, addr string, c int, d time.Duration) (loop, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return loop{}, err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	call := func(ctx context.Context) error { return check(ctx, client) }
	if err := warmUp(ctx, c, call); err != nil {
		return loop{}, err
	}
	return closedLoop(ctx, c, d, 0, call)
}

// oneCall makes one health check on a new connection to addr, within 5 s.
func oneCall(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	return check(ctx, healthpb.NewHealthClient(conn))
}

// segmentCost compares a proxy with the same proxy with a clean segment
// on its upstream.
func (b *bench) segmentCost(ctx context.Context, r *rig, s *Section) error {
	listen, err := r.tp.AddProxy(proxySegmented, r.grpcAddr)
	if err != nil {
		return err
	}
	var seg *segment.Segment
	a, err := r.inj.Interpose(ctx, proxySegmented, "bench-segment", faults.LayerFunc(func(upstream string) (string, error) {
		seg, err = newSegment(upstream, segment.Rules{}, 1)
		if err != nil {
			return "", err
		}
		return seg.Addr(), nil
	}))
	if err != nil {
		return err
	}
	defer func() {
		_ = r.inj.Remove(context.WithoutCancel(ctx), a)
		seg.Close()
	}()
	const round = 2 * time.Second
	for _, c := range []int{1, 32} {
		var added, ratio sample
		for rep := range b.cfg.Reps {
			plain, err := healthLoop(ctx, r.proxyAddr, c, round)
			if err != nil {
				return err
			}
			segmented, err := healthLoop(ctx, listen, c, round)
			if err != nil {
				return err
			}
			added = append(added, us(segmented.p50()-plain.p50()))
			ratio = append(ratio, segmented.perSecond()/plain.perSecond())
			b.logf("segment cost c=%d rep %d/%d: p50 %.1f µs vs %.1f µs, %.0f vs %.0f calls/s", c, rep+1, b.cfg.Reps,
				us(segmented.p50()), us(plain.p50()), segmented.perSecond(), plain.perSecond())
		}
		cond := fmt.Sprintf("no fault, concurrency %d", c)
		s.row("added p50, µs (segment vs proxy alone)", cond, added.format(1), "")
		s.row("throughput, segment/proxy alone", cond, ratio.format(2), "")
		if c == 1 {
			s.target("a clean segment adds ≤ 100 µs p50 at concurrency 1", added.format(1)+" µs", added.median() <= 100)
		} else {
			s.target("a clean segment keeps ≥ 50% of the throughput at concurrency 32", ratio.format(2), ratio.median() >= 0.5)
		}
	}
	return nil
}

// packetRollback times how long after its rules come off a segment that
// dropped every data packet carries a call on a new connection.
func (b *bench) packetRollback(ctx context.Context, r *rig, s *Section) error {
	var took sample
	for rep := range b.cfg.Reps {
		seg, err := newSegment(r.grpcAddr, segment.Rules{MTU: 68}, uint64(rep+30))
		if err != nil {
			return err
		}
		removed := time.Now()
		if err := seg.Set(segment.Rules{}, segment.Rules{}); err != nil {
			seg.Close()
			return err
		}
		err = oneCall(ctx, seg.Addr())
		seg.Close()
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		took = append(took, ms(time.Since(removed)))
	}
	s.row("rules off → first call on a new connection, ms", "all data dropped (mtu 68), then removed", took.format(1), "")
	s.target("removing a packet fault restores the link within 1 s", took.format(1)+" ms", took.median() < 1000)
	return nil
}
