package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// event is one step of a fault schedule: apply or remove fault i at offset.
type event struct {
	at     time.Duration
	fault  int
	remove bool
}

// timeline orders the apply and remove events of a schedule. A fault with
// For == 0 lasts until the end of the run and has no remove event; at equal
// offsets removals come first, so a step schedule hands over cleanly.
func timeline(fs []faults.Fault) []event {
	var evs []event
	for i, f := range fs {
		evs = append(evs, event{at: f.At, fault: i})
		if f.For > 0 {
			evs = append(evs, event{at: f.At + f.For, fault: i, remove: true})
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		if a.remove != b.remove {
			if a.remove {
				return -1
			}
			return 1
		}
		return a.fault - b.fault
	})
	return evs
}

// appliedFault is a fault as it really happened.
type appliedFault struct {
	Fault      faults.Fault
	Start, End time.Time // End is zero while it is on
	Err        error     // why applying or removing failed
	// RemoveErr is why taking the fault off failed the first time; the
	// fault may have stayed on. removeAll tries again: RolledBack says
	// whether that took it off (End is then that moment).
	RemoveErr  error
	RolledBack bool
}

// scheduler applies and removes faults on time and guarantees that every
// fault it applied is removed, whatever way the run ends.
type scheduler struct {
	inj    faults.Injector
	faults []faults.Fault
	start  time.Time
	now    func() time.Time
	// boundary, when set, is called with "during" right before the first
	// fault goes on and with "after" right after the last one comes off
	// (when every fault has an end): the phase boundaries as the system
	// saw them.
	boundary func(phase string)

	mu      sync.Mutex
	on      map[int]faults.Applied
	applied []appliedFault
	index   map[int]int // fault → index in applied
	// stuck holds the faults whose removal failed: as far as anyone
	// knows they are still on, and removeAll tries them again.
	stuck map[int]faults.Applied
	// afterHeld is set when the last removal of the schedule left a
	// fault stuck: the after phase has not begun, and its boundary is
	// called once removeAll has taken every stuck fault off.
	afterHeld bool
}

func newScheduler(inj faults.Injector, fs []faults.Fault) *scheduler {
	return &scheduler{inj: inj, faults: fs, now: time.Now, on: map[int]faults.Applied{}, index: map[int]int{}, stuck: map[int]faults.Applied{}}
}

// run follows the timeline from start until it is done or ctx ends. It
// returns the first error applying a fault: the run cannot prove anything
// about a fault it could not inject.
func (s *scheduler) run(ctx context.Context, start time.Time) error {
	s.start = start
	evs := timeline(s.faults)
	ends := true // every fault has an end: there is an after phase
	for _, f := range s.faults {
		ends = ends && f.For > 0
	}
	for i := 0; i < len(evs); i++ {
		ev := evs[i]
		wait := time.Until(start.Add(ev.at))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		if ev.remove {
			// Every removal due now at once: one slow removal (a
			// process or container to start again, an API slow to
			// answer) must not hold the others on.
			due := []int{ev.fault}
			for i+1 < len(evs) && evs[i+1].remove && evs[i+1].at == ev.at {
				i++
				due = append(due, evs[i].fault)
			}
			s.removeAt(ctx, due)
			if i == len(evs)-1 && ends && s.boundary != nil {
				if s.anyStuck() {
					// A fault may still be on: no after phase yet.
					s.mu.Lock()
					s.afterHeld = true
					s.mu.Unlock()
				} else {
					s.boundary("after")
				}
			}
			continue
		}
		if i == 0 && s.boundary != nil {
			s.boundary("during")
		}
		if err := s.apply(ctx, ev.fault); err != nil {
			if ctx.Err() != nil {
				// The run ended (its load finished, or an abort) while the
				// fault was going on; the injector took off what it made.
				return nil
			}
			return err
		}
	}
	return nil
}

func (s *scheduler) apply(ctx context.Context, i int) error {
	f := s.faults[i]
	a, err := s.inj.Apply(ctx, f)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := appliedFault{Fault: f, Start: s.now()}
	if err != nil {
		rec.Err = err
		rec.End = rec.Start
		s.applied = append(s.applied, rec)
		return fmt.Errorf("fault %s: %w", f.Name, err)
	}
	if !a.Start.IsZero() {
		rec.Start = a.Start
	}
	s.on[i] = a
	s.index[i] = len(s.applied)
	s.applied = append(s.applied, rec)
	return nil
}

// removeAt removes the faults due faults, due at the same moment: those
// on different targets at the same time, those on one target one after
// the other, in the schedule's order. A removal goes to its end even when
// the run ends meanwhile (a cancelled removal would leave the fault on,
// and the scheduler no longer holds it), within cleanupTimeout.
func (s *scheduler) removeAt(ctx context.Context, due []int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	byTarget := map[string][]int{}
	var targets []string
	for _, i := range due {
		t := s.faults[i].Target
		if byTarget[t] == nil {
			targets = append(targets, t)
		}
		byTarget[t] = append(byTarget[t], i)
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			for _, i := range byTarget[t] {
				s.remove(ctx, i) // a failure is in the fault's history (appliedFault.RemoveErr), and the fault stuck
			}
		})
	}
	wg.Wait()
}

// testHookRemove, when set by a test, runs right before a fault is taken
// off: a test makes a removal slow with it.
var testHookRemove func(faults.Fault)

// testHookRemoveErr, when set by a test, runs right before a fault is
// taken off; an error it returns is the removal's, and the injector is
// not asked: the fault stays on, as after a removal that really failed.
var testHookRemoveErr func(faults.Fault) error

// remove takes fault i off, if it is on or stuck (its removal failed
// before). A failed removal leaves the fault stuck, for removeAll to try
// again, and is kept in its history: the first failure as RemoveErr, a
// later success as RolledBack.
func (s *scheduler) remove(ctx context.Context, i int) error {
	s.mu.Lock()
	a, ok := s.on[i]
	retry := false
	if !ok {
		a, retry = s.stuck[i]
	}
	delete(s.on, i)
	delete(s.stuck, i)
	s.mu.Unlock()
	if !ok && !retry {
		return nil
	}
	if testHookRemove != nil {
		testHookRemove(a.Fault)
	}
	var err error
	if testHookRemoveErr != nil {
		err = testHookRemoveErr(a.Fault)
	}
	if err == nil {
		err = s.inj.Remove(ctx, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &s.applied[s.index[i]]
	if err != nil {
		if rec.End.IsZero() {
			rec.End = s.now() // as the schedule took it off; RemoveErr says it may not be
		}
		if rec.RemoveErr == nil {
			rec.RemoveErr = err
		}
		rec.Err = errors.Join(rec.Err, err)
		s.stuck[i] = a
		return fmt.Errorf("remove fault %s: %w", a.Fault.Name, err)
	}
	rec.End = s.now()
	rec.RolledBack = retry
	return nil
}

// anyStuck reports whether a fault's removal failed and has not been
// retried with success.
func (s *scheduler) anyStuck() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stuck) > 0
}

// removeAll takes off every fault still on, and tries once more every
// fault whose removal failed (stuck): a fault must not stay on after a
// run. It is called on every way out of a run, with a context of its own
// so that a cancelled run still cleans up. Its error names every fault
// that could not be taken off, which may still be on. When the last
// stuck fault comes off, the after phase the schedule held back begins
// (boundary).
func (s *scheduler) removeAll(ctx context.Context) error {
	s.mu.Lock()
	var idx []int
	for i := range s.on {
		idx = append(idx, i)
	}
	for i := range s.stuck {
		idx = append(idx, i)
	}
	s.mu.Unlock()
	slices.Sort(idx)
	var errs []error
	for _, i := range idx {
		if err := s.remove(ctx, i); err != nil {
			errs = append(errs, fmt.Errorf("%w (it may still be on; fallacies reset --journal removes what the run's journal lists)", err))
		}
	}
	s.mu.Lock()
	held := s.afterHeld && len(s.stuck) == 0 && len(s.on) == 0
	if held {
		s.afterHeld = false
	}
	s.mu.Unlock()
	if held && s.boundary != nil {
		s.boundary("after")
	}
	return errors.Join(errs...)
}

// active names the faults on now, for the progress line.
func (s *scheduler) active() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i := range s.on {
		out = append(out, s.faults[i].String())
	}
	slices.Sort(out)
	return out
}

// history returns every fault as applied, in order of application.
func (s *scheduler) history() []appliedFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied)
}
