package process_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/process"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Controller that records its calls and fails the services
// named in fail.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
}

func (r *recorder) do(op, service string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, op+" "+service)
	return r.fail[op+" "+service]
}

func (r *recorder) Kill(_ context.Context, s string) error    { return r.do("kill", s) }
func (r *recorder) Pause(_ context.Context, s string) error   { return r.do("pause", s) }
func (r *recorder) Resume(_ context.Context, s string) error  { return r.do("resume", s) }
func (r *recorder) Restart(_ context.Context, s string) error { return r.do("restart", s) }

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func TestApplyAndRemoveCallTheController(t *testing.T) {
	tests := []struct {
		kind        faults.Kind
		apply, undo []string
	}{
		{faults.Kill, []string{"kill user"}, []string{"restart user"}},
		{faults.Pause, []string{"pause user"}, []string{"resume user"}},
		{faults.Restart, []string{"restart user"}, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			rec := &recorder{}
			inj := process.NewInjector(rec)
			a, err := inj.Apply(t.Context(), faults.Fault{Name: "f", Kind: tt.kind, Target: "user"})
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.take(); !slices.Equal(got, tt.apply) {
				t.Fatalf("apply calls = %q, want %q", got, tt.apply)
			}
			if len(a.Handles) != 1 || a.Fault.Target != "user" || a.Start.IsZero() {
				t.Fatalf("applied = %+v", a)
			}
			if err := inj.Remove(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			if got := rec.take(); !slices.Equal(got, tt.undo) {
				t.Fatalf("remove calls = %q, want %q", got, tt.undo)
			}
			// Already removed: nothing more happens.
			if err := inj.Remove(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			if err := inj.RemoveAll(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := rec.take(); len(got) != 0 {
				t.Fatalf("calls after removal = %q", got)
			}
		})
	}
}

func TestApplyRejectsNetworkFaultsAndReportsControllerErrors(t *testing.T) {
	boom := errors.New("no such process")
	rec := &recorder{fail: map[string]error{"kill payment": boom}}
	inj := process.NewInjector(rec)
	if _, err := inj.Apply(t.Context(), faults.Fault{Kind: faults.Latency, Target: "user"}); err == nil || !strings.Contains(err.Error(), "not a process") {
		t.Fatalf("latency on a process: %v", err)
	}
	if _, err := inj.Apply(t.Context(), faults.Fault{Kind: faults.Kill}); err == nil || !strings.Contains(err.Error(), "no target service") {
		t.Fatalf("no target: %v", err)
	}
	_, err := inj.Apply(t.Context(), faults.Fault{Kind: faults.Kill, Target: "payment"})
	if !errors.Is(err, boom) || err.Error() != `apply kill on service "payment": no such process` {
		t.Fatalf("controller error: %v", err)
	}
	if err := inj.RemoveAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Equal(got, []string{"kill payment"}) {
		t.Fatalf("calls = %q: a failed apply must leave nothing to undo", got)
	}
}

func TestRemoveAllUndoesEverythingAndRetriesFailures(t *testing.T) {
	rec := &recorder{fail: map[string]error{}}
	inj := process.NewInjector(rec)
	var wg sync.WaitGroup
	for _, f := range []faults.Fault{
		{Name: "a", Kind: faults.Kill, Target: "user"},
		{Name: "b", Kind: faults.Pause, Target: "payment"},
		{Name: "c", Kind: faults.Restart, Target: "order"},
	} {
		wg.Go(func() {
			if _, err := inj.Apply(context.Background(), f); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rec.take()

	rec.mu.Lock()
	rec.fail["resume payment"] = errors.New("stuck")
	rec.mu.Unlock()
	err := inj.RemoveAll(t.Context())
	if err == nil || !strings.Contains(err.Error(), `remove pause on service "payment": stuck`) {
		t.Fatalf("RemoveAll: %v", err)
	}
	got := rec.take()
	slices.Sort(got)
	if !slices.Equal(got, []string{"restart user", "resume payment"}) {
		t.Fatalf("calls = %q", got)
	}
	rec.mu.Lock()
	delete(rec.fail, "resume payment")
	rec.mu.Unlock()
	if err := inj.RemoveAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Equal(got, []string{"resume payment"}) {
		t.Fatalf("retry calls = %q", got)
	}
}
