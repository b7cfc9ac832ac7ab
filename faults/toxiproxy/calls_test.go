package toxiproxy_test

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
)

// grpcServer serves gRPC health checks on loopback until the test ends.
func grpcServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// TestCallFaultInterposesTheLayerAndRemoveRestores applies a grpc-error
// fault on a proxy: its calls fail with the fault's status, the fault
// counts them, and removing the last call-level fault points the proxy
// back at the service, journaled so that Reset would do the same.
func TestCallFaultInterposesTheLayerAndRemoveRestores(t *testing.T) {
	s := startServer(t)
	upstream := grpcServer(t)
	listen, err := s.AddProxy("payment", upstream)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func() error {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	inj := tp.NewInjector(s.URL(), j)
	upstreamOf := func() string {
		ps, err := inj.Proxies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ps["payment"].Upstream
	}

	fail := faults.Fault{Name: "down", Kind: faults.GRPCError, Target: "payment", Attrs: map[string]int64{"probability": faults.FractionOne},
		Text: map[string]string{"method": "grpc.health.v1.Health/Check", "code": "UNAVAILABLE", "message": "injected"}}
	a, err := inj.Apply(t.Context(), fail)
	if err != nil {
		t.Fatal(err)
	}
	if upstreamOf() == upstream {
		t.Fatal("the proxy still points at the service")
	}
	testenv.Eventually(t, 10*time.Second, "calls fail with the fault's status", func() bool {
		err := check()
		return status.Code(err) == codes.Unavailable && status.Convert(err).Message() == "injected"
	})
	// A second call-level fault on the link shares the layer.
	slow := faults.Fault{Name: "slow", Kind: faults.GRPCDelay, Target: "payment", Attrs: map[string]int64{"probability": faults.FractionOne, "latency": 1}}
	b, err := inj.Apply(t.Context(), slow)
	if err != nil {
		t.Fatal(err)
	}
	layerAddr := upstreamOf()
	for range 4 {
		if err := check(); status.Convert(err).Message() != "injected" {
			t.Fatalf("call with the fault on: %v", err)
		}
	}
	if c := inj.Counters("down"); c["faulted"] < 5 || c["calls"] < c["faulted"] {
		t.Fatalf("counters of down: %v", c)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if upstreamOf() != layerAddr {
		t.Fatal("the layer went with one of its two faults")
	}
	if err := check(); err != nil {
		t.Fatalf("with only the delay left: %v", err)
	}
	if err := inj.Remove(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got := upstreamOf(); got != upstream {
		t.Fatalf("after the last removal the proxy points at %s, want %s", got, upstream)
	}
	testenv.Eventually(t, 10*time.Second, "calls reach the service again", func() bool { return check() == nil })
	// The counters outlive the fault, for the report.
	if c := inj.Counters("down"); c["faulted"] < 5 {
		t.Fatalf("counters of down after removal: %v", c)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("journal after removal: %v outstanding (%v)", out, err)
	}
}

// TestPrepareCallsKeepsTheConnection: with the layer interposed before
// the load, a call-level fault coming and going only sets rules: one
// client connection carries every call, before, during and after the
// fault (no proxy restart in the middle), and CloseCalls points the proxy
// back at the service, the counters kept.
func TestPrepareCallsKeepsTheConnection(t *testing.T) {
	s := startServer(t)
	upstream := grpcServer(t)
	listen, err := s.AddProxy("payment", upstream)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	fail := faults.Fault{Name: "down", Kind: faults.GRPCError, Target: "payment", Attrs: map[string]int64{"probability": faults.FractionOne},
		Text: map[string]string{"method": "grpc.health.v1.Health/Check", "code": "UNAVAILABLE", "message": "injected"}}
	bad := fail
	bad.Text = map[string]string{"method": "no-slash", "code": "UNAVAILABLE"}
	if err := inj.PrepareCalls(t.Context(), []faults.Fault{fail, bad}); err == nil {
		t.Fatal("a wrong call fault prepared")
	}
	upstreamOf := func() string {
		ps, err := inj.Proxies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ps["payment"].Upstream
	}
	if upstreamOf() != upstream {
		t.Fatal("a refused PrepareCalls interposed a layer")
	}
	if err := inj.PrepareCalls(t.Context(), []faults.Fault{fail}); err != nil {
		t.Fatal(err)
	}
	layerAddr := upstreamOf()
	if layerAddr == upstream {
		t.Fatal("no layer before the fault")
	}
	var dials atomic.Int32
	conn, err := grpc.NewClient("passthrough:///"+listen, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func() error {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	a, err := inj.Apply(t.Context(), fail)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(); status.Convert(err).Message() != "injected" {
		t.Fatalf("call with the fault on: %v", err)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		t.Fatalf("call after the fault: %v", err)
	}
	if upstreamOf() != layerAddr || dials.Load() != 1 {
		t.Fatalf("proxy upstream %s (layer %s), %d dials: the fault restarted the link", upstreamOf(), layerAddr, dials.Load())
	}
	if err := inj.CloseCalls(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := upstreamOf(); got != upstream {
		t.Fatalf("after CloseCalls the proxy points at %s, want %s", got, upstream)
	}
	if c := inj.Counters("down"); c["calls"] != 1 || c["faulted"] != 1 {
		t.Fatalf("counters of down: %v", c)
	}
}

// TestCallFaultResetAfterCrash: a process that applied a call-level fault
// and died left the proxy pointing at a layer that died with it; Reset
// from the journal points it back.
func TestCallFaultResetAfterCrash(t *testing.T) {
	s := startServer(t)
	upstream := grpcServer(t)
	if _, err := s.AddProxy("payment", upstream); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), j)
	f := faults.Fault{Name: "lost", Kind: faults.GRPCDropResponse, Target: "payment", Attrs: map[string]int64{"probability": faults.FractionOne}}
	if _, err := inj.Apply(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// The crash: nothing removed; another process resets from the journal.

	j2, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if _, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil {
		t.Fatal(err)
	}
	ps, err := tp.NewInjector(s.URL(), nil).Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ps["payment"].Upstream; got != upstream {
		t.Fatalf("after Reset the proxy points at %s, want %s", got, upstream)
	}
	// The dead process's layer is still running in this one: stop it.
	_ = inj.RemoveAll(context.Background())
}

func TestCallFaultRefusesBadAttributes(t *testing.T) {
	s := startServer(t)
	if _, err := s.AddProxy("payment", grpcServer(t)); err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	bad := faults.Fault{Name: "x", Kind: faults.GRPCError, Target: "payment", Attrs: map[string]int64{"probability": faults.FractionOne},
		Text: map[string]string{"code": "UNAVAILABLE", "method": "Charge"}}
	if _, err := inj.Apply(t.Context(), bad); err == nil {
		t.Fatal("a method that is not service/method was applied")
	}
	ps, _ := inj.Proxies(t.Context())
	if _, err := inj.Apply(t.Context(), faults.Fault{Name: "y", Kind: faults.GRPCDelay, Target: "nope",
		Attrs: map[string]int64{"probability": faults.FractionOne, "latency": 1}}); err == nil {
		t.Fatal("a fault on a missing proxy was applied")
	}
	after, _ := inj.Proxies(t.Context())
	if ps["payment"].Upstream != after["payment"].Upstream {
		t.Fatal("a refused fault moved the proxy")
	}
}
