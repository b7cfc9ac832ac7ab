package toxiproxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
)

// What BENCHMARKS.md promises of an injected fault, and how a test
// measures it: against the same upstream reached through a second proxy
// without the fault, the samples of the two paths taken in turn so that
// whatever else the machine does weighs on both alike, and medians.
const (
	accuracySamples = 21 // pairs of samples of a latency
	latencyShare    = 50 // latency within 1/50 (2%) …
	latencyAbsolute = time.Millisecond
	bandwidthShare  = 0.03 // bandwidth within 3%
	bandwidthReps   = 3
)

// timerFloor measures the machine's timer floor (load.TimerFloor, 1,000
// waits at 1,000/s) while the samples are taken, and returns the function
// that waits for its p50. A toxic delays data on a timer: it cannot be
// more accurate than a timer wakes here and now.
func timerFloor(t *testing.T) func() time.Duration {
	t.Helper()
	done := make(chan load.LatencySummary, 1)
	go func() {
		lag, err := load.TimerFloor(context.Background(), 1000, 1000)
		if err != nil {
			t.Errorf("timer floor: %v", err)
		}
		done <- lag
	}()
	return func() time.Duration { return (<-done).P50 }
}

// latencyBound is how far the added latency may be off the requested one:
// 2% or 1 ms, whichever is larger, plus the timer floor, plus the clean
// path's own scatter (its median over its fastest sample): a difference
// of medians is no finer than the noise the machine puts on one path.
func latencyBound(requested, floor, scatter time.Duration) time.Duration {
	return max(requested/latencyShare, latencyAbsolute) + floor + scatter
}

// median returns the median of d (which it sorts).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// pairedMedians takes n samples of base and of faulty in turn and returns
// their medians and the base path's scatter: its median minus its fastest.
func pairedMedians(n int, base, faulty func() time.Duration) (mb, mf, scatter time.Duration) {
	var bs, fs []time.Duration
	for range n {
		bs = append(bs, base())
		fs = append(fs, faulty())
	}
	mb = median(bs)
	return mb, median(fs), mb - bs[0]
}

// echoOnce sends one byte on c and waits for it to come back.
func echoOnce(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	b := []byte{'x'}
	start := time.Now()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	return time.Since(start)
}

// twoProxies starts a Toxiproxy with proxies "faulty" and "base" in front
// of the same upstream and returns their addresses and an injector.
func twoProxies(t *testing.T, upstream string) (faulty, base string, inj *tp.Injector) {
	t.Helper()
	s := startServer(t)
	faulty, err := s.AddProxy("faulty", upstream)
	if err != nil {
		t.Fatal(err)
	}
	if base, err = s.AddProxy("base", upstream); err != nil {
		t.Fatal(err)
	}
	return faulty, base, tp.NewInjector(s.URL(), nil)
}

// TestLatencyAccuracy checks BENCHMARKS.md's promise on a TCP echo: the
// latency a toxic adds, median of the round trips through the faulty
// proxy minus median through a clean one taken in turn, is the requested
// latency within 2% or 1 ms (plus the timer floor); and once removed it
// adds nothing: round trips are back under the latency the toxic held
// them to.
func TestLatencyAccuracy(t *testing.T) {
	faulty, base, inj := twoProxies(t, echoServer(t))
	cf, cb := dial(t, faulty), dial(t, base)
	for _, c := range []net.Conn{cf, cb} {
		if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		echoOnce(t, c) // connected through, outside the measurement
	}
	const requested = 100 * time.Millisecond
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "slow", Kind: faults.Latency, Target: "faulty", Direction: faults.Downstream,
		Attrs: map[string]int64{"latency": requested.Milliseconds()}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"toxic/fallacies-slow-downstream"}; !equal(a.Handles, want) {
		t.Fatalf("handles = %q, want %q", a.Handles, want)
	}
	floor := timerFloor(t)
	mb, mf, scatter := pairedMedians(accuracySamples, func() time.Duration { return echoOnce(t, cb) }, func() time.Duration { return echoOnce(t, cf) })
	fl := floor()
	added, bound := mf-mb, latencyBound(requested, fl, scatter)
	t.Logf("%v latency: median round trip %v through the toxic, %v beside it (scatter %v): added %v (%+.2f%%); timer floor p50 %v; bound ±%v",
		requested, mf, mb, scatter, added, 100*(float64(added)/float64(requested)-1), fl, bound)
	if d := added - requested; d > bound || d < -bound {
		t.Errorf("added %v for a requested %v: off by %v, want within %v (2%% or 1ms, plus the timer floor %v and the clean path's scatter %v)", added, requested, d, bound, fl, scatter)
	}

	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	var after []time.Duration
	for range 5 {
		after = append(after, echoOnce(t, cf))
	}
	if m := median(after); m >= requested {
		t.Errorf("median round trip after removal = %v, want under the %v the toxic held it to", m, requested)
	}
	// Removing again succeeds: the fault is already gone.
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

// TestLatencyAccuracyOnGRPC checks the same promise on a gRPC call (a
// health check), whose response is three chunks each delayed by the
// toxic, at 200 ms: BENCHMARKS.md measured such a call about 1 ms over
// the toxic at every latency, which 2% of 100 ms would leave no room
// beside the noise.
func TestLatencyAccuracyOnGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("grpc serve: %v", err)
		}
	})
	faulty, base, inj := twoProxies(t, ln.Addr().String())
	check := func(addr string) func() time.Duration {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		client := healthpb.NewHealthClient(cc)
		return func() time.Duration {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health check through %s: %v %v", addr, resp.GetStatus(), err)
			}
			return time.Since(start)
		}
	}
	cf, cb := check(faulty), check(base)
	cf() // connect outside the measurement
	cb()

	const requested = 200 * time.Millisecond
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "lat", Kind: faults.Latency, Target: "faulty",
		Direction: faults.Downstream, Attrs: map[string]int64{"latency": requested.Milliseconds()}})
	if err != nil {
		t.Fatal(err)
	}
	floor := timerFloor(t)
	mb, mf, scatter := pairedMedians(accuracySamples, cb, cf)
	fl := floor()
	added, bound := mf-mb, latencyBound(requested, fl, scatter)
	t.Logf("%v latency on a gRPC call: median %v through the toxic, %v beside it (scatter %v): added %v (%+.2f%%); timer floor p50 %v; bound ±%v",
		requested, mf, mb, scatter, added, 100*(float64(added)/float64(requested)-1), fl, bound)
	if d := added - requested; d > bound || d < -bound {
		t.Errorf("added %v to a gRPC call for a requested %v: off by %v, want within %v (2%% or 1ms, plus the timer floor %v and the clean path's scatter %v)", added, requested, d, bound, fl, scatter)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	var after []time.Duration
	for range 5 {
		after = append(after, cf())
	}
	if m := median(after); m >= requested {
		t.Errorf("median gRPC call after removal = %v, want under the %v the toxic held it to", m, requested)
	}
}

// TestBandwidthAccuracy checks BENCHMARKS.md's promise on bandwidth: a
// payload sized for 1 s at the requested rate, echoed back through a
// proxy whose downstream is limited, arrives at the requested rate within
// 3% (plus one timer floor over the transfer: the toxic corrects its
// sleeps chunk by chunk, all but the last), medians of 3. The rate is read
// the way the load generator's is, over the real first-to-last window:
// the bytes after the first read over the time from the first read to
// the last, which leaves out connecting and the echo's own start. The
// same transfer through a clean proxy, taken in turn, must run far faster
// than the limit: otherwise the machine, not the toxic, set the pace.
func TestBandwidthAccuracy(t *testing.T) {
	faulty, base, inj := twoProxies(t, echoServer(t))
	const rate = 500 // KB/s, 1 KB = 1000 bytes as Toxiproxy counts
	if _, err := inj.Apply(t.Context(), faults.Fault{Name: "bw", Kind: faults.Bandwidth, Target: "faulty",
		Direction: faults.Downstream, Attrs: map[string]int64{"rate": rate}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inj.RemoveAll(context.Background()); err != nil {
			t.Error(err)
		}
	})
	payload := bytes.Repeat([]byte("0123456789"), rate*100) // 1 s worth at the rate
	expected := time.Duration(float64(len(payload)) / (rate * 1000) * float64(time.Second))
	// transfer returns the rate in KB/s over the first-to-last read window.
	transfer := func(addr string) float64 {
		c := dial(t, addr)
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			wrote <- err
		}()
		got := make([]byte, 0, len(payload))
		buf := make([]byte, 64<<10)
		var first, last time.Time
		firstBytes := 0
		for len(got) < len(payload) {
			n, err := c.Read(buf)
			if n > 0 {
				last = time.Now()
				if first.IsZero() {
					first, firstBytes = last, n
				}
				got = append(got, buf[:n]...)
			}
			if err != nil {
				t.Fatalf("read through %s after %d bytes: %v", addr, len(got), err)
			}
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatal("payload corrupted")
		}
		if !last.After(first) {
			return 0 // one read: too fast to time
		}
		return float64(len(payload)-firstBytes) / last.Sub(first).Seconds() / 1000
	}
	floor := timerFloor(t)
	var clean, limited []float64
	for range bandwidthReps {
		clean = append(clean, transfer(base))
		limited = append(limited, transfer(faulty))
	}
	fl := floor()
	slices.Sort(clean)
	slices.Sort(limited)
	mc, measured := clean[len(clean)/2], limited[len(limited)/2]
	errShare := measured/rate - 1
	bound := bandwidthShare + float64(fl)/float64(expected)
	t.Logf("%d KB at %d KB/s: %.1f KB/s through the toxic (%+.2f%%; all %.1f), %.0f KB/s beside it; timer floor p50 %v; bound ±%.2f%%",
		len(payload)/1000, rate, measured, 100*errShare, limited, mc, fl, 100*bound)
	if mc != 0 && mc < 4*rate {
		t.Fatalf("the clean link moved %.0f KB/s, under 4× the %d KB/s limit: the machine, not the toxic, would set the pace", mc, rate)
	}
	if errShare > bound || errShare < -bound {
		t.Errorf("bandwidth %.1f KB/s for a requested %d KB/s: %+.2f%% off, want within %.2f%% (3%% plus the timer floor %v over %v)",
			measured, rate, 100*errShare, 100*bound, fl, expected)
	}
}
