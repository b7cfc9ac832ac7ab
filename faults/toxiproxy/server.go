// Package toxiproxy puts network faults on the system through Toxiproxy.
//
// It has three parts:
//
//   - Server: a Toxiproxy server embedded as a library, serving Toxiproxy's
//     own HTTP API (so the toxiproxy-cli and the standard Go client work
//     against it) plus a few routes of ours under /fallacies/ (the
//     sniffer's sample; the layer host, layerhost.go, which runs the link
//     layers of packet and call-level faults beside the proxies), behind
//     internal/httpguard: a request from a web page (another Origin) or
//     by another host name (DNS rebinding) is refused with 403.
//   - Injector: a faults.Injector that speaks Toxiproxy's HTTP API, so it
//     works against the embedded Server or any real toxiproxy-server.
//   - Reset: every fault is written to the run's faults.Journal and fsynced
//     before it is applied, so what a crashed run left behind can be
//     removed later.
//
// The data path of one proxied connection, as Toxiproxy builds it:
//
//	client ──▶ listen ──▶ [noop] ▶ [toxic] ▶ … ──▶ upstream   (stream "upstream")
//	client ◀────────── … ◀ [toxic] ◀ [noop] ◀──── upstream    (stream "downstream")
//
// The package also registers two custom toxics in Toxiproxy's toxic
// registry: "sniffer" relays every chunk unchanged and records what it
// saw (sniffer.go); "reset_peer_rst" aborts a connection with a TCP RST
// toward both peers after a timeout, and hears its removal at once
// (resetpeer.go).
package toxiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/fallacies/fallacies/internal/httpguard"
)

// Server is an embedded Toxiproxy server: the proxies run in this process
// and the HTTP API is served on a listener the caller bound. Its methods are
// safe for concurrent use.
type Server struct {
	api       *toxiproxy.ApiServer
	layers    *layerHost // the link layers beside the proxies (layerhost.go)
	http      *http.Server
	url       string
	log       *slog.Logger
	serveDone chan struct{}
	serveErr  error
}

// Start serves the Toxiproxy HTTP API, and the /fallacies/ routes, on api
// until Shutdown. The listener must be bound by the caller (usually
// 127.0.0.1:8474 or 127.0.0.1:0); Start takes ownership of it. Toxiproxy's
// own log lines at warn level and above go to log; nil discards them.
// Start does not block beyond ctx: it returns ctx.Err() if ctx is done.
// hostNames are host names the API answers to besides its addresses (in
// the compose topology, the container name "toxiproxy"); every other Host
// is refused (internal/httpguard).
func Start(ctx context.Context, api net.Listener, log *slog.Logger, hostNames ...string) (*Server, error) {
	if api == nil {
		return nil, errors.New("start toxiproxy: nil API listener")
	}
	if err := ctx.Err(); err != nil {
		api.Close()
		return nil, fmt.Errorf("start toxiproxy on %s: %w", api.Addr(), err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Some toxics log through zerolog's global logger, to stderr, at trace
	// level; keep that quiet. The floor is process-wide.
	if zerolog.GlobalLevel() < zerolog.WarnLevel {
		zerolog.SetGlobalLevel(zerolog.WarnLevel)
	}
	zl := zerolog.New(slogWriter{log: log}).Level(zerolog.WarnLevel)
	apiServer := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zl)

	s := &Server{
		api:       apiServer,
		layers:    newLayerHost(),
		url:       "http://" + api.Addr().String(),
		log:       log,
		serveDone: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fallacies/sniffer/{proxy}", s.handleSniffer)
	s.layers.routes(mux)
	// Toxiproxy's API handlers share its proxies without a lock between
	// them (an update that restarts a proxy writes its fields while a
	// listing marshals them: a data race), so the API answers one request
	// at a time. Its callers make a few requests a second at most.
	mux.Handle("/", oneAtATime(apiServer.Routes()))
	s.http = &http.Server{
		// Only programs on this machine: no cross-site request, no DNS
		// rebinding (internal/httpguard).
		Handler:           httpguard.Wrap(mux, api.Addr(), hostNames...),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.serveDone)
		if err := s.http.Serve(api); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
			log.Error("toxiproxy_api_stopped", "addr", api.Addr().String(), "err", err)
		}
	}()
	registerServer(s) // so that its reset_peer toxics find their proxies (resetpeer.go)
	log.Debug("toxiproxy_started", "api", s.url)
	return s, nil
}

// URL returns the base URL of the HTTP API, e.g. "http://127.0.0.1:8474".
func (s *Server) URL() string { return s.url }

// AddProxy creates a proxy named name to upstream, listening on
// 127.0.0.1 at a port the system chooses, starts it, and returns the address
// it bound.
func (s *Server) AddProxy(name, upstream string) (listen string, err error) {
	if name == "" || upstream == "" {
		return "", fmt.Errorf("add proxy %q: name and upstream are required", name)
	}
	p := toxiproxy.NewProxy(s.api, name, "127.0.0.1:0", upstream)
	if err := s.api.Collection.Add(p, true); err != nil {
		return "", fmt.Errorf("add proxy %s to %s: %w", name, upstream, err)
	}
	p.Lock()
	defer p.Unlock()
	return p.Listen, nil
}

// LoadProxies creates and starts the proxies of a Toxiproxy configuration
// file's JSON (a list of {name, listen, upstream, enabled}, the format of
// toxiproxy-server -config), replacing proxies of the same name. It returns
// how many proxies it started.
func (s *Server) LoadProxies(config io.Reader) (int, error) {
	ps, err := s.api.Collection.PopulateJson(s.api, config)
	if err != nil {
		return len(ps), fmt.Errorf("load proxies: %w", err)
	}
	return len(ps), nil
}

// SetUpstream points the proxy named name at a new upstream address, for
// example after the service behind it restarted on another port. The proxy
// keeps its listen address; open connections through it are closed. A
// disabled proxy stays disabled.
func (s *Server) SetUpstream(name, upstream string) error {
	p, err := s.api.Collection.Get(name)
	if err != nil {
		return fmt.Errorf("set upstream of proxy %s: %w", name, err)
	}
	p.Lock()
	input := &toxiproxy.Proxy{Listen: p.Listen, Upstream: upstream, Enabled: p.Enabled}
	p.Unlock()
	if err := p.Update(input); err != nil {
		return fmt.Errorf("set upstream of proxy %s to %s: %w", name, upstream, err)
	}
	return nil
}

// Shutdown stops the HTTP API, then every proxy, closing every proxied
// connection, and every layer of the layer host. It waits for the API
// server to finish under ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	defer unregisterServer(s)
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down toxiproxy API %s: %w", s.url, err))
		s.http.Close()
	}
	if err := s.layers.close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.api.Collection.Clear(); err != nil {
		errs = append(errs, fmt.Errorf("stop toxiproxy proxies: %w", err))
	}
	select {
	case <-s.serveDone:
		if s.serveErr != nil {
			errs = append(errs, fmt.Errorf("serve toxiproxy API %s: %w", s.url, s.serveErr))
		}
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for toxiproxy API %s: %w", s.url, ctx.Err()))
	}
	return errors.Join(errs...)
}

// slogWriter turns zerolog's JSON lines into slog records, so Toxiproxy's
// log ends up in the log the caller injected.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		w.log.Warn("toxiproxy_log", "line", strings.TrimSpace(string(p)))
		return len(p), nil
	}
	level := slog.LevelInfo
	switch fields[zerolog.LevelFieldName] {
	case "warn":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	case "debug", "trace":
		level = slog.LevelDebug
	}
	// Toxiproxy warns when a connection it closed itself (proxy disabled,
	// stopped, toxic removed) ends a copy; that is the fault working.
	if e, _ := fields[zerolog.ErrorFieldName].(string); strings.Contains(e, "use of closed network connection") {
		level = slog.LevelDebug
	}
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		if k == zerolog.LevelFieldName {
			continue
		}
		args = append(args, k, v)
	}
	w.log.Log(context.Background(), level, "toxiproxy_log", args...)
	return len(p), nil
}

// oneAtATime serves the requests of h one after the other. The request's
// context is detached from its client: Toxiproxy runs each handler in a
// goroutine of http.TimeoutHandler, which returns at once when the
// client goes away while that goroutine runs on, and the next request
// would then run beside it (seen by -race: a listing marshalling a proxy
// while an update stopped it, after a poll was cancelled).
func oneAtATime(h http.Handler) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		h.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
	})
}
