package faults

import (
	"context"
	"strings"
	"testing"
)

// namedInjector is an injector that only says who it is.
type namedInjector string

func (n namedInjector) Apply(context.Context, Fault) (Applied, error) {
	return Applied{Handles: []string{string(n)}}, nil
}
func (n namedInjector) Remove(context.Context, Applied) error { return nil }

// TestRouterSendsEachKindToItsTarget checks that every kind goes to the
// injector of its target, and that a target without one is refused with
// the topology to run instead.
func TestRouterSendsEachKindToItsTarget(t *testing.T) {
	full := NewRouter().Handle(TargetProxy, namedInjector("network")).Handle(TargetGRPC, namedInjector("calls")).
		Handle(TargetNATS, namedInjector("messages")).Handle(TargetProcess, namedInjector("process")).Handle(TargetContainer, namedInjector("container"))
	want := map[TargetKind]string{TargetProxy: "network", TargetGRPC: "calls", TargetNATS: "messages", TargetProcess: "process", TargetContainer: "container"}
	for _, s := range Specs() {
		a, err := full.Apply(t.Context(), Fault{Kind: s.Kind, Target: "payment"})
		if err != nil || len(a.Handles) != 1 || a.Handles[0] != want[s.Target] {
			t.Errorf("%s went to %v (%v), want the %s injector", s.Kind, a.Handles, err, want[s.Target])
		}
	}
	embedded := NewRouter().Handle(TargetProxy, namedInjector("network")).Handle(TargetProcess, nil)
	for kind, hint := range map[Kind]string{ContainerDisconnect: "--topology compose", Pause: "--topology processes"} {
		_, err := embedded.Apply(t.Context(), Fault{Kind: kind, Target: "user"})
		if err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("%s without its injector: %v, want a hint to use %s", kind, err, hint)
		}
		if err := embedded.Remove(t.Context(), Applied{Fault: Fault{Kind: kind}}); err == nil {
			t.Errorf("%s removed without its injector", kind)
		}
	}
	if _, err := full.Apply(t.Context(), Fault{Kind: "no-such-kind"}); err == nil {
		t.Error("an unknown kind was applied")
	}
}

// countingInjector counts one fault's packets.
type countingInjector struct{ namedInjector }

func (countingInjector) Counters(fault string) map[string]uint64 {
	if fault == "lossy" {
		return map[string]uint64{"dropped": 3}
	}
	return nil
}

// TestRouterHandleKindsGoesFirstAndCountersAsksEveryInjector checks that
// a kind-specific injector takes its kinds ahead of the target's injector,
// and that Counters finds the counts of whichever injector has them.
func TestRouterHandleKindsGoesFirstAndCountersAsksEveryInjector(t *testing.T) {
	r := NewRouter().Handle(TargetProxy, namedInjector("network")).
		HandleKinds(func(k Kind) bool { return k == Latency }, countingInjector{"special"})
	for kind, want := range map[Kind]string{Latency: "special", Bandwidth: "network"} {
		a, err := r.Apply(t.Context(), Fault{Kind: kind, Target: "payment"})
		if err != nil || a.Handles[0] != want {
			t.Errorf("%s went to %v (%v), want %s", kind, a.Handles, err, want)
		}
	}
	if c := r.Counters("lossy"); c["dropped"] != 3 {
		t.Errorf("Counters(lossy) = %v, want dropped 3", c)
	}
	if c := r.Counters("other"); c != nil {
		t.Errorf("Counters(other) = %v, want nil", c)
	}
}
