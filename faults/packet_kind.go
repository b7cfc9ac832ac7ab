package faults

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Attribute units of the packet kinds.
const (
	// PerMillion is a probability stored in parts per million and written
	// as a percentage: 1%, 0.5%, 0.01%.
	PerMillion Unit = "ppm"
	// Choice is one word of the attribute's Choices, stored as its index.
	Choice Unit = "choice"
)

// MaxPacketProbability bounds the probability attributes of the packet
// kinds, 50%: losing more is a partition, and a Gilbert model of a higher
// rate needs a correlation above the rate.
const MaxPacketProbability = 500_000

// PacketKind is the optional capability of a kind that faults/packet
// applies to each packet of a link, in a userspace TCP/IP segment
// interposed between the link's proxy and its upstream.
type PacketKind interface {
	// OnPacket says what a fault with attrs (a value for every attribute,
	// checked) does to the packets of its direction.
	OnPacket(attrs map[string]int64) PacketAction
}

// PacketAction is what a packet fault does to each packet; the zero value
// does nothing. Probabilities are in parts per million.
type PacketAction struct {
	LossPPM, LossCorrelationPPM int64         // long-run loss; P(loss | previous lost), 0: independent
	Delay, Jitter               time.Duration // every packet held Delay ± Jitter, in order
	ReorderPPM                  int64         // held back ReorderDelay, overtaken by the next packets
	ReorderDelay                time.Duration
	DuplicatePPM                int64
	CorruptPPM                  int64 // one bit of the TCP payload flipped
	FixChecksum                 bool  // the flipped bit reaches the application
	MTU                         int64 // larger packets vanish; 0: no limit
}

// probability is the attribute every packet kind but mtu-blackhole takes.
func probability(doc string) Attr {
	return Attr{Name: "probability", Unit: PerMillion, Min: 1, Max: MaxPacketProbability, Required: true, Example: "1%", Doc: doc}
}

// millis converts a millisecond attribute.
func millis(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// Written returns v as an experiment file writes an attribute of unit
// PerMillion ("1%", "0.5%") or Choice (its word); other units as a number.
func (a Attr) Written(v int64) string {
	switch a.Unit {
	case PerMillion:
		return strconv.FormatFloat(float64(v)/1e4, 'f', -1, 64) + "%"
	case Choice:
		if v >= 0 && v < int64(len(a.Choices)) {
			return a.Choices[v]
		}
	}
	return strconv.FormatInt(v, 10)
}

// ParseWritten reads what an experiment file wrote for an attribute of
// unit PerMillion (a percentage with at most four decimals: 1%, 0.25%) or
// Choice (one of its words).
func (a Attr) ParseWritten(s string) (int64, error) {
	switch a.Unit {
	case PerMillion:
		num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
		f, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("%q is not a percentage", s)
		}
		ppm := math.Round(f * 1e4)
		if math.Abs(f*1e4-ppm) > 1e-6 || ppm > math.MaxInt32 {
			return 0, fmt.Errorf("%q has more than four decimals", s)
		}
		return int64(ppm), nil
	case Choice:
		if i := slices.Index(a.Choices, s); i >= 0 {
			return int64(i), nil
		}
		return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(a.Choices, ", "))
	}
	return 0, fmt.Errorf("attribute %s is not written as a word or a percentage", a.Name)
}
