package topology

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startNATS starts nats-server with JetStream in a fresh temporary
// directory and waits until it accepts connections. The returned stop
// shuts it down and removes the directory. With a server TLS configuration
// (tlsConf, at most one) every client must speak TLS and, when the
// configuration requires it, show a client certificate.
func startNATS(ctx context.Context, host string, port int, tlsConf ...*tls.Config) (*server.Server, func(), error) {
	dir, err := os.MkdirTemp("", "fallacies-jetstream-")
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream store: %w", err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "fallacies",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		// The HTTP monitor and cluster ports stay off: nothing else listens.
	}
	if len(tlsConf) > 0 && tlsConf[0] != nil {
		opts.TLSConfig = tlsConf[0]
		opts.TLSTimeout = 2
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("nats-server: %w", err)
	}
	stop := func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
	}
	go ns.Start()
	// ReadyForConnections(d) polls in 25 ms steps for d > 25 ms: poll it
	// ourselves in small steps.
	deadline := time.Now().Add(10 * time.Second)
	for !ns.ReadyForConnections(time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, errors.New("nats-server did not accept connections within 10s")
		}
		if err := ctx.Err(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("nats-server not ready: %w", err)
		}
	}
	return ns, stop, nil
}

// natsURL is the client URL of a nats-server.
func natsURL(ns *server.Server) string {
	addr := ns.Addr().(*net.TCPAddr)
	return "nats://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
}

// waitHealthy polls the standard gRPC health service at addr until it
// answers SERVING or ctx ends. It dials with creds (at most one; none or
// nil means plaintext).
func waitHealthy(ctx context.Context, addr string, creds ...credentials.TransportCredentials) error {
	tc := insecure.NewCredentials()
	if len(creds) > 0 && creds[0] != nil {
		tc = creds[0]
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(tc))
	if err != nil {
		return fmt.Errorf("health check %s: %w", addr, err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	var last error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		resp, err := client.Check(callCtx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("status %s", resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w (last: %v)", addr, ctx.Err(), last)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitReady waits for a service's ready channel, at most 10 s.
func waitReady(ctx context.Context, name string, ready <-chan struct{}) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s not ready: %w", name, ctx.Err())
	case <-t.C:
		return fmt.Errorf("%s did not subscribe to NATS within 10s", name)
	}
}
