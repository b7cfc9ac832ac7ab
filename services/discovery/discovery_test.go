package discovery_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// jetStream starts nats-server with JetStream in a temporary folder and
// returns a JetStream context on a connection to it.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := testenv.ConnectNATS(t, testenv.StartNATS(t).ClientURL())
	return js
}

// healthServer serves the health service with one service name SERVING.
func healthServer(t *testing.T, name string) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	stop = func() {
		srv.Stop()
		<-done
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func TestResolverFollowsTheRegistry(t *testing.T) {
	js := jetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	kv, err := discovery.Ensure(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	a, stopA := healthServer(t, "a")
	b, _ := healthServer(t, "b")
	if err := discovery.Publish(ctx, kv, "user", a); err != nil {
		t.Fatal(err)
	}
	if got, err := discovery.Lookup(ctx, kv, "user"); err != nil || got != a {
		t.Fatalf("Lookup = %q, %v; want %q", got, err, a)
	}

	conn, err := grpc.NewClient(discovery.Target("user"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(discovery.NewResolver(js, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	serving := func(name string) error {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: name})
		return err
	}
	// Resolved through the registry: a answers.
	if err := serving("a"); err != nil {
		t.Fatalf("first address: %v", err)
	}
	// The service moves: a goes away, the registry names b.
	stopA()
	if err := discovery.Publish(ctx, kv, "user", b); err != nil {
		t.Fatal(err)
	}
	for {
		err := serving("b")
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client never followed the move to b: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestTargetNamesNoService(t *testing.T) {
	js := jetStream(t)
	conn, err := grpc.NewClient(discovery.Scheme+":///",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(discovery.NewResolver(js, nil)))
	if err == nil {
		conn.Connect()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		conn.Close()
	}
	if err == nil {
		t.Fatal("a registry target without a service resolved")
	}
}
