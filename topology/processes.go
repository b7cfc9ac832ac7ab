package topology

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fallacies/fallacies/services/config"
)

// Processes runs nats-server and Toxiproxy in this process and every
// service as a child process (`fallacies serve <name>`), so that a fault can
// kill, pause and restart a real process. Children get SIGKILL when this
// process dies (Linux parent-death signal).
type Processes struct {
	*system
	children *children
}

// StartProcesses starts the processes topology and returns when every
// service answers its health check.
func StartProcesses(ctx context.Context, o Options) (*Processes, error) {
	if o.Binary == "" {
		bin, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the fallacies binary: %w", err)
		}
		o.Binary = bin
	}
	dir, err := os.MkdirTemp("", "fallacies-processes-")
	if err != nil {
		return nil, err
	}
	ch := &children{o: o, dir: dir, byName: map[string]*child{}}
	s, err := startSystem(ctx, o, ch)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.onStop(func(context.Context) error { return os.RemoveAll(dir) })
	s.endpoints.OTLP = o.OTLPEndpoint
	return &Processes{system: s, children: ch}, nil
}

// children places every service instance in a child process and keeps
// them by instance name.
type children struct {
	o   Options
	dir string // configurations, identities and records of the children

	mu     sync.Mutex
	byName map[string]*child
}

type child struct {
	name  string
	cfg   ServeConfig
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	ready Ready
}

func (p *children) start(ctx context.Context, in instance, c ServeConfig, id *Identity) (running, error) {
	// Records outlive a killed process, as with a real database.
	c.System.Payment.LedgerFile = filepath.Join(p.dir, replicaName(c.Replica)+".ledger")
	c.System.Notification.StoreFile = filepath.Join(p.dir, "notification.applied")
	c.System.Ledger.StoreFile = filepath.Join(p.dir, "ledger.applied")
	if id != nil {
		// The identity in PEM files of the temporary folder, readable by
		// the owner only.
		files, err := id.WriteFiles(p.dir)
		if err != nil {
			return nil, fmt.Errorf("%s: mtls: %w", in.name(), err)
		}
		c.TLS = &files
	}
	return p.startChild(ctx, in.name(), c)
}

// startChild starts one service process and waits for its readiness line.
func (p *children) startChild(ctx context.Context, name string, c ServeConfig) (*child, error) {
	cfgPath := filepath.Join(p.dir, name+".json")
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s config: %w", c.Service, err)
	}
	cmd := exec.Command(p.o.Binary, "serve", c.Service, "--config", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = p.env(c.Service)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %w", c.Service, err)
	}
	ch := &child{name: name, cfg: c, cmd: cmd, done: make(chan struct{})}
	readyc := make(chan Ready, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if r, ok := strings.CutPrefix(line, ReadyPrefix); ok {
				var rd Ready
				if json.Unmarshal([]byte(r), &rd) == nil {
					readyc <- rd
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(ch.done)
	}()
	p.mu.Lock()
	p.byName[name] = ch
	p.mu.Unlock()
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	select {
	case ch.ready = <-readyc:
		return ch, nil
	case <-ch.done:
		return nil, fmt.Errorf("%s process exited before it was ready: %s", c.Service, strings.TrimSpace(stderr.String()))
	case <-ctx.Done():
		return nil, fmt.Errorf("%s process not ready: %w", c.Service, ctx.Err())
	case <-timeout.C:
		return nil, fmt.Errorf("%s process not ready within 15s: %s", c.Service, strings.TrimSpace(stderr.String()))
	}
}

// env is the environment of a child: this process's, its service name
// and where it exports traces.
func (p *children) env(service string) []string {
	env := append(os.Environ(), "OTEL_SERVICE_NAME="+service)
	e := p.o.OTLPEndpoint
	if e == "" {
		return env
	}
	// host:port means plaintext; a URL keeps its scheme. The traces
	// variable is set too, so that one inherited from this process cannot
	// send the children elsewhere.
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+e, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+e)
	if strings.HasPrefix(e, "http://") {
		env = append(env, "OTEL_EXPORTER_OTLP_INSECURE=true")
	}
	return env
}

func (c *child) readiness() Ready { return c.ready }

// stop ends the process: SIGTERM, then SIGKILL when it is not gone within
// 5 s or when ctx ends.
func (c *child) stop(ctx context.Context) error {
	c.cmd.Process.Signal(syscall.SIGCONT) // a paused process must be able to stop
	c.cmd.Process.Signal(syscall.SIGTERM)
	grace, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case <-c.done:
	case <-grace.Done():
		c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// PID returns the process id of a service, or 0.
func (t *Processes) PID(service string) int {
	if c, err := t.child(service); err == nil && c.cmd.Process != nil {
		return c.cmd.Process.Pid
	}
	return 0
}

func (t *Processes) child(service string) (*child, error) {
	t.children.mu.Lock()
	defer t.children.mu.Unlock()
	c := t.children.byName[service]
	if c == nil {
		return nil, fmt.Errorf("no process for service %q", service)
	}
	return c, nil
}

// Kill sends SIGKILL to a service process and waits until it is gone.
func (t *Processes) Kill(ctx context.Context, service string) error {
	c, err := t.child(service)
	if err != nil {
		return err
	}
	c.cmd.Process.Signal(syscall.SIGCONT) // a paused process must be able to die
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", service, err)
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill %s: %w", service, ctx.Err())
	}
}

// Pause stops a service process with SIGSTOP and returns once the kernel
// shows it stopped: a signal is delivered asynchronously, and a request
// the process took meanwhile would be answered by a paused service.
func (t *Processes) Pause(ctx context.Context, service string) error {
	return t.signal(ctx, service, "pause", syscall.SIGSTOP, true)
}

// Resume continues a paused service process with SIGCONT and returns once
// the kernel shows it running again.
func (t *Processes) Resume(ctx context.Context, service string) error {
	return t.signal(ctx, service, "resume", syscall.SIGCONT, false)
}

// signalSettle bounds how long signal waits for the process to show the
// state its signal asks for.
const signalSettle = 5 * time.Second

// signal sends sig to a service process, then polls /proc until the
// process is stopped (stopped true) or no longer stopped, or it is gone.
func (t *Processes) signal(ctx context.Context, service, what string, sig syscall.Signal, stopped bool) error {
	c, err := t.child(service)
	if err != nil {
		return err
	}
	if err := c.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s %s: %w", what, service, err)
	}
	ctx, cancel := context.WithTimeout(ctx, signalSettle)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		state, ok := processState(c.cmd.Process.Pid)
		if !ok || (state == 'T' || state == 't') == stopped {
			return nil // done, or gone (the caller sees that elsewhere)
		}
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s %s: process %d still in state %c: %w", what, service, c.cmd.Process.Pid, state, ctx.Err())
		case <-tick.C:
		}
	}
}

// processState returns the one-letter state of /proc/PID/stat (R, S, T,
// …); ok is false when the process is gone or /proc cannot tell.
func processState(pid int) (state byte, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// "pid (comm) state …": comm may hold spaces and parentheses.
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	for _, b := range rest {
		if b != ' ' {
			return b, true
		}
	}
	return 0, false
}

// Restart kills a service process (if it runs) and starts it again. The new
// process binds a new port; the proxies in front of it are repointed, so
// callers going through the proxy find it, while anything that dialled the
// old address directly does not.
func (t *Processes) Restart(ctx context.Context, service string) error {
	c, err := t.child(service)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
	default:
		if err := t.Kill(ctx, service); err != nil {
			return err
		}
	}
	nc, err := t.children.startChild(ctx, service, c.cfg)
	if err != nil {
		return fmt.Errorf("restart %s: %w", service, err)
	}
	repoint := map[string]string{}
	t.mu.Lock()
	t.instances[service] = nc
	for l, addr := range frontsOf(service, nc.ready) {
		if _, ok := t.endpoints.Proxies[l]; ok {
			repoint[l] = addr
		}
	}
	t.mu.Unlock()
	if err := t.repoint(ctx, service, repoint); err != nil {
		return err
	}
	t.setEndpoints(service, nc.ready)
	return waitHealthy(ctx, nc.ready.GRPC, t.sec.creds())
}

// repoint makes the proxies in front of a restarted service (proxy name →
// its new address) reach it. With topology.restart_address same each
// proxy is repointed and keeps its address; with new, each proxy moves to
// a new address, which the registry publishes, and the old address
// refuses connections: a client pinned to it fails until it looks again.
func (t *Processes) repoint(ctx context.Context, service string, upstreams map[string]string) error {
	if t.o.System.Topology.RestartAddress != config.AddressNew {
		for proxy, addr := range upstreams {
			if err := t.toxiproxy.SetUpstream(proxy, addr); err != nil {
				return fmt.Errorf("restart %s: repoint proxy %s: %w", service, proxy, err)
			}
		}
		return nil
	}
	moved := map[string]string{}
	for proxy, addr := range upstreams {
		t.mu.Lock()
		old := t.endpoints.Proxies[proxy]
		t.mu.Unlock()
		listen, err := t.toxiproxy.Move(proxy, addr)
		if err != nil {
			return fmt.Errorf("restart %s: %w", service, err)
		}
		moved[proxy] = listen
		t.tombstone(old)
	}
	t.mu.Lock()
	for proxy, listen := range moved {
		t.endpoints.Proxies[proxy] = listen
	}
	t.mu.Unlock()
	if err := t.reg.publish(ctx, moved); err != nil {
		return fmt.Errorf("restart %s: %w", service, err)
	}
	return nil
}

// tombstone holds a moved proxy's old address until the topology stops,
// closing every connection to it at once: the address is dead, as it is
// where the service used to be, and no other program (on a machine other
// testbeds share) can take the port and answer the pinned clients in its
// place. A port that is already taken is left alone.
func (t *Processes) tombstone(addr string) {
	if addr == "" {
		return
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		if t.o.Logger != nil {
			t.o.Logger.Warn("tombstone of a moved proxy", "addr", addr, "err", err)
		}
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.mu.Lock()
	t.infraStop = append(t.infraStop, func(context.Context) error {
		lis.Close()
		<-done
		return nil
	})
	t.mu.Unlock()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
