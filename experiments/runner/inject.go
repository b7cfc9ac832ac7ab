package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/container"
	"github.com/fallacies/fallacies/faults/packet"
	"github.com/fallacies/fallacies/faults/process"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/topology"
)

// armFaults readies the injectors of the system and the scheduler of the
// experiment's faults. Network faults go through Toxiproxy; the
// topology's capabilities say which other faults it can take: a compose
// project's containers (containerHost), processes (process.Controller).
// Every fault is journaled before it is applied, in the one journal of
// the run whatever its injector, so that `fallacies reset --journal`
// undoes what a SIGKILL left on; the teardown removes every fault still
// on, whatever way the run ends.
func (vr *variantRun) armFaults(ctx context.Context) (teardown, error) {
	journal, err := faults.OpenJournal(vr.journal)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	vr.network = toxiproxy.NewInjector(vr.ep.ToxiproxyAPI, journal)
	if err := vr.network.Ping(ctx); err != nil {
		journal.Close()
		return nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	// The Toxiproxy injector also applies the call-level faults, through
	// the gRPC layer it interposes on their link's proxy.
	inj := faults.NewRouter().Handle(faults.TargetProxy, vr.network).Handle(faults.TargetGRPC, vr.network).Handle(faults.TargetNATS, vr.network)
	switch t := vr.topo.(type) {
	case containerHost:
		// Process faults hit the service's container as the container
		// faults they are, journaled too. (A compose topology can also
		// kill its services' processes, so this case comes first.)
		cinj := container.NewInjector(t.Project(), journal)
		inj.Handle(faults.TargetContainer, cinj)
		inj.Handle(faults.TargetProcess, composeProcesses{containers: cinj, docker: t.Docker()})
	case process.Controller:
		inj.Handle(faults.TargetProcess, process.NewInjector(t))
	}
	// A link with a packet fault gets its segment now, before the load:
	// interposing restarts the link's proxy. Its faults only set rules.
	vr.packets = packet.NewInjector(vr.network, vr.exp.Seed+int64(vr.index))
	inj.HandleKinds(packet.Applies, vr.packets)
	vr.faults = inj
	scheduled, prepared := faults.Injector(inj), vr.exp.Faults
	if vr.opts.Control {
		scheduled, prepared = controlInjector{}, nil
	}
	vr.sched = newScheduler(vr.opts.liveInjector(scheduled), vr.exp.Faults)
	if err := vr.packets.Prepare(ctx, prepared); err != nil {
		err = errors.Join(err, vr.packets.Close(context.WithoutCancel(ctx)))
		journal.Close()
		return nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	// A link with a call-level (message-level) fault gets its gRPC (NATS)
	// layer now too: its faults then only set the layer's rules, with no
	// proxy restart (and no reconnection) in the middle of the load.
	if err := errors.Join(vr.network.PrepareCalls(ctx, prepared), vr.network.PrepareMessages(ctx, prepared)); err != nil {
		wctx := context.WithoutCancel(ctx)
		err = errors.Join(err, vr.network.CloseCalls(wctx), vr.network.CloseMessages(wctx), vr.packets.Close(wctx))
		journal.Close()
		return nil, fmt.Errorf("%w: %v", ErrTestbed, err)
	}
	return func(ctx context.Context) error {
		err := vr.sched.removeAll(ctx)
		err = errors.Join(err, vr.network.CloseCalls(ctx), vr.network.CloseMessages(ctx), vr.packets.Close(ctx))
		journal.Close()
		if err != nil {
			return fmt.Errorf("%w: remove faults: %v", ErrTestbed, err)
		}
		return nil
	}, nil
}

// controlInjector is the injector of a control run (Options.Control):
// each fault is taken on at its time and off at its end, and nothing is
// put on the system.
type controlInjector struct{}

func (controlInjector) Apply(_ context.Context, f faults.Fault) (faults.Applied, error) {
	return faults.Applied{Fault: f, Start: time.Now()}, nil
}

func (controlInjector) Remove(context.Context, faults.Applied) error { return nil }

// containerHost is the capability of a topology whose services run in
// the containers of a compose project: container faults, and process
// faults as container faults (topology.Compose).
type containerHost interface {
	Project() string
	Docker() container.Docker
}

// A topology whose services are processes it can kill, pause and restart
// implements process.Controller (topology.Processes).
var (
	_ process.Controller = (*topology.Processes)(nil)
	_ containerHost      = (*topology.Compose)(nil)
)

// composeProcesses applies process faults on the compose topology through
// the journaled container injector, each as the container kind its
// faults.ProcessAction names (OnCompose): pause as container-pause, kill
// as container-kill, restart as container-restart. A fault whose removal
// restarts the process (kill) is removed by starting the container again
// and waiting until it is healthy. Applied faults keep their process kind.
type composeProcesses struct {
	containers faults.Injector
	docker     container.Docker
}

// onCompose returns the process action of kind k.
func onCompose(k faults.Kind) (faults.ProcessAction, error) {
	pk, ok := faults.As[faults.ProcessKind](k)
	if !ok || pk.OnProcess().OnCompose == "" {
		return faults.ProcessAction{}, fmt.Errorf("%s is not a process fault the compose topology can apply", k)
	}
	return pk.OnProcess(), nil
}

// Apply implements faults.Injector.
func (p composeProcesses) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	action, err := onCompose(f.Kind)
	if err != nil {
		return faults.Applied{}, fmt.Errorf("apply %s on service %q: %w", f.Kind, f.Target, err)
	}
	cf := f
	cf.Kind = action.OnCompose
	a, err := p.containers.Apply(ctx, cf)
	a.Fault = f
	return a, err
}

// Remove implements faults.Injector.
func (p composeProcesses) Remove(ctx context.Context, a faults.Applied) error {
	action, err := onCompose(a.Fault.Kind)
	if err != nil {
		return fmt.Errorf("remove %s on service %q: %w", a.Fault.Kind, a.Fault.Target, err)
	}
	a.Fault.Kind = action.OnCompose
	if err := p.containers.Remove(ctx, a); err != nil {
		return err
	}
	if action.Remove == faults.ProcessRestart {
		return p.docker.WaitHealthy(ctx, a.Fault.Target)
	}
	return nil
}

// faultsReport converts the scheduler's history for the report, with what
// the injectors counted of each fault (faults.Counter).
func faultsReport(h []appliedFault, start time.Time, counted faults.Counter) []report.Fault {
	var out []report.Fault
	for _, a := range h {
		f := a.Fault
		end := a.End
		if end.IsZero() {
			end = time.Now()
		}
		out = append(out, report.Fault{
			Name: f.Name, Kind: string(f.Kind), Target: f.Target, Direction: string(f.Direction), Attrs: f.Attrs,
			Start: a.Start, End: end, StartOffset: a.Start.Sub(start).Seconds(), EndOffset: end.Sub(start).Seconds(),
			Counters: counted.Counters(f.Name),
		})
		if a.RemoveErr != nil {
			out[len(out)-1].RemovalError = a.RemoveErr.Error()
			out[len(out)-1].RolledBack = a.RolledBack
		}
	}
	slices.SortFunc(out, func(a, b report.Fault) int { return a.Start.Compare(b.Start) })
	return out
}
