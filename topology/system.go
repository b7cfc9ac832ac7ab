package topology

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"

	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/serve"
)

// placement is where a topology runs a service instance: in this process
// (embedded) or in a child process (processes). It is the one thing the
// two topologies do differently.
type placement interface {
	// start starts the instance with configuration c (its system, links
	// and listen addresses filled in) and the identity id (nil:
	// plaintext), and returns once it is ready.
	start(ctx context.Context, in instance, c ServeConfig, id *Identity) (running, error)
}

// system is a running system under test: the infrastructure (nats-server,
// Toxiproxy, the registry, the CA) in this process and the service
// instances of serviceSpecs, each started by the placement and fronted by
// the proxies of the links that reach it.
type system struct {
	o         Options
	place     placement
	sec       *security // nil: plaintext
	natsAddr  string    // of nats-server itself (host:port)
	toxiproxy *toxiproxy.Server
	reg       *registry

	mu        sync.Mutex
	endpoints Endpoints
	started   []string           // instance names in start order
	instances map[string]running // by instance name
	infraStop []func(context.Context) error
	stopped   bool
}

// startSystem starts the infrastructure, then every instance in start
// order, each after the proxies of the links it dials and before the
// proxies that reach it, and returns when every service answers its health
// check. On error everything started so far is stopped.
func startSystem(ctx context.Context, o Options, place placement) (_ *system, err error) {
	s := &system{o: o, place: place, instances: map[string]running{}}
	defer func() {
		if err != nil {
			s.Stop(context.WithoutCancel(ctx))
		}
	}()
	if err := s.startInfra(ctx); err != nil {
		return nil, err
	}
	s.endpoints = Endpoints{
		ToxiproxyAPI: s.toxiproxy.URL(),
		NATS:         "nats://" + s.natsAddr,
		Services:     map[string]string{},
		Proxies:      map[string]string{},
	}
	links := dialedLinks(o.System)
	for _, in := range instances(o.System) {
		if err := s.startInstance(ctx, in, links); err != nil {
			return nil, err
		}
	}
	for _, name := range s.started {
		if err := waitHealthy(ctx, s.endpoints.Services[name], s.sec.creds()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return s, nil
}

// startInstance starts one instance: the proxies of the links it dials
// (if not there yet), the instance itself where the placement puts it, the
// proxies of the links (of all links) that reach it.
func (s *system) startInstance(ctx context.Context, in instance, links []string) error {
	name, sys := in.name(), s.o.System
	any := net.JoinHostPort(s.o.host(), "0")
	c := ServeConfig{Service: in.spec.name, Replica: in.replica, System: sys, Listen: any, Links: map[string]string{}}
	if in.spec.http {
		c.HTTPListen = any
	}
	for _, l := range in.spec.links(sys) {
		addr, err := s.link(l)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		c.Links[l] = addr
	}
	id, err := s.sec.issue(name)
	if err != nil {
		return err
	}
	r, err := s.place.start(ctx, in, c, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.started = append(s.started, name)
	s.instances[name] = r
	s.mu.Unlock()
	ready := r.readiness()
	s.setEndpoints(name, ready)
	fronts := map[string]string{}
	for l, addr := range frontsOf(name, ready) {
		if slices.Contains(links, l) {
			fronts[l] = addr
		}
	}
	return s.addProxies(ctx, fronts)
}

// frontsOf maps the links that can reach an instance to the address each
// reaches: its gRPC API, and its HTTP API if it serves one.
func frontsOf(name string, r Ready) map[string]string {
	out := map[string]string{name: r.GRPC}
	if r.HTTP != "" {
		out[name+"-http"] = r.HTTP
	}
	return out
}

// link returns the address a service dials for a link: its proxy's, as a
// nats:// URL for a link to NATS. A link to NATS gets its proxy on first
// use; a link to a service must have it already (the service started
// earlier).
func (s *system) link(l string) (string, error) {
	s.mu.Lock()
	addr := s.endpoints.Proxies[l]
	s.mu.Unlock()
	inst, _, nats := linkTarget(l)
	switch {
	case nats && addr == "":
		listen, err := s.toxiproxy.AddProxy(l, s.natsAddr)
		if err != nil {
			return "", fmt.Errorf("create proxy %s: %w", l, err)
		}
		s.mu.Lock()
		s.endpoints.Proxies[l] = listen
		s.mu.Unlock()
		addr = listen
	case addr == "":
		return "", fmt.Errorf("link %s: %s is not started yet (serviceSpecs must list it earlier)", l, inst)
	}
	if nats {
		return "nats://" + addr, nil
	}
	return addr, nil
}

// addProxies creates the proxies of the links that reach a service (link →
// the service's address) and publishes them in the registry.
func (s *system) addProxies(ctx context.Context, fronts map[string]string) error {
	if len(fronts) == 0 {
		return nil
	}
	listens := map[string]string{}
	for l, upstream := range fronts {
		listen, err := s.toxiproxy.AddProxy(l, upstream)
		if err != nil {
			return fmt.Errorf("create proxy %s: %w", l, err)
		}
		listens[l] = listen
	}
	s.mu.Lock()
	maps.Copy(s.endpoints.Proxies, listens)
	s.mu.Unlock()
	return s.reg.publish(ctx, listens)
}

// setEndpoints records where an instance listens.
func (s *system) setEndpoints(name string, r Ready) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints.Services[name] = r.GRPC
	if r.HTTP != "" {
		s.endpoints.UserHTTP = r.HTTP
	}
}

// onStop adds f to what Stop runs after the services are gone.
func (s *system) onStop(f func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.infraStop = append(s.infraStop, f)
}

// Endpoints returns where every piece listens now: in the processes
// topology a restarted service listens at a new address.
func (s *system) Endpoints() Endpoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.endpoints
	ep.Services = maps.Clone(s.endpoints.Services)
	ep.Proxies = maps.Clone(s.endpoints.Proxies)
	return ep
}

// Toxiproxy returns the Toxiproxy server in front of every link.
func (s *system) Toxiproxy() *toxiproxy.Server { return s.toxiproxy }

// observerOptions are the serve options of a client outside the system.
func (s *system) observerOptions() serve.Options { return s.sec.observerOptions() }

// Stop stops every service (all at once), then the infrastructure in
// reverse order of starting. It is safe to call more than once.
func (s *system) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	var rs []running
	for _, name := range s.started {
		rs = append(rs, s.instances[name])
	}
	infra := s.infraStop
	s.mu.Unlock()
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.stop(ctx) })
	}
	wg.Wait()
	for i := len(infra) - 1; i >= 0; i-- {
		errs = append(errs, infra[i](ctx))
	}
	return errors.Join(errs...)
}
