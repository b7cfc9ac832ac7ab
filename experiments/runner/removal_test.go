package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/faults"
)

// flakyRemover fails the first failures removals of every fault, then
// takes it off; it logs each attempt.
type flakyRemover struct {
	start    time.Time
	failures int
	mu       sync.Mutex
	tries    map[string]int
	log      []string
}

func (r *flakyRemover) Apply(_ context.Context, f faults.Fault) (faults.Applied, error) {
	return faults.Applied{Fault: f, Start: time.Now()}, nil
}

func (r *flakyRemover) Remove(_ context.Context, a faults.Applied) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[a.Fault.Name]++
	if r.tries[a.Fault.Name] <= r.failures {
		r.log = append(r.log, fmt.Sprintf("%v remove %s failed", time.Since(r.start), a.Fault.Name))
		return errors.New("toxiproxy: 500 internal error")
	}
	r.log = append(r.log, fmt.Sprintf("%v remove %s", time.Since(r.start), a.Fault.Name))
	return nil
}

// TestFailedRemovalIsRetried: a fault whose removal fails at its
// scheduled end stays known as on; removeAll tries it again and takes it
// off; its history keeps the failure and that it was rolled back; and
// the after phase begins only when it really came off.
func TestFailedRemovalIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := &flakyRemover{start: time.Now(), failures: 1, tries: map[string]int{}}
		s := newScheduler(inj, []faults.Fault{{Name: "slow", Target: "user", At: time.Second, For: time.Second}})
		var boundaries []string
		s.boundary = func(phase string) {
			boundaries = append(boundaries, fmt.Sprintf("%s at %v", phase, time.Since(inj.start)))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := s.run(ctx, inj.start); err != nil {
			t.Fatal(err)
		}
		<-ctx.Done()
		if want := "during at 1s"; strings.Join(boundaries, "|") != want {
			t.Fatalf("boundaries before the teardown %v, want only %q: the after phase began with the fault maybe on", boundaries, want)
		}
		if err := s.removeAll(context.Background()); err != nil {
			t.Fatalf("removeAll: %v, want the second attempt to succeed", err)
		}
		if want := "2s remove slow failed|5s remove slow"; strings.Join(inj.log, "|") != want {
			t.Fatalf("log %q, want the failed removal retried at the teardown", inj.log)
		}
		if want := "during at 1s|after at 5s"; strings.Join(boundaries, "|") != want {
			t.Errorf("boundaries %v, want %q: the after phase begins when the fault is off", boundaries, want)
		}
		h := s.history()
		if len(h) != 1 || h[0].RemoveErr == nil || !h[0].RolledBack || h[0].End.Sub(inj.start) != 5*time.Second {
			t.Fatalf("history %+v: want the removal error, rolled back, ended at 5s", h)
		}
		rep := faultsReport(h, inj.start, noCounts{})
		if len(rep) != 1 || !strings.Contains(rep[0].RemovalError, "500 internal error") || !rep[0].RolledBack || rep[0].EndOffset != 5 {
			t.Errorf("report fault %+v: want removal_error, rolled_back and the real end", rep)
		}
		// Nothing is left to retry.
		if err := s.removeAll(context.Background()); err != nil || len(inj.log) != 2 {
			t.Errorf("a second removeAll: %v, log %q", err, inj.log)
		}
	})
}

// TestFailedRemovalThatNeverSucceedsIsAnError: a fault that cannot be
// taken off at all makes removeAll fail, naming it; the after phase never
// begins; its history says it was not rolled back.
func TestFailedRemovalThatNeverSucceedsIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := &flakyRemover{start: time.Now(), failures: 100, tries: map[string]int{}}
		s := newScheduler(inj, []faults.Fault{{Name: "stuck", Target: "user", At: time.Second, For: time.Second}})
		var boundaries []string
		s.boundary = func(phase string) { boundaries = append(boundaries, phase) }
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		if err := s.run(ctx, inj.start); err != nil {
			t.Fatal(err)
		}
		err := s.removeAll(context.Background())
		if err == nil || !strings.Contains(err.Error(), "remove fault stuck") || !strings.Contains(err.Error(), "may still be on") {
			t.Fatalf("removeAll: %v, want an error naming the fault that may still be on", err)
		}
		if inj.tries["stuck"] != 2 {
			t.Errorf("%d removal attempts, want 2 (the schedule's and the teardown's)", inj.tries["stuck"])
		}
		if strings.Join(boundaries, "|") != "during" {
			t.Errorf("boundaries %v: the after phase must not begin while the fault may be on", boundaries)
		}
		h := s.history()
		if len(h) != 1 || h[0].RemoveErr == nil || h[0].RolledBack {
			t.Fatalf("history %+v: want the removal error, not rolled back", h)
		}
		rep := faultsReport(h, inj.start, noCounts{})
		if len(rep) != 1 || rep[0].RemovalError == "" || rep[0].RolledBack {
			t.Errorf("report fault %+v: want removal_error without rolled_back", rep)
		}
	})
}

// noCounts is a faults.Counter that counted nothing.
type noCounts struct{}

func (noCounts) Counters(string) map[string]uint64 { return nil }

// TestRunReportsAFailedRemoval runs a variant on the embedded topology
// whose fault's removal fails at its scheduled end (testHookRemoveErr).
// When the second attempt takes it off, the report shows the failure on
// the fault, the after phase begins only then (nothing of it is left:
// its hypothesis is not judged, exit 4, never a silent pass); when no
// attempt does, the run is a testbed failure (exit 3). Both reports keep
// the schema.
func TestRunReportsAFailedRemoval(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 3-second variants")
	}
	exp := mustParse(t, `
name: stuck
fallacy: network-is-reliable
description: a fault whose removal fails
load: { rate: 20/s, duration: 3s }
variants: { only: {} }
faults:
  - { name: stuck-on, at: 1s, for: 1s, target: user, kind: latency, latency: 1ms }
hypotheses:
  - { when: after, check: "order.success_rate >= 0%" }
  - { when: before, check: "order.success_rate >= 0%" }
`)
	for _, tc := range []struct {
		name     string
		failures int
	}{{"rolled back", 1}, {"never off", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			tries := 0
			testHookRemoveErr = func(f faults.Fault) error {
				mu.Lock()
				defer mu.Unlock()
				tries++
				if tries <= tc.failures {
					return fmt.Errorf("remove %s: injected failure %d", f.Name, tries)
				}
				return nil
			}
			t.Cleanup(func() { testHookRemoveErr = nil })
			res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir()})
			if res == nil || len(res.Report.Variants) != 1 {
				t.Fatalf("err %v, no report of one variant", err)
			}
			v := res.Report.Variants[0]
			if len(v.Faults) != 1 || !strings.Contains(v.Faults[0].RemovalError, "injected failure 1") {
				t.Fatalf("faults %+v: want the failed removal on the fault", v.Faults)
			}
			f := v.Faults[0]
			switch tc.failures {
			case 1:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if !f.RolledBack || f.EndOffset < 3 {
					t.Errorf("fault %+v: want rolled back after the load (3 s)", f)
				}
				if v.LateRemoval == nil || v.LateRemoval.Judged {
					t.Errorf("late removal %+v: want an after phase too short to judge", v.LateRemoval)
				}
				if code := res.Report.ExitCode(); code != 4 {
					t.Errorf("exit code %d, want 4: the after phase ran with the fault on", code)
				}
			default:
				if !errors.Is(err, ErrTestbed) || !strings.Contains(err.Error(), "stuck-on") {
					t.Fatalf("run: %v, want a testbed failure naming the fault", err)
				}
				if f.RolledBack {
					t.Errorf("fault %+v: rolled back, though every removal failed", f)
				}
				if code := res.Report.ExitCode(); code != 3 {
					t.Errorf("exit code %d, want 3", code)
				}
			}
			var text strings.Builder
			if err := report.Text(&text, res.Report); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "REMOVAL FAILED: fault stuck-on (latency on user) did not come off: remove stuck-on: injected failure 1") {
				t.Errorf("text report does not show the failed removal:\n%s", text.String())
			}
			schematest.ValidateDir(t, res.Dir)
		})
	}
}
