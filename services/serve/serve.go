// Package serve is the plumbing every service shares: a gRPC server with the
// standard health service, server reflection and OpenTelemetry spans for
// every call (trace.go; health checks left out), and gRPC client
// connections traced the same way.
//
// Services receive an Options value; its zero value logs nowhere and traces
// nothing, which is what unit tests want.
package serve

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Options carries what a service needs from its host beyond its config.
type Options struct {
	Logger         *slog.Logger                     // nil: discard
	TracerProvider trace.TracerProvider             // nil: no tracing, and no tracing interceptors
	Propagator     propagation.TextMapPropagator    // nil: W3C trace context and baggage
	ServerCreds    credentials.TransportCredentials // nil: plaintext
	ClientCreds    credentials.TransportCredentials // nil: plaintext
	// ClientTLS is the client TLS configuration (with the service's client
	// certificate) of its connections that are not gRPC: NATS and HTTP;
	// nil: plaintext.
	ClientTLS *tls.Config
}

// Log returns the logger, never nil.
func (o Options) Log() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

// Tracer returns a tracer of the configured provider, or a no-op tracer.
func (o Options) Tracer(name string) trace.Tracer {
	if o.TracerProvider == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return o.TracerProvider.Tracer(name)
}

// Prop returns the propagator, never nil.
func (o Options) Prop() propagation.TextMapPropagator {
	if o.Propagator == nil {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return o.Propagator
}

// Server is a gRPC server with its health service.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
}

// NewServer returns a gRPC server with health (serving) and reflection
// registered, which answers a request whose text is not UTF-8 with
// INVALID_ARGUMENT naming the field and the byte (utf8.go) and, when o
// traces, makes a server span for every call (trace.go). The caller
// registers its own service, then calls Serve.
func NewServer(o Options, extra ...grpc.ServerOption) *Server {
	var opts []grpc.ServerOption
	if t := newRPCTracing(o); t != nil {
		// First in the chain: the span covers every refusal.
		opts = append(opts, grpc.ChainUnaryInterceptor(t.unaryServer), grpc.ChainStreamInterceptor(t.streamServer))
	}
	opts = append(append(opts, utf8Options()...), extra...)
	if o.ServerCreds != nil {
		opts = append(opts, grpc.Creds(o.ServerCreds))
	}
	s := &Server{GRPC: grpc.NewServer(opts...), Health: health.NewServer()}
	healthpb.RegisterHealthServer(s.GRPC, s.Health)
	reflection.Register(s.GRPC)
	return s
}

// Shutdown marks the server not serving and stops it gracefully, or at once
// when ctx ends first.
func (s *Server) Shutdown(ctx context.Context) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.GRPC.Stop()
		<-done
	}
}

// Dial opens a client connection to target (host:port) traced like the
// servers: when o traces, every attempt of a unary call is a client span
// (trace.go). It does not block: the first call connects.
func Dial(target string, o Options, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	return DialTarget("passthrough:///"+target, o, extra...)
}

// DialTarget is Dial for a full gRPC target with its resolver scheme, e.g.
// "registry:///user" with a resolver passed in extra (grpc.WithResolvers).
func DialTarget(target string, o Options, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds := o.ClientCreds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, extra...)
	if t := newRPCTracing(o); t != nil {
		// Last in the chain (after extra's interceptors): one span per
		// attempt of a retrying policy.
		opts = append(opts, grpc.WithChainUnaryInterceptor(t.unaryClient))
	}
	return grpc.NewClient(target, opts...)
}
