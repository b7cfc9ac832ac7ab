package segment

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// pipe carries the packets one stack sends to the other, applying its
// Rules to each: the wire of one direction.
type pipe struct {
	from, to *channel.Endpoint
	rules    atomic.Pointer[Rules]
	counts   *counts
	rng      *rand.Rand // used by run's goroutine only
	delay    delayLine

	// State of run's goroutine.
	applied     *Rules // the rules the loss model was built for
	loss        lossModel
	lastRelease time.Time // when the last in-order packet leaves
}

// newPipe makes the pipe of one direction (0 or 1) of the segment seeded
// with seed. Each direction draws from a stream of its own, mixed from both,
// so that no two pipes share draws: with seed and seed+1 for the two
// directions, the segment seeded n+1 lost, one way, the very packets the
// segment seeded n lost the other way (seed 21's first draw is a loss at
// 1%, so every segment seeded 20 or 21 lost a handshake packet and waited
// out the 1 s initial retransmission timeout).
func newPipe(from, to *channel.Endpoint, c *counts, seed, direction uint64) *pipe {
	p := &pipe{from: from, to: to, counts: c, rng: rand.New(rand.NewPCG(mix(seed), mix(seed^(direction+1)*0x9e3779b97f4a7c15)))}
	p.rules.Store(&Rules{})
	p.delay = delayLine{wake: make(chan struct{}, 1), deliver: p.deliver}
	return p
}

// mix is SplitMix64's finalizer: nearby inputs give unrelated outputs.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// run moves packets until ctx ends.
func (p *pipe) run(ctx context.Context) {
	for {
		pkt := p.from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		pkt.DecRef()
		p.forward(v, time.Now())
	}
}

// forward applies the rules to one packet: dropped, corrupted, duplicated,
// held, or delivered at once.
func (p *pipe) forward(v *buffer.View, now time.Time) {
	r := p.rules.Load()
	if r != p.applied {
		p.applied = r
		p.loss = lossModel{p: r.Loss, correlation: r.LossCorrelation}
	}
	p.counts.packets.Add(1)
	if (r.MTU > 0 && v.Size() > r.MTU) || p.loss.lose(p.rng) {
		p.counts.dropped.Add(1)
		v.Release()
		return
	}
	if r.Corrupt > 0 && p.rng.Float64() < r.Corrupt && corrupt(v.AsSlice(), r.FixChecksum, p.rng) {
		p.counts.corrupted.Add(1)
	}
	copies := 1
	if r.Duplicate > 0 && p.rng.Float64() < r.Duplicate {
		p.counts.duplicated.Add(1)
		copies = 2
	}
	// The copy is made before the original leaves: once delivered, a
	// view belongs to the receiving stack.
	var dup *buffer.View
	if copies == 2 {
		dup = buffer.NewViewWithData(v.AsSlice())
	}
	p.schedule(v, r, now)
	if dup != nil {
		p.schedule(dup, r, now)
	}
}

// schedule delivers v now or hands it to the delay line.
func (p *pipe) schedule(v *buffer.View, r *Rules, now time.Time) {
	at := now
	if r.Latency > 0 || r.Jitter > 0 {
		d := r.Latency
		if r.Jitter > 0 {
			d += time.Duration(p.rng.Int64N(int64(2*r.Jitter)+1)) - r.Jitter
		}
		if d > 0 {
			at = now.Add(d)
			p.counts.delayed.Add(1)
		}
	}
	if r.Reorder > 0 && p.rng.Float64() < r.Reorder {
		// Held back: it does not move lastRelease, so later packets pass it.
		p.counts.reordered.Add(1)
		p.delay.push(at.Add(r.ReorderDelay), v)
		return
	}
	if at.Before(p.lastRelease) {
		at = p.lastRelease // in order: never before the packet sent before it
	}
	p.lastRelease = at
	if !at.After(now) {
		p.deliver(v)
		return
	}
	p.delay.push(at, v)
}

// deliver hands a packet to the receiving stack, which owns it from then.
func (p *pipe) deliver(v *buffer.View) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	p.to.InjectInbound(ipv4.ProtocolNumber, pkt)
	pkt.DecRef()
}

// corrupt flips one random bit of the TCP payload of the IPv4 packet b and,
// when fix is set, recomputes the TCP checksum so the receiver accepts it.
// It reports false, changing nothing, for a packet without payload.
func corrupt(b []byte, fix bool, rng *rand.Rand) bool {
	ip := header.IPv4(b)
	if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.TCPProtocolNumber {
		return false
	}
	seg := header.TCP(b[ip.HeaderLength():ip.TotalLength()])
	if len(seg) < header.TCPMinimumSize || int(seg.DataOffset()) > len(seg) {
		return false
	}
	payload := seg[seg.DataOffset():]
	if len(payload) == 0 {
		return false
	}
	payload[rng.IntN(len(payload))] ^= 1 << rng.IntN(8)
	if fix {
		seg.SetChecksum(0)
		sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(seg)))
		seg.SetChecksum(^checksum.Checksum(seg, sum))
	}
	return true
}

// delayLine holds packets until their release time.
type delayLine struct {
	mu      sync.Mutex
	held    heldHeap
	seq     uint64
	wake    chan struct{}
	deliver func(*buffer.View)
}

type heldPacket struct {
	at  time.Time
	seq uint64 // ties leave in the order they came
	v   *buffer.View
}

type heldHeap []heldPacket

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(heldPacket)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (d *delayLine) push(at time.Time, v *buffer.View) {
	d.mu.Lock()
	d.seq++
	heap.Push(&d.held, heldPacket{at: at, seq: d.seq, v: v})
	first := d.held[0].seq == d.seq
	d.mu.Unlock()
	if first {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// run releases held packets on time until ctx ends, then frees the rest.
func (d *delayLine) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*buffer.View
	for {
		d.mu.Lock()
		now := time.Now()
		for len(d.held) > 0 && !d.held[0].at.After(now) {
			due = append(due, heap.Pop(&d.held).(heldPacket).v)
		}
		next := time.Hour
		if len(d.held) > 0 {
			next = d.held[0].at.Sub(now)
		}
		d.mu.Unlock()
		for i, v := range due {
			d.deliver(v)
			due[i] = nil
		}
		due = due[:0]
		timer.Reset(next)
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for _, h := range d.held {
				h.v.Release()
			}
			d.held = nil
			d.mu.Unlock()
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}
