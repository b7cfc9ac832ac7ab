package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// tracingFlags says where a command's services send their spans.
type tracingFlags struct {
	fromEnv  bool   // a child process: the endpoint comes from the OTEL_* variables only
	service  string // the child's service name
	otlp     string // --otlp-endpoint: overrides the OTEL_* variables ("" = use them)
	jaegerUI string // --jaeger-ui: base URL of a Jaeger UI ("" = FALLACIES_JAEGER_UI)
	// capture, when set, gets every span of every service (the live
	// console reads it), whether or not they are exported too.
	capture *tracing.Capture
}

// cliTracing is the tracing set-up of `up` and `serve`: OTLP export when an
// endpoint is configured (--otlp-endpoint, or the standard
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
// variables), nothing otherwise. Child processes of the processes topology
// are told the same endpoint.
type cliTracing struct {
	stderr   io.Writer
	endpoint string // as configured: a URL or host:port; "" = off
	source   string // where endpoint came from, for people
	jaegerUI string
	tracers  *topology.Tracers // built once the endpoint is known
	capture  *tracing.Capture
	receiver *tracing.Receiver // child processes' spans into capture
	rcvAddr  string
}

func newTracing(e *env, f tracingFlags) (*cliTracing, error) {
	t := &cliTracing{
		stderr:   e.stderr,
		capture:  f.capture,
		jaegerUI: firstNonEmpty(f.jaegerUI, os.Getenv("FALLACIES_JAEGER_UI")),
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
	if t.endpoint != "" || t.capture != nil {
		t.tracers = topology.NewTracers(t.capture, t.endpoint)
	}
	return t, nil
}

// receive starts an OTLP receiver feeding the capture, for the child
// processes of a processes topology (they export to it, and it forwards
// to the configured endpoint, if any, when that is plaintext). Without a
// capture it does nothing.
func (t *cliTracing) receive() error {
	if t.capture == nil {
		return nil
	}
	forward := ""
	if hp, plain, err := tracing.ParseOTLPEndpoint(t.endpoint); t.endpoint != "" && err == nil && plain {
		forward = hp
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("trace receiver: %w", err)
	}
	t.receiver = tracing.NewReceiver(t.capture, forward)
	go t.receiver.Serve(lis)
	t.rcvAddr = lis.Addr().String()
	return nil
}

// serveOptions returns the tracer provider of one service, creating it on
// first use; without an OTLP endpoint it returns no tracing.
func (t *cliTracing) serveOptions(service string) serve.Options {
	if t.tracers == nil {
		return serve.Options{}
	}
	so := t.tracers.ServeOptions(service)
	if so.TracerProvider == nil {
		fmt.Fprintf(t.stderr, "tracing off for %s: %v\n", service, t.tracers.Err())
	}
	return so
}

// otlpEndpoint is what child processes export to: the configured endpoint,
// as a URL or host:port (topology.Options.OTLPEndpoint accepts both), or ""
// when tracing is off.
func (t *cliTracing) otlpEndpoint() string {
	if t.rcvAddr != "" {
		return t.rcvAddr
	}
	return t.endpoint
}

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
	if err := t.tracers.Shutdown(ctx); err != nil {
		fmt.Fprintf(t.stderr, "%v\n", err)
	}
	if t.receiver != nil {
		t.receiver.Shutdown(ctx)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
