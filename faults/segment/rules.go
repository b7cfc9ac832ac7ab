package segment

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Rules are the packet faults applied to one direction of a segment. The
// zero Rules pass every packet untouched and at once.
type Rules struct {
	// Loss is the long-run fraction of packets dropped, in [0, 1).
	Loss float64
	// LossCorrelation is the probability that a packet is lost given that
	// the one before it was (a Gilbert model: a lossy state that drops
	// every packet and a clear one that drops none). 0, or a value equal
	// to Loss, is independent loss; a higher value makes bursts whose mean
	// length is 1/(1-LossCorrelation) while Loss stays the long-run rate.
	LossCorrelation float64

	// Latency delays every packet; Jitter adds a uniform spread of
	// ±Jitter. Packets stay in order: a packet never leaves before the
	// one sent before it, unless Reorder holds it back.
	Latency, Jitter time.Duration

	// Reorder is the probability that a packet is held back ReorderDelay
	// more than the others, so the packets sent after it overtake it.
	Reorder      float64
	ReorderDelay time.Duration

	// Duplicate is the probability that a packet is delivered twice.
	Duplicate float64

	// Corrupt is the probability that a packet carrying data has one bit
	// of its TCP payload flipped. With FixChecksum false the TCP checksum
	// no longer matches and the receiving stack drops the packet (it acts
	// as loss); with FixChecksum true the checksum is recomputed and the
	// flipped bit reaches the application.
	Corrupt     float64
	FixChecksum bool

	// MTU, when positive, drops silently every packet larger than MTU
	// bytes (IP header included): a path MTU black hole.
	MTU int
}

// Validate reports the first value out of range.
func (r Rules) Validate() error {
	probs := []struct {
		name string
		p    float64
	}{{"loss", r.Loss}, {"loss correlation", r.LossCorrelation}, {"reorder", r.Reorder}, {"duplicate", r.Duplicate}, {"corrupt", r.Corrupt}}
	for _, p := range probs {
		if !(p.p >= 0 && p.p < 1) {
			return fmt.Errorf("segment: %s probability %v is outside [0, 1)", p.name, p.p)
		}
	}
	if r.LossCorrelation > 0 && r.Loss*(1-r.LossCorrelation) > 1-r.Loss {
		return fmt.Errorf("segment: loss correlation %v too low for loss %v: no Gilbert model has that long-run rate", r.LossCorrelation, r.Loss)
	}
	if r.Latency < 0 || r.Jitter < 0 || r.ReorderDelay < 0 || r.MTU < 0 {
		return fmt.Errorf("segment: negative latency, jitter, reorder delay or MTU")
	}
	if r.MTU > 0 && r.MTU < minMTU {
		return fmt.Errorf("segment: MTU %d below %d, the smallest packet TCP can make progress with", r.MTU, minMTU)
	}
	return nil
}

// minMTU is the smallest MTU a rule may set: an IPv4 and a TCP header with
// room for SYN options.
const minMTU = 68

// Merge returns r with every field that other sets (non-zero) taken from
// other: how several packet faults on one link combine.
func (r Rules) Merge(other Rules) Rules {
	if other.Loss > 0 {
		r.Loss, r.LossCorrelation = other.Loss, other.LossCorrelation
	}
	if other.Latency > 0 || other.Jitter > 0 {
		r.Latency, r.Jitter = other.Latency, other.Jitter
	}
	if other.Reorder > 0 {
		r.Reorder, r.ReorderDelay = other.Reorder, other.ReorderDelay
	}
	if other.Duplicate > 0 {
		r.Duplicate = other.Duplicate
	}
	if other.Corrupt > 0 {
		r.Corrupt, r.FixChecksum = other.Corrupt, other.FixChecksum
	}
	if other.MTU > 0 {
		r.MTU = other.MTU
	}
	return r
}

// lossModel draws losses from a two-state Gilbert model. With no
// correlation it draws independent losses.
type lossModel struct {
	p, correlation float64
	lossy          bool // the state after the last draw
}

// lose reports whether the next packet is lost.
func (m *lossModel) lose(rng *rand.Rand) bool {
	if m.p <= 0 {
		return false
	}
	c := m.correlation
	if c <= 0 {
		return rng.Float64() < m.p
	}
	// Stay lossy with probability c; enter the lossy state with the
	// probability that keeps the stationary loss rate at p:
	// q/(q+1-c) = p  =>  q = p(1-c)/(1-p).
	if m.lossy {
		m.lossy = rng.Float64() < c
	} else {
		m.lossy = rng.Float64() < m.p*(1-c)/(1-m.p)
	}
	return m.lossy
}
