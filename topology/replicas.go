package topology

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/discovery"
	"github.com/fallacies/fallacies/services/events"
)

// ProxyNATSPayment is the proxy between the payment replicas and NATS,
// created when the replicas share their idempotency keys.
const ProxyNATSPayment = faults.ProxyNATSPayment

// replicaName is the name of payment replica i: its proxy, its key in
// Endpoints.Services and, in the processes topology, its process. Replica 0
// keeps the plain name.
func replicaName(i int) string {
	if i == 0 {
		return "payment"
	}
	return "payment-" + strconv.Itoa(i)
}

// paymentReplicas is how many payment servers a system runs.
func paymentReplicas(sys config.System) int {
	return max(1, sys.Payment.Replicas)
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

// registryEntries are what a topology publishes: every service's proxy,
// by service name (user, payment, payment-1, …, user-http).
func registryEntries(proxies map[string]string) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"user", "user-http", "payment", "payment-1", "payment-2"} {
		if addr := proxies[name]; addr != "" {
			out[name] = addr
		}
	}
	return out
}

// replicaNames are the names of the payment replicas after the first.
func replicaNames(sys config.System) []string {
	var out []string
	for i := 1; i < paymentReplicas(sys); i++ {
		out = append(out, replicaName(i))
	}
	return out
}

// replicaProxies are the proxy addresses of the payment replicas after the
// first, for order.Deps.PaymentReplicas.
func replicaProxies(sys config.System, proxies map[string]string) []string {
	var out []string
	for _, name := range replicaNames(sys) {
		out = append(out, proxies[name])
	}
	return out
}

// secure gives a child its identity when the topology runs with mTLS: its
// certificate, key and the CA's certificate in PEM files of the
// topology's temporary folder, readable by the owner only.
func (t *Processes) secure(c *ServeConfig) error {
	if t.sec == nil {
		return nil
	}
	name := c.Service
	if c.Service == "payment" {
		name = replicaName(c.Replica)
	}
	id, err := t.sec.pki.Issue(name)
	if err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	files, err := id.WriteFiles(t.dir)
	if err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	c.TLS = &files
	return nil
}

// repoint makes the proxies in front of a restarted service (proxy name →
// its new address) reach it. With topology.restart_address same each
// proxy is repointed and keeps its address; with new, each proxy moves to
// a new address, which the registry publishes, and the old address
// refuses connections: a client pinned to it fails until it looks again.
func (t *Processes) repoint(ctx context.Context, service string, upstreams map[string]string) error {
	if t.o.System.Topology.RestartAddress != config.AddressNew {
		for proxy, addr := range upstreams {
			if err := t.toxiproxy.SetUpstream(proxy, addr); err != nil {
				return fmt.Errorf("restart %s: repoint proxy %s: %w", service, proxy, err)
			}
		}
		return nil
	}
	moved := map[string]string{}
	for proxy, addr := range upstreams {
		t.mu.Lock()
		old := t.endpoints.Proxies[proxy]
		t.mu.Unlock()
		listen, err := t.toxiproxy.Move(proxy, addr)
		if err != nil {
			return fmt.Errorf("restart %s: %w", service, err)
		}
		moved[proxy] = listen
		t.tombstone(old)
	}
	t.mu.Lock()
	for proxy, listen := range moved {
		t.endpoints.Proxies[proxy] = listen
	}
	t.mu.Unlock()
	if err := t.reg.publish(ctx, moved); err != nil {
		return fmt.Errorf("restart %s: %w", service, err)
	}
	return nil
}

// tombstone holds a moved proxy's old address until the topology stops,
// closing every connection to it at once: the address is dead, as it is
// where the service used to be, and no other program (on a machine other
// testbeds share) can take the port and answer the pinned clients in its
// place. A port that is already taken is left alone.
func (t *Processes) tombstone(addr string) {
	if addr == "" {
		return
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		if t.o.Logger != nil {
			t.o.Logger.Warn("tombstone of a moved proxy", "addr", addr, "err", err)
		}
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.mu.Lock()
	t.stopInfra = append(t.stopInfra, func(context.Context) error {
		lis.Close()
		<-done
		return nil
	})
	t.mu.Unlock()
}
