package bench

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults"
)

func TestSampleMedianAndFormat(t *testing.T) {
	tests := []struct {
		s      sample
		median float64
		text   string
	}{
		{sample{3, 1, 2}, 2, "2.0 (1.0–3.0)"},
		{sample{4, 1, 3, 2}, 2.5, "2.5 (1.0–4.0)"},
		{sample{7}, 7, "7.0"},
	}
	for _, tt := range tests {
		if got := tt.s.median(); got != tt.median {
			t.Errorf("%v.median() = %v, want %v", tt.s, got, tt.median)
		}
		if got := tt.s.format(1); got != tt.text {
			t.Errorf("%v.format(1) = %q, want %q", tt.s, got, tt.text)
		}
	}
	if got := (sample{}).format(1); got != "–" {
		t.Errorf("empty sample formats as %q", got)
	}
}

// TestWarmUpWaitsForEveryWorker checks that a warm-up whose calls outlast
// warmUpFor still has every worker call once and succeeds (a loaded
// machine is slow, not broken), and that a failing call fails it.
func TestWarmUpWaitsForEveryWorker(t *testing.T) {
	var calls atomic.Int64
	slow := func(ctx context.Context) error {
		calls.Add(1)
		select {
		case <-time.After(warmUpFor + 100*time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := warmUp(t.Context(), 32, slow); err != nil {
		t.Fatalf("warm-up with calls slower than %v: %v", warmUpFor, err)
	}
	if got := calls.Load(); got != 32 {
		t.Errorf("32 workers made %d calls, want one each", got)
	}
	broken := errors.New("connection refused")
	err := warmUp(t.Context(), 4, func(context.Context) error { return broken })
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "warm-up, 4 workers") {
		t.Errorf("warm-up on a failing link: %v, want the call's error wrapped", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Reps: 0, Only: []string{SectionProxy}}, "reps: 0"},
		{Config{Reps: 3, Only: []string{"nope"}}, `section "nope": unknown`},
		{Config{Reps: 3}, "catalogue: no folder"},
		{Config{Reps: 1, Only: []string{SectionSoak}, SoakFor: time.Minute}, "soak: 1m0s, want at least 2m"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want it to mention %q", tt.cfg, err, tt.want)
		}
	}
	if err := (Config{Reps: 3, Catalogue: "experiments"}).Validate(); err != nil {
		t.Errorf("a complete configuration: %v", err)
	}
	if c := (Config{Reps: 3}); c.runs(SectionSoak) || !c.runs(SectionTrace) {
		t.Errorf("with no --only: soak runs %v (want false), trace runs %v (want true)", c.runs(SectionSoak), c.runs(SectionTrace))
	}
}

// TestWithFaultRemovesTheFaultOnError checks that a measurement that fails
// leaves no toxic behind.
func TestWithFaultRemovesTheFaultOnError(t *testing.T) {
	r, err := startRig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	boom := errors.New("boom")
	f := faults.Fault{Name: "t", Kind: faults.Latency, Target: proxyGRPC, Direction: faults.Downstream, Attrs: map[string]int64{"latency": 5}}
	_, err = withFault(t.Context(), r.inj, f, func() (int, error) {
		proxies, err := r.inj.Proxies(t.Context())
		if err != nil {
			return 0, err
		}
		if n := len(proxies[proxyGRPC].Toxics); n != 1 {
			t.Errorf("during the measurement: %d toxics on %s, want 1", n, proxyGRPC)
		}
		return 0, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("withFault returned %v, want the measurement's error", err)
	}
	proxies, err := r.inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(proxies[proxyGRPC].Toxics); n != 0 {
		t.Errorf("after the measurement: %d toxics left on %s", n, proxyGRPC)
	}
}

// TestRigPaths checks every path of the rig: gRPC direct and proxied, the
// echo and the byte server with an exact count.
func TestRigPaths(t *testing.T) {
	ctx := t.Context()
	r, err := startRig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	l, err := closedLoop(ctx, 4, 100*time.Millisecond, 50, func(ctx context.Context) error { return check(ctx, r.proxied) })
	if err != nil {
		t.Fatal(err)
	}
	if l.calls == 0 || l.calls > 50 {
		t.Errorf("closed loop capped at 50 calls made %d", l.calls)
	}
	c, err := dialTCP(ctx, r.echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Errorf("echo through %s: %v", proxyEcho, err)
	}
	if kbps, err := receive(ctx, r.bytesAddr, 100_000); err != nil || kbps <= 0 {
		t.Errorf("receive 100 kB: %v KB/s, %v", kbps, err)
	}
}

// TestRunWritesTheReport runs the proxy section once and checks the
// report: its table, its target and the machine it ran on.
func TestRunWritesTheReport(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for about 10 s")
	}
	r, err := Run(t.Context(), Config{Reps: 1, Only: []string{SectionProxy}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sections) != 1 || len(r.Sections[0].Rows) != 2 || len(r.Sections[0].Targets) != 1 {
		t.Fatalf("sections %+v, want the proxy section with two rows and one target", r.Sections)
	}
	md := string(r.Markdown())
	for _, want := range []string{"# Benchmarks", "CPUs", "## 1. Per-hop proxy overhead", "| concurrency |", "\n| 1 | ", "\n| 32 | ", "proxy hop adds ≤ 15 µs"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
