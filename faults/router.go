package faults

import (
	"context"
	"fmt"
)

// Router is an Injector that sends each fault to the injector of its
// kind's target (Spec.Target): network faults to the proxy injector,
// process faults to the process injector, container faults to the
// container injector. A target no injector handles is refused with the
// topology that has one. It is safe for concurrent use once built.
type Router struct {
	byTarget map[TargetKind]Injector
	byKind   []kindHandler
}

// NewRouter returns a router with no injector; Handle adds them.
func NewRouter() *Router { return &Router{byTarget: map[TargetKind]Injector{}} }

// Handle makes inj the injector of every kind whose target is t, and
// returns the router. A nil inj leaves t unhandled.
func (r *Router) Handle(t TargetKind, inj Injector) *Router {
	if inj != nil {
		r.byTarget[t] = inj
	}
	return r
}

// topologyOf names the topology whose runs can inject faults on a target
// kind, for the error of a router without that injector.
var topologyOf = map[TargetKind]string{
	TargetProcess:   "processes",
	TargetContainer: "compose",
}

// pick returns the injector of kind k.
func (r *Router) pick(k Kind) (Injector, error) {
	spec, ok := Lookup(k)
	if !ok {
		return nil, fmt.Errorf("unknown fault kind %q", k)
	}
	for _, h := range r.byKind {
		if h.applies(k) {
			return h.inj, nil
		}
	}
	inj, ok := r.byTarget[spec.Target]
	if !ok {
		if topo, known := topologyOf[spec.Target]; known {
			return nil, fmt.Errorf("%s faults need the %s topology (run with --topology %s)", k, topo, topo)
		}
		return nil, fmt.Errorf("%s faults: no injector for %s targets here", k, spec.Target)
	}
	return inj, nil
}

// Apply implements Injector.
func (r *Router) Apply(ctx context.Context, f Fault) (Applied, error) {
	inj, err := r.pick(f.Kind)
	if err != nil {
		return Applied{}, err
	}
	return inj.Apply(ctx, f)
}

// Remove implements Injector.
func (r *Router) Remove(ctx context.Context, a Applied) error {
	inj, err := r.pick(a.Fault.Kind)
	if err != nil {
		return err
	}
	return inj.Remove(ctx, a)
}

// HandleKinds makes inj the injector of every kind applies accepts, ahead
// of the injector of the kind's target: the packet kinds target proxies
// but are applied by faults/packet, not Toxiproxy. It returns the router.
func (r *Router) HandleKinds(applies func(Kind) bool, inj Injector) *Router {
	r.byKind = append(r.byKind, kindHandler{applies, inj})
	return r
}

type kindHandler struct {
	applies func(Kind) bool
	inj     Injector
}

// Counter is the optional capability of an injector that counts what its
// faults did (packets dropped, calls failed, …): the counts of the fault
// of that name by counter name, nil when it has none. The report shows
// them under the fault as counters.
type Counter interface {
	Counters(fault string) map[string]uint64
}

// Counters implements Counter: the counts of the first injector that has
// some for the fault.
func (r *Router) Counters(fault string) map[string]uint64 {
	for _, h := range r.byKind {
		if c, ok := h.inj.(Counter); ok {
			if m := c.Counters(fault); m != nil {
				return m
			}
		}
	}
	for _, inj := range r.byTarget {
		if c, ok := inj.(Counter); ok {
			if m := c.Counters(fault); m != nil {
				return m
			}
		}
	}
	return nil
}
