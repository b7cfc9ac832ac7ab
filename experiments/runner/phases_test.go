package runner

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
)

// lateRun is a schedule whose fault is due off at 2 s of a 6-second load:
// an after phase of 4 s.
const lateRun = `
name: late
fallacy: network-is-reliable
description: synthetic
load: { rate: 10/s, duration: 6s }
variants: { naive: {} }
faults:
  - { name: reset, at: 1s, for: 1s, target: user, kind: reset_peer, timeout: 2500ms }
hypotheses:
  - { when: during, check: "order.success_rate >= 0%" }
  - { when: after, check: "order.success_rate >= 0%" }
  - { when: during, check: "after.order.success_rate >= during.order.success_rate" }
  - { when: before, check: "order.success_rate >= 0%" }
`

// TestPhaseClockBeginsAfterWhenTheFaultIsOff: until the last fault is
// known to be off, an offset past its scheduled end is during; once it
// is, the offsets from that moment on are after, and the report notes
// how late it came.
func TestPhaseClockBeginsAfterWhenTheFaultIsOff(t *testing.T) {
	exp := mustParse(t, lateRun)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newPhaseClock(exp, start)
	now := start.Add(3500 * time.Millisecond)
	c.now = func() time.Time { return now }
	s := time.Second
	for _, tc := range []struct {
		off  time.Duration
		want string
	}{{500 * time.Millisecond, "before"}, {1500 * time.Millisecond, "during"}, {2500 * time.Millisecond, "during"}} {
		if got := c.at(tc.off); got != tc.want {
			t.Errorf("at(%v) with the fault on = %s, want %s", tc.off, got, tc.want)
		}
	}
	c.allOff()
	now = now.Add(s) // a second call does not move the boundary
	c.allOff()
	for _, tc := range []struct {
		off  time.Duration
		want string
	}{{3499 * time.Millisecond, "during"}, {3500 * time.Millisecond, "after"}, {5 * s, "after"}} {
		if got := c.at(tc.off); got != tc.want {
			t.Errorf("at(%v) with the fault off at 3.5s = %s, want %s", tc.off, got, tc.want)
		}
	}
	fs := []report.Fault{{Name: "reset", Kind: "reset_peer", Target: "user", EndOffset: 3.5}}
	lr := c.lateRemoval(fs)
	if lr == nil || lr.AfterOffset != 3.5 || lr.ScheduledOffset != 2 || lr.AfterSeconds != 2.5 || lr.ScheduledSeconds != 4 || !lr.Judged ||
		strings.Join(lr.Faults, ",") != "reset" || !strings.Contains(lr.Note, "reset (reset_peer on user) came off 1.5s after its scheduled end") {
		t.Fatalf("late removal = %+v", lr)
	}
	if why := unjudgedAfter(lr); why != "" {
		t.Errorf("2.5 s of 4 s left: %q, want judged", why)
	}

	// On time, or within lateNote: no note, the schedule's phases.
	if lr := onSchedule(exp, start).lateRemoval(nil); lr != nil {
		t.Errorf("on schedule: %+v, want no note", lr)
	}
	if got := onSchedule(exp, start).at(2 * s); got != "after" {
		t.Errorf("on schedule at 2s = %s, want after", got)
	}
}

// TestTooLateAnAfterPhaseIsNotJudged: a fault off with less than half
// the after phase left leaves its hypotheses inconclusive with the
// reason, the others judged; the run exits 4, and every renderer says
// why.
func TestTooLateAnAfterPhaseIsNotJudged(t *testing.T) {
	exp := mustParse(t, lateRun)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newPhaseClock(exp, start)
	c.now = func() time.Time { return start.Add(4500 * time.Millisecond) }
	c.allOff()
	lr := c.lateRemoval([]report.Fault{{Name: "reset", Kind: "reset_peer", Target: "user", EndOffset: 4.5}})
	if lr == nil || lr.Judged || lr.AfterSeconds != 1.5 || !strings.Contains(lr.Note, "too short to judge") {
		t.Fatalf("late removal = %+v, want not judged", lr)
	}
	m := metrics.NewValues(nil)
	hs := evaluate(exp, "naive", false, m, unjudgedAfter(lr))
	settleVerdicts(hs)
	want := []string{"fail", "inconclusive", "inconclusive", "fail"} // no values: the judged ones fail
	for i, h := range hs {
		if h.Verdict != want[i] {
			t.Errorf("%s %s: verdict %s, want %s", h.Phase, h.Expr, h.Verdict, want[i])
		}
		if want[i] == "inconclusive" && (!h.NotJudged() || !strings.HasPrefix(h.SkipReason, "not judged: reset (reset_peer on user) came off") || len(h.Trials) != 0) {
			t.Errorf("%s %s: %+v, want not judged with the reason and no trial", h.Phase, h.Expr, h)
		}
	}
	// Judged over trials, one trial that could not judge it is enough.
	j := judgeTrials(exp, "naive", false, []*metrics.Values{m, m}, [][]report.Hypothesis{evaluate(exp, "naive", false, m, ""), hs})
	if j[1].Verdict != report.VerdictInconclusive || !j[1].NotJudged() || len(j[1].Trials) != 2 {
		t.Errorf("over trials: %+v, want not judged", j[1])
	}

	rep := &report.Report{Experiment: "late", Trials: 1, Variants: []report.Variant{{Name: "naive", LateRemoval: lr, Hypotheses: hs[1:3]}}}
	if got := rep.ExitCode(); got != report.ExitCodeInconclusive {
		t.Errorf("exit code %d, want %d", got, report.ExitCodeInconclusive)
	}
	var text, junit strings.Builder
	if err := report.Text(&text, rep); err != nil {
		t.Fatal(err)
	}
	if err := report.JUnit(&junit, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"late removal: reset (reset_peer on user) came off 2.5s", "not judged: reset", "2 of 2 hypotheses not judged"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(junit.String(), "inconclusive: not judged: reset") {
		t.Errorf("junit lacks the reason:\n%s", junit.String())
	}
}

// slowRemover removes fault "slow" in 2 s, giving up when its context
// ends first; every other fault at once.
type slowRemover struct {
	start time.Time
	mu    sync.Mutex
	log   []string
}

func (r *slowRemover) Apply(_ context.Context, f faults.Fault) (faults.Applied, error) {
	return faults.Applied{Fault: f, Start: time.Now()}, nil
}

func (r *slowRemover) Remove(ctx context.Context, a faults.Applied) error {
	if a.Fault.Name == "slow" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, a.Fault.Name+" off at "+time.Since(r.start).String())
	return nil
}

// TestSlowRemovalHoldsNoOtherFaultOn: faults due off at the same moment
// on other targets come off then, not after a slow removal; one on the
// same target waits for it; the after boundary comes once all are off;
// and a removal under way when the run ends is finished, not cancelled.
func TestSlowRemovalHoldsNoOtherFaultOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inj := &slowRemover{start: time.Now()}
		fs := []faults.Fault{
			{Name: "slow", Target: "nats-ledger", At: time.Second, For: 2 * time.Second},
			{Name: "other", Target: "user", At: time.Second, For: 2 * time.Second},
			{Name: "same", Target: "nats-ledger", At: time.Second, For: 2 * time.Second},
		}
		s := newScheduler(inj, fs)
		var after time.Duration
		s.boundary = func(phase string) {
			if phase == "after" {
				after = time.Since(inj.start)
			}
		}
		// The run ends at 4 s, while slow is still coming off.
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		defer cancel()
		if err := s.run(ctx, inj.start); err != nil {
			t.Fatal(err)
		}
		want := "other off at 3s|slow off at 5s|same off at 5s"
		if got := strings.Join(inj.log, "|"); got != want {
			t.Fatalf("removals: %s, want %s", got, want)
		}
		if after != 5*time.Second {
			t.Errorf("after boundary at %v, want 5s: once every fault is off", after)
		}
		for _, h := range s.history() {
			if h.Err != nil {
				t.Errorf("%s: %v", h.Fault.Name, h.Err)
			}
		}
		if len(s.active()) != 0 {
			t.Errorf("still on: %v", s.active())
		}
	})
}
