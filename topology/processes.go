package topology

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/config"
)

// Processes runs nats-server and Toxiproxy in this process and every
// service as a child process (`fallacies serve <name>`), so that a fault can
// kill, pause and restart a real process. Children get SIGKILL when this
// process dies (Linux parent-death signal).
type Processes struct {
	o         Options
	endpoints Endpoints
	toxiproxy *toxiproxy.Server
	dir       string
	stopInfra []func(context.Context) error
	sec       *security // nil: plaintext
	reg       *registry // the service registry, updated when a service moves

	mu       sync.Mutex
	children map[string]*child
	stopped  bool
}

type child struct {
	name  string
	cfg   ServeConfig
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	ready Ready
}

// StartProcesses starts the processes topology and returns when every
// service answers its health check.
func StartProcesses(ctx context.Context, o Options) (t *Processes, err error) {
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the fallacies binary: %w", err)
		}
	}
	o.Binary = bin
	dir, err := os.MkdirTemp("", "fallacies-processes-")
	if err != nil {
		return nil, err
	}
	t = &Processes{o: o, dir: dir, children: map[string]*child{}}
	started := t // a `return nil, err` clears t before the deferred cleanup runs
	defer func() {
		if err != nil {
			started.Stop(context.WithoutCancel(ctx))
			t = nil
		}
	}()
	host := o.host()
	if t.sec, err = newSecurity(o.System.Security.MTLS); err != nil {
		return nil, err
	}
	natsTLS, err := t.sec.serverTLS("nats")
	if err != nil {
		return nil, err
	}
	ns, stopNATS, err := startNATS(ctx, host, o.NATSPort, natsTLS)
	if err != nil {
		return nil, err
	}
	t.stopInfra = append(t.stopInfra, func(context.Context) error { stopNATS(); return nil })
	reg, err := openRegistry(ctx, natsURL(ns), t.sec)
	if err != nil {
		return nil, err
	}
	t.reg = reg
	t.stopInfra = append(t.stopInfra, func(context.Context) error { reg.close(); return nil })
	apiAddr := o.ToxiproxyAPI
	if apiAddr == "" {
		apiAddr = net.JoinHostPort(host, "0")
	}
	apiLis, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API: listen on %s: %w", apiAddr, err)
	}
	tp, err := toxiproxy.Start(ctx, apiLis, o.Logger)
	if err != nil {
		apiLis.Close()
		return nil, fmt.Errorf("toxiproxy: %w", err)
	}
	t.toxiproxy = tp
	t.stopInfra = append(t.stopInfra, tp.Shutdown)

	proxies := map[string]string{}
	addProxy := func(name, upstream string) error {
		addr, err := tp.AddProxy(name, upstream)
		if err != nil {
			return fmt.Errorf("create proxy %s: %w", name, err)
		}
		proxies[name] = addr
		return nil
	}
	natsProxies := []string{"nats-order", "nats-notification", "nats-ledger"}
	if o.System.Payment.Idempotency == config.IdempotencyShared {
		natsProxies = append(natsProxies, ProxyNATSPayment)
	}
	for _, name := range natsProxies {
		if err := addProxy(name, ns.Addr().String()); err != nil {
			return nil, err
		}
	}
	any := net.JoinHostPort(host, "0")
	sys := o.System
	// Records outlive a killed process, as with a real database.
	sys.Payment.LedgerFile = filepath.Join(dir, "payment.ledger")
	sys.Notification.StoreFile = filepath.Join(dir, "notification.applied")
	sys.Ledger.StoreFile = filepath.Join(dir, "ledger.applied")
	start := func(c ServeConfig) (*child, error) {
		c.System = sys
		c.Listen = any
		if c.Service == "payment" && c.Replica > 0 {
			c.System.Payment.LedgerFile = filepath.Join(dir, replicaName(c.Replica)+".ledger")
		}
		if err := t.secure(&c); err != nil {
			return nil, err
		}
		return t.startChild(ctx, c)
	}
	us, err := start(ServeConfig{Service: "user", HTTPListen: any})
	if err != nil {
		return nil, err
	}
	pss := make([]*child, paymentReplicas(sys))
	for i := range pss {
		if pss[i], err = start(ServeConfig{Service: "payment", Replica: i, NATSURL: "nats://" + proxies[ProxyNATSPayment]}); err != nil {
			return nil, err
		}
	}
	ps := pss[0]
	if err := addProxy("user", us.ready.GRPC); err != nil {
		return nil, err
	}
	if err := addProxy("user-http", us.ready.HTTP); err != nil {
		return nil, err
	}
	for i, c := range pss {
		if err := addProxy(replicaName(i), c.ready.GRPC); err != nil {
			return nil, err
		}
	}
	if err := t.reg.publish(ctx, registryEntries(proxies)); err != nil {
		return nil, err
	}
	nc, err := start(ServeConfig{Service: "notification", NATSURL: "nats://" + proxies["nats-notification"]})
	if err != nil {
		return nil, err
	}
	lc, err := start(ServeConfig{Service: "ledger", NATSURL: "nats://" + proxies["nats-ledger"]})
	if err != nil {
		return nil, err
	}
	oc, err := start(ServeConfig{Service: "order", UserAddr: proxies["user"], PaymentAddr: proxies["payment"], PaymentReplicas: replicaProxies(sys, proxies), NATSURL: "nats://" + proxies["nats-order"], UserHTTPAddr: proxies["user-http"]})
	if err != nil {
		return nil, err
	}
	t.endpoints = Endpoints{
		ToxiproxyAPI: tp.URL(),
		NATS:         natsURL(ns),
		UserHTTP:     us.ready.HTTP,
		Proxies:      proxies,
		OTLP:         o.OTLPEndpoint,
		Services: map[string]string{
			"user": us.ready.GRPC, "payment": ps.ready.GRPC, "notification": nc.ready.GRPC,
			"ledger": lc.ready.GRPC, "order": oc.ready.GRPC,
		},
	}
	for i := 1; i < len(pss); i++ {
		t.endpoints.Services[replicaName(i)] = pss[i].ready.GRPC
	}
	for _, name := range append(slices.Clone(Services), replicaNames(sys)...) {
		if err := waitHealthy(ctx, t.endpoints.Services[name], t.sec.creds()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return t, nil
}

// startChild starts one service process and waits for its readiness line.
func (t *Processes) startChild(ctx context.Context, c ServeConfig) (*child, error) {
	name := c.Service
	if c.Service == "payment" {
		name = replicaName(c.Replica)
	}
	cfgPath := filepath.Join(t.dir, name+".json")
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s config: %w", c.Service, err)
	}
	cmd := exec.Command(t.o.Binary, "serve", c.Service, "--config", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME="+c.Service)
	if e := t.o.OTLPEndpoint; e != "" {
		// host:port means plaintext; a URL keeps its scheme. The traces
		// variable is set too, so that one inherited from this process
		// cannot send the children elsewhere.
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		cmd.Env = append(cmd.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+e, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+e)
		if strings.HasPrefix(e, "http://") {
			cmd.Env = append(cmd.Env, "OTEL_EXPORTER_OTLP_INSECURE=true")
		}
	}
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
	t.mu.Lock()
	t.children[name] = ch
	t.mu.Unlock()
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

// Endpoints returns where every piece listens now: a restarted service
// listens at a new address.
func (t *Processes) Endpoints() Endpoints {
	t.mu.Lock()
	defer t.mu.Unlock()
	ep := t.endpoints
	ep.Services = maps.Clone(t.endpoints.Services)
	ep.Proxies = maps.Clone(t.endpoints.Proxies)
	return ep
}

// PID returns the process id of a service, or 0.
func (t *Processes) PID(service string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.children[service]; c != nil && c.cmd.Process != nil {
		return c.cmd.Process.Pid
	}
	return 0
}

func (t *Processes) child(service string) (*child, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.children[service]
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

// Pause stops a service process with SIGSTOP.
func (t *Processes) Pause(_ context.Context, service string) error {
	c, err := t.child(service)
	if err != nil {
		return err
	}
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause %s: %w", service, err)
	}
	return nil
}

// Resume continues a paused service process with SIGCONT.
func (t *Processes) Resume(_ context.Context, service string) error {
	c, err := t.child(service)
	if err != nil {
		return err
	}
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume %s: %w", service, err)
	}
	return nil
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
	nc, err := t.startChild(ctx, c.cfg)
	if err != nil {
		return fmt.Errorf("restart %s: %w", service, err)
	}
	repoint := map[string]string{}
	switch service {
	case "user":
		repoint["user"], repoint["user-http"] = nc.ready.GRPC, nc.ready.HTTP
	case "payment", "payment-1", "payment-2":
		repoint[service] = nc.ready.GRPC
	}
	if err := t.repoint(ctx, service, repoint); err != nil {
		return err
	}
	t.mu.Lock()
	t.endpoints.Services[service] = nc.ready.GRPC
	if service == "user" {
		t.endpoints.UserHTTP = nc.ready.HTTP
	}
	t.mu.Unlock()
	return waitHealthy(ctx, nc.ready.GRPC, t.sec.creds())
}

// Stop terminates every service process (SIGTERM, then SIGKILL after the
// deadline), then Toxiproxy and nats-server, and removes temporary files.
func (t *Processes) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	children := make([]*child, 0, len(t.children))
	for _, c := range t.children {
		children = append(children, c)
	}
	t.mu.Unlock()
	grace, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, c := range children {
		c.cmd.Process.Signal(syscall.SIGCONT)
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	var errs []error
	for _, c := range children {
		select {
		case <-c.done:
		case <-grace.Done():
			c.cmd.Process.Kill()
			<-c.done
		}
	}
	for i := len(t.stopInfra) - 1; i >= 0; i-- {
		if err := t.stopInfra[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	os.RemoveAll(t.dir)
	return errors.Join(errs...)
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
