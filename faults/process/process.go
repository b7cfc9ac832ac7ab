// Package process puts process faults on the services of the processes and
// compose topologies: the kinds with the faults.ProcessKind capability,
// e.g. kill (SIGKILL, down until the fault ends), pause (SIGSTOP until the
// fault ends) and restart (SIGKILL, then start again).
//
// The signals are the business of a Controller, which the topology that
// runs the processes provides; this package turns a kind's
// faults.ProcessAction into Controller calls, for example:
//
//	Apply  kill    → Kill      Remove → Restart
//	Apply  pause   → Pause     Remove → Resume
//	Apply  restart → Restart   Remove → nothing
package process

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// Controller acts on the service processes of a topology. Each method
// blocks until the change is done (the process is gone, stopped, running
// again and ready) or ctx ends. Implementations are safe for concurrent use.
type Controller interface {
	// Kill sends SIGKILL to the service's process; it stays down.
	Kill(ctx context.Context, service string) error
	// Pause stops the service's process (SIGSTOP).
	Pause(ctx context.Context, service string) error
	// Resume continues a paused service's process (SIGCONT).
	Resume(ctx context.Context, service string) error
	// Restart kills the service's process if it runs and starts it again.
	Restart(ctx context.Context, service string) error
}

// Injector is a faults.Injector for process faults over a Controller. It
// remembers what it applied, so that removing a fault twice, or one it
// never applied, does nothing. It is safe for concurrent use.
type Injector struct {
	c Controller

	mu     sync.Mutex
	active map[string]faults.Applied
}

var _ faults.Injector = (*Injector)(nil)

// NewInjector returns an Injector acting through c.
func NewInjector(c Controller) *Injector {
	return &Injector{c: c, active: map[string]faults.Applied{}}
}

func key(f faults.Fault) string { return f.Name + "\x00" + string(f.Kind) + "\x00" + f.Target }

// Apply does what the fault's kind says when it starts
// (faults.ProcessKind: kill, pause or restart the target service).
func (i *Injector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	spec, ok := faults.Lookup(f.Kind)
	onProcess, isProcess := faults.As[faults.ProcessKind](f.Kind)
	switch {
	case !ok:
		return faults.Applied{}, fmt.Errorf("apply %s on service %q: unknown fault kind", f.Kind, f.Target)
	case !isProcess:
		return faults.Applied{}, fmt.Errorf("apply %s on service %q: fault kind targets a %s, not a process", f.Kind, f.Target, spec.Target)
	case f.Target == "":
		return faults.Applied{}, fmt.Errorf("apply %s: no target service", f.Kind)
	}
	action := onProcess.OnProcess()
	if err := i.do(ctx, action.Apply, f.Target); err != nil {
		return faults.Applied{}, fmt.Errorf("apply %s on service %q: %w", f.Kind, f.Target, err)
	}
	a := faults.Applied{Fault: f, Handles: []string{string(f.Kind) + ":" + f.Target}, Start: time.Now()}
	if action.Remove != "" { // else the fault is over once applied
		i.mu.Lock()
		i.active[key(f)] = a
		i.mu.Unlock()
	}
	return a, nil
}

// do makes one Controller call.
func (i *Injector) do(ctx context.Context, op faults.ProcessOp, service string) error {
	switch op {
	case faults.ProcessKill:
		return i.c.Kill(ctx, service)
	case faults.ProcessPause:
		return i.c.Pause(ctx, service)
	case faults.ProcessResume:
		return i.c.Resume(ctx, service)
	case faults.ProcessRestart:
		return i.c.Restart(ctx, service)
	}
	return fmt.Errorf("unknown process operation %q", op)
}

// Remove undoes the fault as its kind says (a killed service is
// restarted, a paused one resumed; a restart needs nothing). A fault this
// Injector does not hold as applied (already removed, or never applied
// here) is left alone.
func (i *Injector) Remove(ctx context.Context, a faults.Applied) error {
	k := key(a.Fault)
	i.mu.Lock()
	held, ok := i.active[k]
	delete(i.active, k) // taken: a concurrent Remove of the same fault does nothing
	i.mu.Unlock()
	if !ok {
		return nil
	}
	onProcess, _ := faults.As[faults.ProcessKind](a.Fault.Kind)
	if err := i.do(ctx, onProcess.OnProcess().Remove, a.Fault.Target); err != nil {
		i.mu.Lock()
		i.active[k] = held // still on: RemoveAll tries again
		i.mu.Unlock()
		return fmt.Errorf("remove %s on service %q: %w", a.Fault.Kind, a.Fault.Target, err)
	}
	return nil
}

// RemoveAll undoes every fault this Injector applied that is still on,
// newest first, and returns the errors of those it could not undo.
func (i *Injector) RemoveAll(ctx context.Context) error {
	i.mu.Lock()
	all := slices.Collect(maps.Values(i.active))
	i.mu.Unlock()
	slices.SortFunc(all, func(a, b faults.Applied) int { return b.Start.Compare(a.Start) })
	var errs []error
	for _, a := range all {
		if err := i.Remove(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
