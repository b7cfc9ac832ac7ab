// Package container puts container faults on the containers of a compose
// project with the docker CLI (no Docker SDK): the containers are found by
// their compose labels, so a fault names a compose service. A kind says
// what to do with its faults.ContainerAction (faults.ContainerKind), e.g.:
//
//	Apply  container-kill       → docker kill               Remove → docker start
//	Apply  container-pause      → docker pause              Remove → docker unpause
//	Apply  container-restart    → docker restart            Remove → nothing
//	Apply  container-disconnect → docker network disconnect Remove → docker network connect
//	                              (from every network)               (same networks, same aliases)
//
// Every apply is written to the run's faults.Journal (fsynced) before it is
// made and marked removed after its removal, so that `Reset` can undo what
// a crashed run left.
package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// ErrNoContainer is matched (errors.Is) by errors saying the project has
// no container for the service.
var ErrNoContainer = errors.New("no such container")

// Docker runs docker CLI commands on the containers of one compose project.
// It is safe for concurrent use.
type Docker struct {
	// Project is the compose project (label com.docker.compose.project).
	Project string
	// Binary is the docker executable; "" means "docker" on $PATH.
	Binary string
}

// run runs one docker command and returns its standard output.
func (d Docker) run(ctx context.Context, args ...string) ([]byte, error) {
	bin := d.Binary
	if bin == "" {
		bin = "docker"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("docker %s: %w", strings.Join(args, " "), ctxErr)
		}
		return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// Container is one container of the project as docker inspect describes it.
type Container struct {
	ID       string
	Service  string
	Status   string              // running, paused, exited, …
	Health   string              // healthy, unhealthy, starting; "" without a health check
	Networks map[string][]string // network name → the container's aliases on it
}

type inspected struct {
	ID     string `json:"Id"`
	Config struct {
		Labels map[string]string
	}
	State struct {
		Status string
		Health *struct{ Status string }
	}
	NetworkSettings struct {
		Networks map[string]struct{ Aliases []string }
	}
}

// Find returns the container of a compose service of the project.
func (d Docker) Find(ctx context.Context, service string) (Container, error) {
	ids, err := d.run(ctx, "ps", "-aq", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+d.Project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return Container{}, fmt.Errorf("find container %s of %s: %w", service, d.Project, err)
	}
	f := strings.Fields(string(ids))
	if len(f) == 0 {
		return Container{}, fmt.Errorf("find container %s of %s: %w", service, d.Project, ErrNoContainer)
	}
	out, err := d.run(ctx, "inspect", f[0])
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s of %s: %w", service, d.Project, err)
	}
	var in []inspected
	if err := json.Unmarshal(out, &in); err != nil || len(in) != 1 {
		return Container{}, fmt.Errorf("inspect container %s of %s: unexpected answer: %v", service, d.Project, err)
	}
	c := Container{ID: in[0].ID, Service: service, Status: in[0].State.Status, Networks: map[string][]string{}}
	if h := in[0].State.Health; h != nil {
		c.Health = h.Status
	}
	for name, n := range in[0].NetworkSettings.Networks {
		// The container's own short id is an alias docker adds by itself.
		c.Networks[name] = slices.DeleteFunc(slices.Clone(n.Aliases), func(a string) bool { return strings.HasPrefix(c.ID, a) })
	}
	return c, nil
}

// Kill sends SIGKILL to the service's container; it stays down (docker
// kill counts as a manual stop for the restart policy).
func (d Docker) Kill(ctx context.Context, service string) error {
	return d.act(ctx, service, "kill")
}

// Start starts the service's container (after Kill).
func (d Docker) Start(ctx context.Context, service string) error {
	return d.act(ctx, service, "start")
}

// Pause freezes every process of the service's container.
func (d Docker) Pause(ctx context.Context, service string) error {
	return d.act(ctx, service, "pause")
}

// Unpause thaws the service's container.
func (d Docker) Unpause(ctx context.Context, service string) error {
	return d.act(ctx, service, "unpause")
}

// Restart stops the service's container (SIGTERM, SIGKILL after a second)
// and starts it again.
func (d Docker) Restart(ctx context.Context, service string) error {
	return d.act(ctx, service, "restart", "--time", "1")
}

func (d Docker) act(ctx context.Context, service, verb string, flags ...string) error {
	c, err := d.Find(ctx, service)
	if err != nil {
		return err
	}
	switch {
	case verb == "start" && c.Status == "paused":
		verb = "unpause"
	case verb == "start" && c.Status == "running":
		return nil
	case verb == "unpause" && c.Status != "paused":
		return nil
	case (verb == "kill" || verb == "restart") && c.Status == "paused":
		// A paused container must be able to die.
		if _, err := d.run(ctx, "unpause", c.ID); err != nil {
			return fmt.Errorf("%s container %s of %s: %w", verb, service, d.Project, err)
		}
	}
	if _, err := d.run(ctx, append(append([]string{verb}, flags...), c.ID)...); err != nil {
		return fmt.Errorf("%s container %s of %s: %w", verb, service, d.Project, err)
	}
	return nil
}

// WaitHealthy polls the service's container until it runs and its health
// check (if it has one) passes, or ctx ends.
func (d Docker) WaitHealthy(ctx context.Context, service string) error {
	var last string
	for {
		c, err := d.Find(ctx, service)
		if err == nil && c.Status == "running" && (c.Health == "" || c.Health == "healthy") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = c.Status + " " + c.Health
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s of %s not healthy: %w (last: %s)", service, d.Project, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Disconnect disconnects the service's container from every network and
// returns them with its aliases there, for Connect.
func (d Docker) Disconnect(ctx context.Context, service string) (map[string][]string, error) {
	c, err := d.Find(ctx, service)
	if err != nil {
		return nil, err
	}
	var errs []error
	done := map[string][]string{}
	for _, n := range slices.Sorted(maps.Keys(c.Networks)) {
		if _, err := d.run(ctx, "network", "disconnect", n, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("disconnect container %s of %s: %w", service, d.Project, err))
			continue
		}
		done[n] = c.Networks[n]
	}
	return done, errors.Join(errs...)
}

// Connect connects the service's container to the networks with their
// aliases (the service name among them, so that it resolves again). A
// network it is already on is left alone.
func (d Docker) Connect(ctx context.Context, service string, networks map[string][]string) error {
	c, err := d.Find(ctx, service)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(networks)) {
		if _, on := c.Networks[n]; on {
			continue
		}
		args := []string{"network", "connect"}
		for _, a := range networks[n] {
			args = append(args, "--alias", a)
		}
		if _, err := d.run(ctx, append(args, n, c.ID)...); err != nil {
			errs = append(errs, fmt.Errorf("connect container %s of %s: %w", service, d.Project, err))
		}
	}
	return errors.Join(errs...)
}

// handle prefix of a disconnect: followed by network=alias,alias.
const handleNetwork = "network/"

// Injector is a faults.Injector for container faults (and, through
// ProcessController, for process faults) on one compose project. Every
// apply is journaled when it has a Journal. It is safe for concurrent use.
type Injector struct {
	d       Docker
	journal *faults.Journal

	mu     sync.Mutex
	active map[string]faults.Entry // by key
}

var _ faults.Injector = (*Injector)(nil)

// Name is the injector's name in the fault journal (faults.Entry.Injector);
// an entry's At is the compose project.
const Name = "container"

// NewInjector returns an Injector for the containers of the compose
// project. journal may be nil.
func NewInjector(project string, journal *faults.Journal) *Injector {
	return &Injector{d: Docker{Project: project}, journal: journal, active: map[string]faults.Entry{}}
}

func key(f faults.Fault) string { return f.Name + "\x00" + string(f.Kind) + "\x00" + f.Target }

// Apply puts the fault on its container.
func (i *Injector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	spec, ok := faults.Lookup(f.Kind)
	onContainer, isContainer := faults.As[faults.ContainerKind](f.Kind)
	switch {
	case !ok:
		return faults.Applied{}, i.errf("apply", f, errors.New("unknown fault kind"))
	case !isContainer:
		return faults.Applied{}, i.errf("apply", f, fmt.Errorf("fault kind targets a %s, not a container", spec.Target))
	case f.Target == "":
		return faults.Applied{}, i.errf("apply", f, errors.New("no target container"))
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.d.Project, Time: time.Now()}
	if i.journal != nil {
		if err := i.journal.Applying(e); err != nil {
			return faults.Applied{}, i.errf("apply", f, err)
		}
	}
	action := onContainer.OnContainer()
	var err error
	switch action.Apply {
	case faults.ContainerOpKill:
		err = i.d.Kill(ctx, f.Target)
	case faults.ContainerOpPause:
		err = i.d.Pause(ctx, f.Target)
	case faults.ContainerOpRestart:
		err = i.d.Restart(ctx, f.Target)
	case faults.ContainerOpDisconnect:
		var nets map[string][]string
		nets, err = i.d.Disconnect(ctx, f.Target)
		for _, n := range slices.Sorted(maps.Keys(nets)) {
			e.Handles = append(e.Handles, handleNetwork+n+"="+strings.Join(nets[n], ","))
		}
		if len(nets) > 0 && i.journal != nil {
			// The networks are only known now: journal them for Reset.
			if jErr := i.journal.Applying(e); jErr != nil {
				err = errors.Join(err, jErr)
			}
		}
	default:
		err = fmt.Errorf("unknown container operation %q", action.Apply)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rbErr := i.undo(rctx, e); rbErr != nil {
			i.track(e)
			return faults.Applied{}, i.errf("apply", f, errors.Join(err, fmt.Errorf("roll back: %w", rbErr)))
		}
		if i.journal != nil {
			if jErr := i.journal.Failed(e.ID, err); jErr != nil {
				err = errors.Join(err, jErr)
			}
		}
		return faults.Applied{}, i.errf("apply", f, err)
	}
	if action.Remove == "" {
		// Nothing to take off: done once it is healthy again.
		if i.journal != nil {
			if jErr := i.journal.Removed(e.ID); jErr != nil {
				return faults.Applied{}, i.errf("apply", f, jErr)
			}
		}
		if err := i.d.WaitHealthy(ctx, f.Target); err != nil {
			return faults.Applied{}, i.errf("apply", f, err)
		}
	} else {
		i.track(e)
	}
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

func (i *Injector) track(e faults.Entry) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.active[key(e.Fault)] = e
}

func (i *Injector) errf(verb string, f faults.Fault, err error) error {
	return fmt.Errorf("%s %s on container %q of %s: %w", verb, f.Kind, f.Target, i.d.Project, err)
}

// undo takes the fault of the entry off its container.
func (i *Injector) undo(ctx context.Context, e faults.Entry) error {
	return undo(ctx, Docker{Project: e.At, Binary: i.d.Binary}, e)
}

// undo takes the fault of the entry off. A container that no longer
// exists has nothing on it: that counts as undone.
func undo(ctx context.Context, d Docker, e faults.Entry) error {
	err := undoFault(ctx, d, e)
	if errors.Is(err, ErrNoContainer) {
		return nil
	}
	return err
}

func undoFault(ctx context.Context, d Docker, e faults.Entry) error {
	onContainer, ok := faults.As[faults.ContainerKind](e.Fault.Kind)
	if !ok {
		return nil // not a container fault: nothing of it on a container
	}
	switch op := onContainer.OnContainer().Remove; op {
	case "":
		return nil
	case faults.ContainerOpStart:
		return d.Start(ctx, e.Fault.Target)
	case faults.ContainerOpUnpause:
		return d.Unpause(ctx, e.Fault.Target)
	case faults.ContainerOpConnect:
		nets := map[string][]string{}
		for _, h := range e.Handles {
			spec, ok := strings.CutPrefix(h, handleNetwork)
			if !ok {
				return fmt.Errorf("unknown handle %q", h)
			}
			n, aliases, _ := strings.Cut(spec, "=")
			nets[n] = strings.FieldsFunc(aliases, func(r rune) bool { return r == ',' })
		}
		return d.Connect(ctx, e.Fault.Target, nets)
	default:
		return fmt.Errorf("unknown container operation %q", op)
	}
}

// Remove takes the fault off: the container started, unpaused or
// reconnected. Removing a fault that is not on succeeds.
func (i *Injector) Remove(ctx context.Context, a faults.Applied) error {
	k := key(a.Fault)
	i.mu.Lock()
	e, ok := i.active[k]
	i.mu.Unlock()
	if !ok {
		return nil
	}
	if err := i.undo(ctx, e); err != nil {
		return i.errf("remove", a.Fault, err)
	}
	i.mu.Lock()
	delete(i.active, k)
	i.mu.Unlock()
	if i.journal != nil {
		if err := i.journal.Removed(e.ID); err != nil {
			return i.errf("remove", a.Fault, err)
		}
	}
	return nil
}

// RemoveAll takes off every fault this Injector applied that is still on,
// newest first, and returns the errors of those it could not remove.
func (i *Injector) RemoveAll(ctx context.Context) error {
	i.mu.Lock()
	entries := slices.Collect(maps.Values(i.active))
	i.mu.Unlock()
	slices.SortFunc(entries, func(a, b faults.Entry) int { return b.Time.Compare(a.Time) })
	var errs []error
	for _, e := range entries {
		if err := i.Remove(ctx, faults.Applied{Fault: e.Fault, Handles: e.Handles}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reset undoes every container fault the journal lists as applied and not
// removed (containers started, unpaused, reconnected) and records each
// removal. A container that no longer exists counts as reset. It returns
// how many faults it removed.
func Reset(ctx context.Context, journal *faults.Journal) (int, error) {
	entries, err := journal.OutstandingOf(Name)
	if err != nil {
		return 0, fmt.Errorf("reset container faults: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if err := undo(ctx, Docker{Project: e.At}, e); err != nil {
			errs = append(errs, fmt.Errorf("reset %s on container %q of %s: %w", e.Fault.Kind, e.Fault.Target, e.At, err))
			continue
		}
		if err := journal.Removed(e.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
