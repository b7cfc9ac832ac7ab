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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/discovery"
	"github.com/fallacies/fallacies/services/events"
)

// startInfra starts what every service of the embedded and processes
// topologies relies on, in this process: the CA (with security.mtls),
// nats-server with JetStream, the service registry on it and Toxiproxy.
// Each registers its stop with s.onStop.
func (s *system) startInfra(ctx context.Context) (err error) {
	o := s.o
	host := o.host()
	if s.sec, err = newSecurity(o.System.Security.MTLS); err != nil {
		return err
	}
	natsTLS, err := s.sec.serverTLS("nats")
	if err != nil {
		return err
	}
	ns, stopNATS, err := startNATS(ctx, host, o.NATSPort, natsTLS)
	if err != nil {
		return err
	}
	s.onStop(func(context.Context) error { stopNATS(); return nil })
	addr := ns.Addr().(*net.TCPAddr)
	s.natsAddr = net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
	if s.reg, err = openRegistry(ctx, "nats://"+s.natsAddr, s.sec); err != nil {
		return err
	}
	s.onStop(func(context.Context) error { s.reg.close(); return nil })

	apiAddr := o.ToxiproxyAPI
	if apiAddr == "" {
		apiAddr = net.JoinHostPort(host, "0")
	}
	apiLis, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return fmt.Errorf("toxiproxy API: listen on %s: %w (is another toxiproxy or `fallacies up` running? pick another address with --toxiproxy-api)", apiAddr, err)
	}
	if s.toxiproxy, err = toxiproxy.Start(ctx, apiLis, o.Logger); err != nil {
		apiLis.Close()
		return fmt.Errorf("toxiproxy: %w", err)
	}
	s.onStop(s.toxiproxy.Shutdown)
	return nil
}

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

// registry is the topology's handle on the service registry: a NATS
// connection of the observer straight to nats-server (not through a proxy:
// the registry is the testbed's, not the system's).
type registry struct {
	nc *nats.Conn
	kv jetstream.KeyValue
}

// openRegistry connects to the registry bucket at url, creating it.
func openRegistry(ctx context.Context, url string, sec *security) (*registry, error) {
	opts := append(events.ConnectOptions("topology-registry"), events.TLSOptions(sec.observerOptions().ClientTLS)...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("registry: jetstream on %s: %w", url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := discovery.Ensure(ctx, js)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &registry{nc: nc, kv: kv}, nil
}

// publish records each service at its address.
func (r *registry) publish(ctx context.Context, entries map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for name, addr := range entries {
		if err := discovery.Publish(ctx, r.kv, name, addr); err != nil {
			return fmt.Errorf("registry: %w", err)
		}
	}
	return nil
}

func (r *registry) close() {
	if r != nil {
		r.nc.Close()
	}
}
