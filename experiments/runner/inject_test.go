package runner

import (
	"context"
	"testing"

	"github.com/fallacies/fallacies/faults"
)

// kindRecorder is a container injector that records the kinds it was given.
type kindRecorder struct{ applied, removed []faults.Kind }

func (r *kindRecorder) Apply(_ context.Context, f faults.Fault) (faults.Applied, error) {
	r.applied = append(r.applied, f.Kind)
	return faults.Applied{Fault: f}, nil
}

func (r *kindRecorder) Remove(_ context.Context, a faults.Applied) error {
	r.removed = append(r.removed, a.Fault.Kind)
	return nil
}

// TestComposeProcesses: on compose, each process fault goes to the
// container injector as the container kind its kind names, and the applied
// fault keeps its process kind; a kind that is not a process fault is
// refused.
func TestComposeProcesses(t *testing.T) {
	rec := &kindRecorder{}
	p := composeProcesses{containers: rec}
	for kind, want := range map[faults.Kind]faults.Kind{
		faults.Pause: faults.ContainerPause, faults.Kill: faults.ContainerKill, faults.Restart: faults.ContainerRestart,
	} {
		rec.applied = nil
		a, err := p.Apply(t.Context(), faults.Fault{Kind: kind, Target: "payment"})
		if err != nil || len(rec.applied) != 1 || rec.applied[0] != want || a.Fault.Kind != kind {
			t.Errorf("%s: applied %v as %v (%v), want %s applied, kept as %s", kind, rec.applied, a.Fault.Kind, err, want, kind)
		}
	}
	// Pause is removed as container-pause (no restart to wait for).
	if err := p.Remove(t.Context(), faults.Applied{Fault: faults.Fault{Kind: faults.Pause, Target: "payment"}}); err != nil || len(rec.removed) != 1 || rec.removed[0] != faults.ContainerPause {
		t.Errorf("pause removed as %v (%v), want container-pause", rec.removed, err)
	}
	if _, err := p.Apply(t.Context(), faults.Fault{Kind: faults.Latency, Target: "payment"}); err == nil {
		t.Error("a latency fault was applied as a process fault")
	}
}
