package container_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/container"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestApplyRefuses checks that faults that are not container faults are
// refused before anything is journaled or run.
func TestApplyRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inj := container.NewInjector("fallacies-test-none", j)
	for _, tc := range []struct {
		name string
		f    faults.Fault
		want string
	}{
		{"network fault", faults.Fault{Kind: faults.Latency, Target: "user"}, "targets a proxy, not a container"},
		{"process fault", faults.Fault{Kind: faults.Kill, Target: "user"}, "targets a process, not a container"},
		{"unknown kind", faults.Fault{Kind: "melt", Target: "user"}, "unknown fault kind"},
		{"no target", faults.Fault{Kind: faults.ContainerPause}, "no target container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inj.Apply(t.Context(), tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply(%v) = %v, want an error containing %q", tc.f, err, tc.want)
			}
		})
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Errorf("journal after refused applies: %v, %v; want empty", out, err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("journal file written for refused applies: %q", b)
	}
	// Removing a fault never applied does nothing and succeeds.
	if err := inj.Remove(t.Context(), faults.Applied{Fault: faults.Fault{Kind: faults.ContainerKill, Target: "user"}}); err != nil {
		t.Errorf("Remove of a fault never applied: %v", err)
	}
}

// TestApplyFailsWithoutContainer checks that an apply on a project with no
// such container fails, and that the journal says nothing is on. It needs
// the docker CLI and an engine.
func TestApplyFailsWithoutContainer(t *testing.T) {
	if err := dockerInfo(); err != nil {
		t.Skipf("no usable Docker engine: %v", err)
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inj := container.NewInjector("fallacies-test-none", j)
	_, err = inj.Apply(t.Context(), faults.Fault{Name: "x", Kind: faults.ContainerPause, Target: "payment"})
	if err == nil || !strings.Contains(err.Error(), "no such container") {
		t.Fatalf("Apply on a missing container = %v, want no such container", err)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Errorf("journal after a failed apply: %+v, %v; want nothing outstanding", out, err)
	}
}

func dockerInfo() error {
	return exec.Command("docker", "info").Run()
}
