package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/tracing"
)

// tracingFlags says where a command's services send their spans.
type tracingFlags struct {
	fromEnv  bool   // a child process: the endpoint comes from the OTEL_* variables only
	service  string // the child's service name
	otlp     string // --otlp-endpoint: overrides the OTEL_* variables ("" = use them)
	jaegerUI string // --jaeger-ui: base URL of a Jaeger UI ("" = FALLACIES_JAEGER_UI)
}

// cliTracing is the tracing set-up of `up` and `serve`: OTLP export when an
// endpoint is configured (--otlp-endpoint, or the standard
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
// variables), nothing otherwise. Child processes of the processes topology
// are told the same endpoint.
type cliTracing struct {
	ctx       context.Context
	stderr    io.Writer
	endpoint  string // as configured: a URL or host:port; "" = off
	source    string // where endpoint came from, for people
	jaegerUI  string
	mu        sync.Mutex
	shutdowns []func(context.Context) error
	providers map[string]serve.Options
}

func newTracing(ctx context.Context, e *env, f tracingFlags) (*cliTracing, error) {
	t := &cliTracing{
		ctx:       ctx,
		stderr:    e.stderr,
		jaegerUI:  firstNonEmpty(f.jaegerUI, os.Getenv("FALLACIES_JAEGER_UI")),
		providers: map[string]serve.Options{},
	}
	switch {
	case f.otlp != "" && !f.fromEnv:
		t.endpoint, t.source = f.otlp, "--otlp-endpoint"
	case tracing.OTLPEndpointFromEnv() != "":
		t.endpoint, t.source = tracing.OTLPEndpointFromEnv(), "the OTEL_EXPORTER_OTLP_* variables"
	}
	if t.endpoint != "" {
		if _, _, err := tracing.ParseOTLPEndpoint(t.endpoint); err != nil {
			return nil, usageErr("%s: %v", t.source, err)
		}
	}
	return t, nil
}

// serveOptions returns the tracer provider of one service, creating it on
// first use; without an OTLP endpoint it returns no tracing.
func (t *cliTracing) serveOptions(service string) serve.Options {
	if t.endpoint == "" {
		return serve.Options{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if so, ok := t.providers[service]; ok {
		return so
	}
	p, shutdown, err := tracing.Setup(t.ctx, tracing.Config{Service: service, OTLPEndpoint: t.endpoint})
	if err != nil {
		fmt.Fprintf(t.stderr, "tracing off for %s: %v\n", service, err)
		return serve.Options{}
	}
	t.shutdowns = append(t.shutdowns, shutdown)
	so := serve.Options{TracerProvider: p.TracerProvider, Propagator: p.Propagator}
	t.providers[service] = so
	return so
}

// otlpEndpoint is what child processes export to: the configured endpoint,
// as a URL or host:port (topology.Options.OTLPEndpoint accepts both), or ""
// when tracing is off.
func (t *cliTracing) otlpEndpoint() string { return t.endpoint }

// describe tells people where the traces go and where to look at them.
func (t *cliTracing) describe(w io.Writer) {
	if t.endpoint == "" {
		fmt.Fprintln(w, "traces: off (set OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint, e.g. http://127.0.0.1:4317 for a local Jaeger, to export them)")
		if t.jaegerUI != "" {
			fmt.Fprintf(w, "jaeger UI: %s (empty: no service exports to it)\n", t.jaegerUI)
		}
		return
	}
	fmt.Fprintf(w, "traces: every service exports OTLP/gRPC to %s (from %s)\n", t.endpoint, t.source)
	if t.jaegerUI != "" {
		fmt.Fprintf(w, "jaeger UI: %s (a trace: %s)\n", t.jaegerUI, tracing.JaegerTraceURL(t.jaegerUI, "<trace id>"))
	} else {
		fmt.Fprintln(w, "jaeger UI: not set (--jaeger-ui or FALLACIES_JAEGER_UI, e.g. http://127.0.0.1:16686)")
	}
}

func (t *cliTracing) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.shutdowns {
		if err := s(ctx); err != nil {
			fmt.Fprintf(t.stderr, "%v\n", err)
		}
	}
	t.shutdowns = nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
