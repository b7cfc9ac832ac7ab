package runner

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
)

// The after phase is the system with every fault off. The schedule begins
// it at the faults' scheduled end, but taking a fault off can take longer
// than the schedule allows: a process or container to start again, an API
// slow to answer on a loaded machine (Toxiproxy's own reset_peer toxic
// slept through its timeout without hearing its removal; the testbed's
// reset_peer no longer uses it). Measured from the scheduled end, the after
// phase would count time with a fault still on and judge recovery on the
// fault. So the runner's phases are the phases as they happened: after
// begins when the last fault is off, never before its scheduled end; the
// time in between belongs to during (a fault was on). Every consumer of
// phases reads the one phaseClock of the variant: the load generator as it
// sends (load.Config.Phase), the traces and the metric families after the
// run (metrics.Run.PhaseAt); the counters are read at the same boundary
// (scheduler.boundary).

// lateNote is how much later than scheduled the after phase may begin
// before the report notes it (report.LateRemoval): the few milliseconds a
// removal always takes are not worth a note, but every removal shifts the
// phase.
const lateNote = 100 * time.Millisecond

// minAfterShare is the share of its scheduled length the after phase must
// keep for its hypotheses to be judged: a removal later than that leaves
// too little recovery to judge, and those hypotheses are inconclusive
// (exit code 4), not judged on nothing.
const minAfterShare = 0.5

// phaseClock names the phase each instant of one variant's run falls in:
// the schedule's phases, with the after phase beginning when the last
// fault really came off.
type phaseClock struct {
	exp    *definition.Experiment
	sched  definition.Phases
	start  time.Time // the load's start: offset 0
	now    func() time.Time
	mu     sync.Mutex
	offAt  time.Time // when the last fault was off; zero until then
	hasEnd bool      // the schedule has an after phase
}

// newPhaseClock returns the clock of a run of exp whose load starts at
// start.
func newPhaseClock(exp *definition.Experiment, start time.Time) *phaseClock {
	return &phaseClock{exp: exp, sched: exp.Phases(), start: start, now: time.Now, hasEnd: phaseHasTime(exp, definition.After)}
}

// onSchedule returns the clock of a run whose faults all came off on
// time: the schedule's phases.
func onSchedule(exp *definition.Experiment, start time.Time) *phaseClock {
	c := newPhaseClock(exp, start)
	c.offAt = start.Add(c.sched.After.Start)
	return c
}

// at names the phase of offset off. Called as the load sends (at off or
// later), it answers what it will answer after the run: during until the
// last fault is known to be off.
func (c *phaseClock) at(off time.Duration) string {
	switch {
	case off < c.sched.Before.End:
		return string(definition.Before)
	case off < c.sched.During.End:
		return string(definition.During)
	case !c.hasEnd:
		return string(definition.After)
	}
	c.mu.Lock()
	offAt := c.offAt
	c.mu.Unlock()
	if offAt.IsZero() || c.start.Add(off).Before(offAt) {
		return string(definition.During)
	}
	return string(definition.After)
}

// atTime names the phase of an instant.
func (c *phaseClock) atTime(t time.Time) string { return c.at(t.Sub(c.start)) }

// allOff marks the moment the last fault of the schedule came off: the
// after phase begins now. Only the first call counts.
func (c *phaseClock) allOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offAt.IsZero() {
		c.offAt = c.now()
	}
}

// afterBegins returns the offset at which the after phase began: its
// scheduled start, or later when the last fault came off later; ok is
// false when the schedule has no after phase, and begun false when the
// faults were not all off before the load ended.
func (c *phaseClock) afterBegins() (off time.Duration, begun, ok bool) {
	if !c.hasEnd {
		return 0, false, false
	}
	c.mu.Lock()
	offAt := c.offAt
	c.mu.Unlock()
	if offAt.IsZero() {
		return c.sched.After.End, false, true
	}
	return max(offAt.Sub(c.start), c.sched.After.Start), true, true
}

// lateRemoval is the report's note on an after phase that began more than
// lateNote after its scheduled start, naming the faults that came off
// late (fs: the faults as they happened); nil when it began on time. A
// removal that ended after the load did leaves no after phase at all:
// not judged.
func (c *phaseClock) lateRemoval(fs []report.Fault) *report.LateRemoval {
	off, begun, ok := c.afterBegins()
	sched := c.sched.After
	if !ok || !begun || off-sched.Start <= lateNote {
		// No after phase, or the run ended before the faults were due off
		// (an abort, an interruption), or they came off on time.
		return nil
	}
	began := min(off, sched.End)
	lr := &report.LateRemoval{
		ScheduledOffset: sched.Start.Seconds(), AfterOffset: off.Seconds(),
		AfterSeconds: (sched.End - began).Seconds(), ScheduledSeconds: (sched.End - sched.Start).Seconds(),
	}
	lr.Judged = lr.AfterSeconds >= minAfterShare*lr.ScheduledSeconds
	var late []string
	for _, f := range fs {
		i := c.faultIndex(f.Name)
		if i < 0 || c.exp.Faults[i].For == 0 {
			continue
		}
		due := c.exp.Faults[i].At + c.exp.Faults[i].For
		if by := time.Duration(f.EndOffset*float64(time.Second)) - due; by > lateNote {
			lr.Faults = append(lr.Faults, f.Name)
			late = append(late, fmt.Sprintf("%s (%s on %s) came off %s after its scheduled end", f.Name, f.Kind, f.Target, by.Round(time.Millisecond)))
		}
	}
	if len(lr.Faults) == 0 {
		late = []string{"the faults came off late"}
	}
	lr.Note = fmt.Sprintf("%s: the after phase began at %.2fs, not %.2fs, and lasted %.2fs of its %.2fs",
		strings.Join(late, "; "), lr.AfterOffset, lr.ScheduledOffset, lr.AfterSeconds, lr.ScheduledSeconds)
	if !lr.Judged {
		lr.Note += fmt.Sprintf(", less than %.0f%%: too short to judge", minAfterShare*100)
	}
	return lr
}

func (c *phaseClock) faultIndex(name string) int {
	for i, f := range c.exp.Faults {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// unjudgedAfter says why the hypotheses reading the after phase cannot be
// judged (a late removal left it too short), or "".
func unjudgedAfter(lr *report.LateRemoval) string {
	if lr == nil || lr.Judged {
		return ""
	}
	return "not judged: " + lr.Note
}

// readsAfter reports whether hypothesis h reads the after phase: it is
// checked in it, or names a metric of it (after.<metric>).
func readsAfter(h definition.Hypothesis) bool {
	if h.When == definition.After {
		return true
	}
	if h.Expr == nil {
		return false
	}
	for _, name := range h.Expr.Metrics() {
		if phase, _ := check.SplitPhase(name); phase == string(definition.After) {
			return true
		}
	}
	return false
}
