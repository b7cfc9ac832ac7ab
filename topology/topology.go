// Package topology starts the system under test and tells where its pieces
// listen. One interface, several implementations:
//
//	embedded   Toxiproxy and nats-server as libraries, every service a
//	           goroutine, all on 127.0.0.1 random ports (the default)
//	processes  the same, but each service is a child process
//	           (`fallacies serve <name>`), so process faults are real
//	compose    docker-compose.yml: every piece in a container built FROM
//	           scratch, so container faults (kill, pause, disconnect) are real
//
// Every service dials only proxy addresses, never another service directly:
//
//	order ──[user]──────────▶ user (gRPC)      order ──[user-http]──▶ user (HTTP)
//	order ──[payment]───────▶ payment
//	order ──[nats-order]────▶ NATS ◀──[nats-notification]── notification
//	                               ◀──[nats-ledger]──────── ledger
package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

// Kinds of topology.
const (
	KindEmbedded  = "embedded"
	KindProcesses = "processes"
)

// Topology is a running system under test. Stop is safe to call more than
// once and from any goroutine; it stops everything in reverse order of
// starting and returns when all of it is gone or ctx ends.
type Topology interface {
	Endpoints() Endpoints
	Stop(ctx context.Context) error
}

// Options configures a topology start.
type Options struct {
	System config.System
	// ToxiproxyAPI is where the Toxiproxy HTTP API listens; "" means
	// 127.0.0.1:0 (a random port).
	ToxiproxyAPI string
	// NATSPort is the nats-server client port; 0 means random.
	NATSPort int
	// Host is the interface every listener binds to; "" means 127.0.0.1.
	Host string
	// Tracing returns the serve options (tracer provider, propagator) of one
	// service; nil means no tracing.
	Tracing func(service string) serve.Options
	// OTLPEndpoint is passed to child processes as OTEL_EXPORTER_OTLP_ENDPOINT
	// and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (processes topology only): a
	// URL as is, host:port as http://host:port (plaintext); "" means the
	// children do not trace unless this process's environment says so.
	OTLPEndpoint string
	// Binary is the fallacies executable for child processes; "" means this
	// executable (processes topology only).
	Binary string
	Logger *slog.Logger
}

func (o Options) host() string {
	if o.Host == "" {
		return "127.0.0.1"
	}
	return o.Host
}

func (o Options) serveOptions(service string) serve.Options {
	var so serve.Options
	if o.Tracing != nil {
		so = o.Tracing(service)
	}
	if so.Logger == nil && o.Logger != nil {
		so.Logger = o.Logger.With("service", service)
	}
	return so
}

// Start starts a topology of the given kind.
func Start(ctx context.Context, kind string, o Options) (Topology, error) {
	if err := o.System.Validate(); err != nil {
		return nil, fmt.Errorf("invalid system configuration: %w", err)
	}
	switch kind {
	case "", KindEmbedded:
		return StartEmbedded(ctx, o)
	case KindProcesses:
		return StartProcesses(ctx, o)
	case KindCompose:
		return StartCompose(ctx, o)
	}
	return nil, fmt.Errorf("unknown topology %q (want %s, %s or %s)", kind, KindEmbedded, KindProcesses, KindCompose)
}

// Endpoints says where every piece of a running topology listens. Its JSON
// form is one flat object: toxiproxy_api, nats, one key per service, user_http,
// and proxy.<name> per proxy.
type Endpoints struct {
	ToxiproxyAPI string            // URL of the Toxiproxy HTTP API
	NATS         string            // nats:// URL of the server itself (not proxied)
	Services     map[string]string // service name → its own gRPC address
	UserHTTP     string            // user's JSON-over-HTTP address
	Proxies      map[string]string // proxy name → listen address
	OTLP         string            // where services export traces, if anywhere
	JaegerUI     string            // Jaeger UI base URL, if any
}

// MarshalJSON writes the flat form.
func (e Endpoints) MarshalJSON() ([]byte, error) {
	m := map[string]string{"toxiproxy_api": e.ToxiproxyAPI, "nats": e.NATS, "user_http": e.UserHTTP}
	for k, v := range e.Services {
		m[k] = v
	}
	for k, v := range e.Proxies {
		m["proxy."+k] = v
	}
	if e.OTLP != "" {
		m["otlp"] = e.OTLP
	}
	if e.JaegerUI != "" {
		m["jaeger_ui"] = e.JaegerUI
	}
	return json.MarshalIndent(m, "", "  ")
}

// UnmarshalJSON reads the flat form.
func (e *Endpoints) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*e = Endpoints{Services: map[string]string{}, Proxies: map[string]string{}}
	for k, v := range m {
		switch {
		case k == "toxiproxy_api":
			e.ToxiproxyAPI = v
		case k == "nats":
			e.NATS = v
		case k == "user_http":
			e.UserHTTP = v
		case k == "otlp":
			e.OTLP = v
		case k == "jaeger_ui":
			e.JaegerUI = v
		case strings.HasPrefix(k, "proxy."):
			e.Proxies[strings.TrimPrefix(k, "proxy.")] = v
		case slices.Contains(Services, k) || k == replicaName(1) || k == replicaName(2):
			e.Services[k] = v
		default:
			return fmt.Errorf("unknown endpoint key %q", k)
		}
	}
	return nil
}

// Validate reports what a runner needs and is missing.
func (e Endpoints) Validate() error {
	var missing []string
	if e.ToxiproxyAPI == "" {
		missing = append(missing, "toxiproxy_api")
	}
	for _, s := range []string{"order", "payment", "notification", "ledger"} {
		if e.Services[s] == "" {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("endpoints: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Addresses lists every address (host:port or URL) the endpoints name, so
// that safety checks can look at each.
func (e Endpoints) Addresses() []string {
	out := []string{e.ToxiproxyAPI, e.NATS, e.UserHTTP, e.OTLP}
	for _, k := range slices.Sorted(maps.Keys(e.Services)) {
		out = append(out, e.Services[k])
	}
	for _, k := range slices.Sorted(maps.Keys(e.Proxies)) {
		out = append(out, e.Proxies[k])
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// LoadEndpoints reads an endpoints file written by `fallacies up --endpoints-file`.
func LoadEndpoints(path string) (Endpoints, error) {
	b, err := faults.ReadRegularFile(path, MaxEndpointsSize, "an endpoints file")
	if err != nil {
		return Endpoints{}, fmt.Errorf("read endpoints: %w", err)
	}
	var e Endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return Endpoints{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// MaxEndpointsSize bounds an endpoints file (a few hundred bytes when
// written by `fallacies up`).
const MaxEndpointsSize = 1 << 20

// WriteEndpoints writes the endpoints file atomically.
func WriteEndpoints(path string, e Endpoints) error {
	b, err := json.MarshalIndent(e, "", "  ") // one key a line, for people and line tools
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write endpoints: %w", err)
	}
	return os.Rename(tmp, path)
}
