package runner

import (
	"context"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/faults"
)

// namedInjector is an injector that only says who it is.
type namedInjector string

func (n namedInjector) Apply(context.Context, faults.Fault) (faults.Applied, error) {
	return faults.Applied{Handles: []string{string(n)}}, nil
}
func (n namedInjector) Remove(context.Context, faults.Applied) error { return nil }

// TestRouterContainerFaults checks that container faults go to the
// container injector, and are refused with a hint without one.
func TestRouterContainerFaults(t *testing.T) {
	full := &router{network: namedInjector("network"), process: namedInjector("process"), container: namedInjector("container")}
	for kind, want := range map[faults.Kind]string{
		faults.Latency: "network", faults.Pause: "process",
		faults.ContainerPause: "container", faults.ContainerKill: "container",
		faults.ContainerRestart: "container", faults.ContainerDisconnect: "container",
	} {
		a, err := full.Apply(t.Context(), faults.Fault{Kind: kind, Target: "payment"})
		if err != nil || len(a.Handles) != 1 || a.Handles[0] != want {
			t.Errorf("%s went to %v (%v), want the %s injector", kind, a.Handles, err, want)
		}
	}
	embedded := &router{network: namedInjector("network")}
	_, err := embedded.Apply(t.Context(), faults.Fault{Kind: faults.ContainerDisconnect, Target: "user"})
	if err == nil || !strings.Contains(err.Error(), "--topology compose") {
		t.Errorf("container fault without a container injector: %v, want a hint to use --topology compose", err)
	}
}
