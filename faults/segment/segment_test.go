package segment

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/fallacies/fallacies/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newSegment starts a segment in front of a fresh echo server with the
// given rules on both directions.
func newSegment(t *testing.T, r Rules) *Segment {
	t.Helper()
	s, err := New("127.0.0.1:0", testenv.EchoServer(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Set(r, r); err != nil {
		t.Fatal(err)
	}
	return s
}

// roundTrip sends n random bytes through the segment and returns them as
// echoed, failing the test if they do not all come back within the
// deadline.
func roundTrip(t *testing.T, s *Segment, n int, deadline time.Duration) (sent, got []byte) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	sent = make([]byte, n)
	for i := range sent {
		sent[i] = byte(i*7 + i>>8)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(sent); errc <- err }()
	got = make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %d echoed bytes: %v (counters %+v)", n, err, s.Counters())
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return sent, got
}

func TestCleanSegmentCarriesBytesIntact(t *testing.T) {
	s := newSegment(t, Rules{})
	sent, got := roundTrip(t, s, 1<<20, 30*time.Second)
	if !bytes.Equal(sent, got) {
		t.Fatal("echoed bytes differ")
	}
	c := s.Counters()
	// Retransmissions may still happen (a tail loss probe fires when the
	// machine is slow to answer), so only the wire's own drops are checked.
	if c.Packets < (2<<20)/linkMTU || c.Dropped != 0 {
		t.Fatalf("counters %+v: want at least %d packets, none dropped", c, (2<<20)/linkMTU)
	}
}

func TestLossIsRepairedByTCPRetransmission(t *testing.T) {
	s := newSegment(t, Rules{Loss: 0.05})
	sent, got := roundTrip(t, s, 512<<10, 60*time.Second)
	if !bytes.Equal(sent, got) {
		t.Fatal("echoed bytes differ: TCP should repair loss")
	}
	c := s.Counters()
	if c.Dropped == 0 || c.Retransmits == 0 {
		t.Fatalf("counters %+v: want drops and retransmissions", c)
	}
	if rate := float64(c.Dropped) / float64(c.Packets); rate < 0.02 || rate > 0.10 {
		t.Fatalf("dropped %d of %d packets (%.3f), want about 0.05", c.Dropped, c.Packets, rate)
	}
}

func TestCorruptWithChecksumKeptActsAsLoss(t *testing.T) {
	s := newSegment(t, Rules{Corrupt: 0.05})
	sent, got := roundTrip(t, s, 512<<10, 60*time.Second)
	if !bytes.Equal(sent, got) {
		t.Fatal("echoed bytes differ: the TCP checksum should have caught every flipped bit")
	}
	if c := s.Counters(); c.Corrupted == 0 || c.Retransmits == 0 {
		t.Fatalf("counters %+v: want corrupted packets, dropped by the checksum and sent again", c)
	}
}

func TestCorruptWithChecksumFixedReachesTheApplication(t *testing.T) {
	s := newSegment(t, Rules{Corrupt: 0.05, FixChecksum: true})
	sent, got := roundTrip(t, s, 512<<10, 60*time.Second)
	c := s.Counters()
	if c.Corrupted == 0 {
		t.Fatalf("counters %+v: want corrupted packets", c)
	}
	diff := 0
	for i := range sent {
		if sent[i] != got[i] {
			diff++
		}
	}
	// Every corrupted data packet crossed the wire once, except the few
	// a duplicate or retransmission replaced: most flipped bits arrive.
	if diff == 0 || uint64(diff) > c.Corrupted {
		t.Fatalf("%d bytes differ after %d corrupted packets: want between 1 and %d", diff, c.Corrupted, c.Corrupted)
	}
}

func TestDuplicateAndReorderKeepTheStreamIntact(t *testing.T) {
	s := newSegment(t, Rules{Duplicate: 0.05, Reorder: 0.05, ReorderDelay: 5 * time.Millisecond})
	sent, got := roundTrip(t, s, 512<<10, 60*time.Second)
	if !bytes.Equal(sent, got) {
		t.Fatal("echoed bytes differ")
	}
	if c := s.Counters(); c.Duplicated == 0 || c.Reordered == 0 {
		t.Fatalf("counters %+v: want duplicated and reordered packets", c)
	}
}

func TestDelayAddsLatencyToEveryRoundTrip(t *testing.T) {
	const latency = 40 * time.Millisecond
	s := newSegment(t, Rules{Latency: latency, Jitter: 10 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		// One way each direction, jitter at most 10 ms each way: the delay
		// is a floor, whatever the machine's load.
		if rtt := time.Since(start); rtt < 2*(latency-10*time.Millisecond) {
			t.Fatalf("round trip %d took %v, want at least %v", i, rtt, 2*(latency-10*time.Millisecond))
		}
	}
	if got := s.Counters().Delayed; got < 6 {
		t.Fatalf("%d packets delayed, want at least the 6 of three round trips", got)
	}
}

func TestMTUBlackholeLetsSmallWritesThroughAndStallsLargeOnes(t *testing.T) {
	s := newSegment(t, Rules{MTU: 600})
	sent, got := roundTrip(t, s, 200, 10*time.Second)
	if !bytes.Equal(sent, got) {
		t.Fatal("small write: echoed bytes differ")
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(make([]byte, 4000))
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := io.ReadFull(c, make([]byte, 4000)); err == nil {
		t.Fatalf("read %d bytes of a write larger than the MTU: want a stall", n)
	}
	if s.Counters().Dropped == 0 {
		t.Fatal("no packet dropped by the MTU rule")
	}
}

func TestRemovingTheRulesRestoresTheLink(t *testing.T) {
	s := newSegment(t, Rules{MTU: 600})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(make([]byte, 4000))
	if err := s.Set(Rules{}, Rules{}); err != nil {
		t.Fatal(err)
	}
	// The stalled segments are sent again on the next RTO and now pass.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 4000)); err != nil {
		t.Fatalf("after the rules came off: %v", err)
	}
}

func TestSetRejectsRulesOutOfRange(t *testing.T) {
	s := newSegment(t, Rules{})
	for _, r := range []Rules{{Loss: 1}, {Loss: -0.1}, {Duplicate: 1.5}, {MTU: 20}, {Latency: -1}, {Loss: 0.9, LossCorrelation: 0.5}} {
		if err := s.Set(r, Rules{}); err == nil {
			t.Errorf("Set(%+v) accepted", r)
		}
	}
}

func TestGilbertModelKeepsTheRateAndMakesBursts(t *testing.T) {
	const n = 200_000
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ p, c float64 }{{0.01, 0}, {0.05, 0}, {0.01, 0.5}, {0.05, 0.8}} {
		m := lossModel{p: tc.p, correlation: tc.c}
		lost, afterLoss, lostAfterLoss, prev := 0, 0, 0, false
		for range n {
			l := m.lose(rng)
			if l {
				lost++
			}
			if prev {
				afterLoss++
				if l {
					lostAfterLoss++
				}
			}
			prev = l
		}
		rate := float64(lost) / n
		if rate < tc.p*0.8 || rate > tc.p*1.2 {
			t.Errorf("p=%v c=%v: loss rate %.4f", tc.p, tc.c, rate)
		}
		want := tc.c
		if want == 0 {
			want = tc.p
		}
		if cond := float64(lostAfterLoss) / float64(afterLoss); cond < want*0.7 || cond > want*1.3+0.01 {
			t.Errorf("p=%v c=%v: P(loss | loss) = %.3f, want about %v", tc.p, tc.c, cond, want)
		}
	}
}

// TestPipesOfNearbySeedsDrawApart checks that no two pipes of segments
// seeded n and n+1 draw the same losses (they once did: direction 1 of
// seed n was direction 0 of seed n+1).
func TestPipesOfNearbySeedsDrawApart(t *testing.T) {
	draws := func(seed, direction uint64) []uint64 {
		p := newPipe(nil, nil, &counts{}, seed, direction)
		out := make([]uint64, 8)
		for i := range out {
			out[i] = p.rng.Uint64()
		}
		return out
	}
	seen := map[uint64]string{}
	for seed := range uint64(50) {
		for direction := range uint64(2) {
			for _, d := range draws(seed, direction) {
				where := fmt.Sprintf("seed %d direction %d", seed, direction)
				if other, ok := seen[d]; ok {
					t.Fatalf("%s draws a value %s drew too", where, other)
				}
				seen[d] = where
			}
		}
	}
}
