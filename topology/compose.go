package topology

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults/container"
	"github.com/fallacies/fallacies/services/config"
)

// KindCompose is the topology of docker-compose.yml: every piece in a
// container of images built FROM scratch (`make images`).
const KindCompose = "compose"

// Compose image names and the versions used when the binary carries no
// build information about its dependencies.
const (
	ImageFallacies          = "fallacies/fallacies:dev"
	defaultToxiproxyVersion = "2.12.0"
	defaultNATSVersion      = "2.15.2"
)

// composePort is a container port of docker-compose.yml published on the
// host.
type composePort struct {
	service string // compose service
	port    string // container port
	env     string // variable of its host port in docker-compose.yml
	http    bool   // the service's HTTP API
}

// composePorts lists the published ports: Toxiproxy's API, nats-server's
// client port and those of every service of serviceSpecs.
func composePorts() []composePort {
	ports := []composePort{
		{service: "toxiproxy", port: "8474", env: "FALLACIES_TOXIPROXY_PORT"},
		{service: "nats", port: "4222", env: "FALLACIES_NATS_PORT"},
	}
	for _, s := range serviceSpecs {
		env := "FALLACIES_" + strings.ToUpper(s.name)
		ports = append(ports, composePort{service: s.name, port: s.composePort, env: env + "_PORT"})
		if s.composeHTTPPort != "" {
			ports = append(ports, composePort{service: s.name, port: s.composeHTTPPort, env: env + "_HTTP_PORT", http: true})
		}
	}
	return ports
}

// ComposeServices lists the services of docker-compose.yml that run by
// default (jaeger is behind a profile); container faults target them.
var ComposeServices = append([]string{"toxiproxy", "nats"}, Services...)

// Compose is the system under test started with docker compose under a
// project name of its own, so several can run side by side. Its containers
// publish their ports on 127.0.0.1 at free host ports.
type Compose struct {
	project   string
	file      string
	cli       []string
	env       []string
	endpoints Endpoints
	logger    *slog.Logger

	mu      sync.Mutex
	stopped bool
}

// StartCompose brings docker-compose.yml up under a new project with the
// system configuration of o (passed as $FALLACIES_SYSTEM), waits until every
// container's health check passes and reads the published ports. On error
// the project is taken down again. The images must exist (`make images`).
//
// The compose file is $FALLACIES_COMPOSE_FILE or the docker-compose.yml of
// the working directory or the nearest directory above it.
func StartCompose(ctx context.Context, o Options) (t *Compose, err error) {
	if err := composeSupports(o.System); err != nil {
		return nil, err
	}
	file, err := findComposeFile()
	if err != nil {
		return nil, err
	}
	cli, err := ComposeCommand(ctx)
	if err != nil {
		return nil, err
	}
	tv, nv := ImageVersions()
	images := []string{ImageFallacies, "fallacies/toxiproxy-guarded:" + tv, "fallacies/nats:" + nv}
	if out, err := docker(ctx, nil, append([]string{"image", "inspect", "--format", "{{.Id}}"}, images...)...); err != nil {
		return nil, fmt.Errorf("compose images %s: %w (build them with `make images`): %s", strings.Join(images, ", "), err, out)
	}
	sys, err := json.Marshal(o.System)
	if err != nil {
		return nil, fmt.Errorf("encode system configuration: %w", err)
	}
	env := append(os.Environ(),
		"TOXIPROXY_VERSION="+tv, "NATS_VERSION="+nv,
		"FALLACIES_SYSTEM="+string(sys), "FALLACIES_SET=",
		"FALLACIES_OTLP_ENDPOINT=",
	)
	if e := o.OTLPEndpoint; e != "" {
		// host:port means plaintext; a URL keeps its scheme. The host must
		// be reachable from the containers (see ComposeHostAddress).
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		env = append(env, "FALLACIES_OTLP_ENDPOINT="+e)
	}
	for _, p := range composePorts() {
		env = append(env, p.env+"=") // a free host port each
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t = &Compose{project: "fallacies-" + randomSuffix(), file: file, cli: cli, env: env, logger: logger}
	started := t // a failing return sets t to nil before this runs
	defer func() {
		if err != nil {
			// ctx may be what ended the start: stop under a deadline of its own.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			started.Stop(sctx)
			t = nil
		}
	}()
	if out, err := t.compose(ctx, "up", "-d", "--no-color"); err != nil {
		return nil, fmt.Errorf("compose up %s: %w: %s", t.project, err, tail(out, 2000))
	}
	if err := WaitComposeHealthy(ctx, t.project, 3*time.Minute); err != nil {
		return nil, err
	}
	if t.endpoints, err = ComposeEndpoints(ctx, t.project); err != nil {
		return nil, err
	}
	t.endpoints.OTLP = o.OTLPEndpoint
	return t, nil
}

// Project returns the compose project name (the value of the
// com.docker.compose.project label of its containers).
func (t *Compose) Project() string { return t.project }

// Endpoints returns where the published ports are, read again from docker
// (a restarted or reconnected container may publish at a new host port);
// when docker does not answer within 10 s, the last ones known. Proxies
// stay empty: they listen inside the compose network (the Toxiproxy API
// lists them).
func (t *Compose) Endpoints() Endpoints {
	t.mu.Lock()
	ep, stopped := t.endpoints, t.stopped
	t.mu.Unlock()
	if stopped || ep.Services == nil {
		return ep
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fresh, err := ComposeEndpoints(ctx, t.project)
	if err != nil {
		t.logger.Warn("compose endpoints", "project", t.project, "err", err)
		return ep
	}
	fresh.OTLP, fresh.JaegerUI = ep.OTLP, ep.JaegerUI
	t.mu.Lock()
	t.endpoints = fresh
	t.mu.Unlock()
	return fresh
}

// Docker returns the docker CLI over the project's containers, which
// container faults use.
func (t *Compose) Docker() container.Docker { return container.Docker{Project: t.project} }

// Kill sends SIGKILL to a service's container; it stays down until
// Restart (process faults on the compose topology).
func (t *Compose) Kill(ctx context.Context, service string) error {
	return t.Docker().Kill(ctx, service)
}

// Pause freezes a service's container.
func (t *Compose) Pause(ctx context.Context, service string) error {
	return t.Docker().Pause(ctx, service)
}

// Resume thaws a paused service's container.
func (t *Compose) Resume(ctx context.Context, service string) error {
	return t.Docker().Unpause(ctx, service)
}

// Restart restarts (or, after Kill, starts) a service's container and waits
// until its health check passes.
func (t *Compose) Restart(ctx context.Context, service string) error {
	d := t.Docker()
	c, err := d.Find(ctx, service)
	if err != nil {
		return err
	}
	if c.Status == "running" || c.Status == "paused" { // restart unpauses first
		err = d.Restart(ctx, service)
	} else {
		err = d.Start(ctx, service)
	}
	if err != nil {
		return err
	}
	return d.WaitHealthy(ctx, service)
}

// Stop takes the project down with its network and volumes. It runs at
// least a minute even when ctx ends sooner: containers left behind are worse
// than a slow stop.
func (t *Compose) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	t.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if out, err := t.compose(dctx, "down", "-v", "--remove-orphans", "--timeout", "5"); err != nil {
		return fmt.Errorf("compose down %s: %w: %s", t.project, err, tail(out, 2000))
	}
	return nil
}

func (t *Compose) compose(ctx context.Context, args ...string) ([]byte, error) {
	full := append(slices.Clone(t.cli[1:]), "-p", t.project, "-f", t.file)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, t.cli[0], full...)
	cmd.Env = t.env
	cmd.Dir = filepath.Dir(t.file)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.logger.Debug("compose", "args", strings.Join(full, " "), "err", err)
	return out, err
}

// composeSupports refuses the configurations docker-compose.yml cannot
// run: it has one container per service and no certificates.
func composeSupports(sys config.System) error {
	var no []string
	if paymentReplicas(sys) > 1 {
		no = append(no, "payment.replicas > 1")
	}
	if sys.Payment.Idempotency == config.IdempotencyShared {
		no = append(no, "payment.idempotency: shared")
	}
	if sys.Security.MTLS {
		no = append(no, "security.mtls: on")
	}
	if len(no) > 0 {
		return fmt.Errorf("the compose topology does not support %s (use the embedded or processes topology)", strings.Join(no, ", "))
	}
	return nil
}

// ComposeHostAddress returns the address at which containers reach this
// host: that of the docker0 bridge (what host.docker.internal:host-gateway
// resolves to). A listener for the containers, such as the runner's trace
// receiver, binds to it rather than to every interface.
func ComposeHostAddress() (string, error) {
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		return "", fmt.Errorf("find the docker bridge: %w", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", fmt.Errorf("find the docker bridge address: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("the docker0 bridge has no IPv4 address")
}

// ComposeCommand returns the compose command line: `docker compose` (v2)
// when the plugin is installed, else `docker-compose` (v1).
func ComposeCommand(ctx context.Context) ([]string, error) {
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}, nil
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, nil
	}
	return nil, errors.New("neither `docker compose` nor `docker-compose` is installed")
}

// ImageVersions returns the versions of Toxiproxy and nats-server this
// binary was built with (those pinned in go.mod): the tags of the
// fallacies/toxiproxy-guarded and fallacies/nats images.
func ImageVersions() (toxiproxyVersion, natsVersion string) {
	toxiproxyVersion, natsVersion = defaultToxiproxyVersion, defaultNATSVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/Shopify/toxiproxy/v2":
				toxiproxyVersion = strings.TrimPrefix(d.Version, "v")
			case "github.com/nats-io/nats-server/v2":
				natsVersion = strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return toxiproxyVersion, natsVersion
}

func findComposeFile() (string, error) {
	if f := os.Getenv("FALLACIES_COMPOSE_FILE"); f != "" {
		return filepath.Abs(f)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find docker-compose.yml: %w", err)
	}
	for {
		f := filepath.Join(dir, "docker-compose.yml")
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no docker-compose.yml in the working directory or above it (run from the repository, or set FALLACIES_COMPOSE_FILE)")
		}
		dir = parent
	}
}

// composeContainer is what docker inspect says about one container.
type composeContainer struct {
	ID     string `json:"Id"`
	Name   string
	Config struct {
		Labels map[string]string
	}
	State struct {
		Status   string
		ExitCode int
		Health   *struct{ Status string }
	}
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIp, HostPort string }
		Networks map[string]json.RawMessage
	}
}

func (c composeContainer) service() string { return c.Config.Labels["com.docker.compose.service"] }

// composeContainers inspects every container of a compose project.
func composeContainers(ctx context.Context, project string) ([]composeContainer, error) {
	ids, err := docker(ctx, nil, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+project)
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w: %s", project, err, ids)
	}
	fields := strings.Fields(string(ids))
	if len(fields) == 0 {
		return nil, nil
	}
	out, err := docker(ctx, nil, append([]string{"inspect"}, fields...)...)
	if err != nil {
		return nil, fmt.Errorf("inspect containers of %s: %w: %s", project, err, tail(out, 500))
	}
	var cs []composeContainer
	if err := json.Unmarshal(out, &cs); err != nil {
		return nil, fmt.Errorf("inspect containers of %s: %w", project, err)
	}
	return cs, nil
}

// WaitComposeHealthy polls the containers of a compose project until every
// service of ComposeServices has a running container whose health check
// passes, or until timeout or ctx ends. The error says which are not.
func WaitComposeHealthy(ctx context.Context, project string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		cs, err := composeContainers(ctx, project)
		if err != nil {
			return err
		}
		var waiting []string
		for _, s := range ComposeServices {
			i := slices.IndexFunc(cs, func(c composeContainer) bool { return c.service() == s })
			switch {
			case i < 0:
				waiting = append(waiting, s+": no container")
			case cs[i].State.Status != "running":
				waiting = append(waiting, fmt.Sprintf("%s: %s (exit code %d)", s, cs[i].State.Status, cs[i].State.ExitCode))
			case cs[i].State.Health == nil:
				// No health check (e.g. an official image): running is enough.
			case cs[i].State.Health.Status != "healthy":
				waiting = append(waiting, s+": "+cs[i].State.Health.Status)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		last = strings.Join(waiting, ", ")
		if time.Now().After(deadline) {
			return fmt.Errorf("compose project %s not healthy within %v: %s (see `docker logs`)", project, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("compose project %s not healthy: %w (%s)", project, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ComposeEndpoints reads the published ports of a running compose project.
func ComposeEndpoints(ctx context.Context, project string) (Endpoints, error) {
	cs, err := composeContainers(ctx, project)
	if err != nil {
		return Endpoints{}, err
	}
	published := func(service, port string) (string, error) {
		for _, c := range cs {
			if c.service() != service {
				continue
			}
			for _, b := range c.NetworkSettings.Ports[port+"/tcp"] {
				host := b.HostIp
				if host == "" || host == "0.0.0.0" {
					host = "127.0.0.1"
				}
				if host == "::" {
					continue
				}
				return net.JoinHostPort(host, b.HostPort), nil
			}
			return "", fmt.Errorf("compose project %s: %s does not publish port %s", project, service, port)
		}
		return "", fmt.Errorf("compose project %s: no %s container", project, service)
	}
	ep := Endpoints{Services: map[string]string{}, Proxies: map[string]string{}}
	var errs []error
	for _, p := range composePorts() {
		addr, err := published(p.service, p.port)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case p.service == "toxiproxy":
			ep.ToxiproxyAPI = "http://" + addr
		case p.service == "nats":
			ep.NATS = "nats://" + addr
		case p.http:
			ep.UserHTTP = addr
		default:
			ep.Services[p.service] = addr
		}
	}
	if cs := slices.IndexFunc(cs, func(c composeContainer) bool { return c.service() == "jaeger" }); cs >= 0 {
		if addr, err := published("jaeger", "16686"); err == nil {
			ep.JaegerUI = "http://" + addr
		}
	}
	return ep, errors.Join(errs...)
}

// docker runs the docker CLI and returns its standard output (standard
// error too when it fails).
func docker(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), fmt.Errorf("docker %s: %w", args[0], err)
	}
	return stdout.Bytes(), nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
