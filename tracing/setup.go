// Package tracing owns OpenTelemetry for the testbed: it is the only package
// that imports the OpenTelemetry SDK.
//
// It has four parts:
//
//   - Setup builds a tracer provider per service (resource service.name,
//     service.namespace "fallacies", a parent-based ratio sampler) that
//     feeds an in-process Capture, an OTLP exporter, or both. Services only
//     see the API types in Provider and hand them to services/serve. With
//     a Capture alone the provider is a recorder (recorder.go), which
//     records spans straight into the Capture at a fraction of the SDK's
//     cost; with an exporter it is the SDK's.
//   - Capture keeps finished spans (a recorder's compact records, or the
//     SDK's spans as a span processor) and converts them into this
//     package's own model (Span), so that runner and report code never
//     touch SDK types.
//   - Receiver is an OTLP/gRPC trace collector for topologies where the
//     services run in other processes: it converts what they export into
//     the same Capture and can forward every export unchanged (to Jaeger).
//   - Pure analysis over []Span: grouping into traces, the critical path,
//     where an error started and whether it reached the root, retry
//     amplification, whether the asynchronous consumers stayed off the
//     order's path, per-phase summaries, exemplars and Jaeger JSON.
//
// The data flow in the embedded topology, where everything shares a process:
//
//	order ─┐   recorder (one per service) ───────────────┐
//	user  ─┼─     or, with an OTLP export,               ├──▶ Capture ──▶ []Span ──▶ analysis
//	  …   ─┘   sdktrace.TracerProvider (one per service) ┘
//	                                └──▶ OTLP ──▶ Jaeger
//
// and in the processes and compose topologies:
//
//	service processes ──OTLP/gRPC──▶ Receiver ──▶ Capture ──▶ []Span ──▶ analysis
//	                                     └──forward──▶ Jaeger (optional)
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

var noopProvider = noop.NewTracerProvider()

// Namespace is the service.namespace resource attribute of every service.
const Namespace = "fallacies"

// Resource attribute keys this package sets and reads.
const (
	AttrServiceName      = "service.name"
	AttrServiceNamespace = "service.namespace"
)

// Config says where a service's spans go. Its zero value disables tracing.
type Config struct {
	// Service is the service.name resource attribute, e.g. "order". When
	// empty, OTEL_SERVICE_NAME is used, and failing that the SDK default
	// ("unknown_service:<executable>").
	Service string
	// Capture, when set, receives every sampled span in process.
	Capture *Capture
	// OTLP exports spans over OTLP/gRPC configured by the standard
	// variables (OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_INSECURE,
	// OTEL_EXPORTER_OTLP_HEADERS, ...), which the exporter reads itself.
	OTLP bool
	// OTLPEndpoint is an explicit endpoint for the OTLP exporter, written
	// as host:port or as a URL (see ParseOTLPEndpoint); it implies OTLP and
	// overrides the endpoint variables. host:port and http:// URLs are
	// spoken in plaintext (loopback collectors: a Receiver, a local
	// Jaeger), https:// URLs over TLS.
	OTLPEndpoint string
	// SampleRatio is the fraction of new traces sampled, in [0, 1]; 0 means
	// 1 (sample everything). Spans with a parent follow the parent's
	// decision.
	SampleRatio float64
}

// Provider is what a service needs to trace: API types only, ready for
// serve.Options{TracerProvider: p.TracerProvider, Propagator: p.Propagator}.
type Provider struct {
	// TracerProvider is nil when tracing is off. serve.Options treats nil
	// as "no tracing, and no tracing interceptors", which costs nothing; code
	// that wants a tracer directly should go through serve.Options.Tracer
	// or Provider.Tracer, both of which return a no-op tracer for nil.
	TracerProvider trace.TracerProvider
	// Propagator is W3C trace context plus baggage; never nil.
	Propagator propagation.TextMapPropagator
}

// Tracer returns a tracer of the provider, or a no-op tracer when tracing
// is off.
func (p *Provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if p == nil || p.TracerProvider == nil {
		return noopProvider.Tracer(name, opts...)
	}
	return p.TracerProvider.Tracer(name, opts...)
}

// Propagator returns the propagator every service uses: W3C trace context
// and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Setup builds the tracer provider of one service. The returned function
// flushes every pending span and shuts the provider down (exporter
// connections included); it is its own teardown, to be called once (later
// calls return the first call's result). A shared Capture is not affected by
// one provider's shutdown.
//
// With neither Capture nor OTLP configured, Setup returns a Provider whose
// TracerProvider is nil and a shutdown that does nothing.
func Setup(ctx context.Context, cfg Config) (*Provider, func(context.Context) error, error) {
	p := &Provider{Propagator: Propagator()}
	exportOTLP := cfg.OTLP || cfg.OTLPEndpoint != ""
	if cfg.Capture == nil && !exportOTLP {
		return p, func(context.Context) error { return nil }, nil
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	if ratio < 0 || ratio > 1 {
		return nil, nil, fmt.Errorf("set up tracing for %s: sample ratio %v is outside [0, 1]", cfg.Service, cfg.SampleRatio)
	}
	res, err := newResource(ctx, cfg.Service)
	if err != nil {
		return nil, nil, fmt.Errorf("set up tracing for %s: %w", cfg.Service, err)
	}
	if !exportOTLP {
		// In process only: record straight into the Capture (recorder.go).
		service, _ := res.Set().Value(AttrServiceName)
		rec := newRecorder(service.AsString(), cfg.Capture, ratio)
		p.TracerProvider = rec
		return p, rec.shutdown, nil
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if cfg.Capture != nil {
		opts = append(opts, sdktrace.WithSpanProcessor(cfg.Capture))
	}
	var exporter *otlptrace.Exporter
	if exportOTLP {
		var eopts []otlptracegrpc.Option
		if cfg.OTLPEndpoint != "" {
			hostport, plaintext, err := ParseOTLPEndpoint(cfg.OTLPEndpoint)
			if err != nil {
				return nil, nil, fmt.Errorf("set up OTLP exporter for %s: %w", cfg.Service, err)
			}
			eopts = append(eopts, otlptracegrpc.WithEndpoint(hostport))
			if plaintext {
				eopts = append(eopts, otlptracegrpc.WithInsecure())
			}
		}
		exp, err := otlptracegrpc.New(ctx, eopts...)
		if err != nil {
			return nil, nil, fmt.Errorf("set up OTLP exporter for %s: %w", cfg.Service, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		exporter = exp
	}
	tp := sdktrace.NewTracerProvider(opts...)
	p.TracerProvider = tp
	var (
		once   sync.Once
		result error
	)
	shutdown := func(ctx context.Context) error {
		once.Do(func() {
			stopCtx := ctx
			if ctx.Err() != nil {
				// The SDK's Shutdown returns before it stops a single
				// processor when ctx is already done, and refuses every
				// later call: the batch processor's goroutine would run on
				// for good. A moment of its own lets it be stopped.
				var cancel context.CancelFunc
				stopCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), expiredStopGrace)
				defer cancel()
			}
			if err := tp.Shutdown(stopCtx); err != nil {
				result = fmt.Errorf("shut down tracing for %s: %w", cfg.Service, err)
				if exporter != nil {
					// The flush outlived ctx (a collector that is gone keeps
					// an export retrying for up to 30 s): stopping the
					// exporter with the expired ctx cuts the exports still
					// in flight, so no goroutine outlives the shutdown.
					_ = exporter.Shutdown(stopCtx)
				}
			}
		})
		return result
	}
	return p, shutdown, nil
}

// expiredStopGrace is how long a shutdown handed an expired context still
// waits for the last batch: enough to stop the processor, not to flush
// through a collector that is gone.
const expiredStopGrace = 100 * time.Millisecond

// OTLPEndpointFromEnv returns the OTLP traces endpoint the standard
// variables name: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
// OTEL_EXPORTER_OTLP_ENDPOINT, else "".
func OTLPEndpointFromEnv() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// ParseOTLPEndpoint reads an OTLP/gRPC endpoint written either as a URL,
// the form of the OTEL_EXPORTER_OTLP_ENDPOINT variable
// ("http://127.0.0.1:4317", "https://collector.example:4317"; a path is
// ignored, as gRPC has none), or as a bare host:port ("127.0.0.1:4317").
// It returns host:port and whether the endpoint is spoken in plaintext:
// true for http:// and for a bare host:port, false for https://. A URL
// without a port gets OTLP/gRPC's 4317.
func ParseOTLPEndpoint(endpoint string) (hostport string, plaintext bool, err error) {
	e := strings.TrimSpace(endpoint)
	if e == "" {
		return "", false, errors.New("OTLP endpoint is empty")
	}
	if !strings.Contains(e, "://") {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return "", false, fmt.Errorf("OTLP endpoint %q: want host:port or a URL such as http://127.0.0.1:4317: %w", endpoint, err)
		}
		return e, true, nil
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", false, fmt.Errorf("OTLP endpoint %q: %w", endpoint, err)
	}
	switch u.Scheme {
	case "http":
		plaintext = true
	case "https":
	default:
		return "", false, fmt.Errorf("OTLP endpoint %q: scheme %q is not http or https", endpoint, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("OTLP endpoint %q: no host", endpoint)
	}
	port := u.Port()
	if port == "" {
		port = "4317"
	}
	return net.JoinHostPort(u.Hostname(), port), plaintext, nil
}

// newResource returns the resource of a service: service.name (the given
// name, else OTEL_SERVICE_NAME, else "unknown_service:<executable>"),
// service.namespace, the telemetry.sdk.* attributes and whatever
// OTEL_RESOURCE_ATTRIBUTES adds. The environment is read on every call.
func newResource(ctx context.Context, service string) (*resource.Resource, error) {
	name := service
	if name == "" {
		name = strings.TrimSpace(os.Getenv("OTEL_SERVICE_NAME"))
	}
	if name == "" {
		name = "unknown_service:" + filepath.Base(os.Args[0])
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String(AttrServiceName, name),
			attribute.String(AttrServiceNamespace, Namespace),
		),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("build resource: %w", err)
	}
	return res, nil
}
