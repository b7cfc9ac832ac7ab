package serve

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The spans of gRPC calls.
//
// rpcTracing makes one server span for every call a server handles and
// one client span for every attempt a client makes, as otelgrpc's stats
// handlers do with their defaults (the same names, kinds, parents,
// attributes and status; no message events, no metrics), but from
// interceptors: gRPC builds its per-message stats events only for a stats
// handler, and the W3C context is read from and written to the call's
// metadata without copying the rest of it. Health checks are not traced.
//
//	client: resilience ─▶ (per attempt) rpcTracing.unaryClient ─▶ invoker
//	          span kind client, traceparent into the outgoing metadata,
//	          server.address/port of the peer the attempt reached
//	server: rpcTracing.unaryServer ─▶ utf8 check ─▶ handler
//	          span kind server, child of the incoming traceparent
//
// A client's tracing interceptor is the last of its chain, so that every
// attempt of the resilience policy is its own span, as with otelgrpc's
// per-attempt stats; a server's is the first, so that its span covers
// every refusal.
type rpcTracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// starts caches, by method and span kind, the name and start options
	// of its spans (a handful of methods; made once, not per call).
	starts sync.Map // startKey → *spanStart
}

type startKey struct {
	fullMethod string
	kind       trace.SpanKind
}

type spanStart struct {
	name string
	opts []trace.SpanStartOption
}

// tracerScope is the instrumentation scope of the spans of gRPC calls.
const tracerScope = "github.com/fallacies/fallacies/services/serve"

// Attribute keys of the spans of gRPC calls (OpenTelemetry's RPC semantic
// conventions, as otelgrpc writes them).
const (
	attrRPCMethod     = "rpc.method"      // "user.v1.UserService/GetUser"
	attrRPCSystem     = "rpc.system.name" // "grpc"
	attrRPCStatusCode = "rpc.response.status_code"
	attrServerAddress = "server.address" // a client's peer, a server's own address
	attrServerPort    = "server.port"
)

var rpcSystemGRPC = attribute.String(attrRPCSystem, "grpc")

// newRPCTracing returns the tracing of o's calls, nil when o traces
// nothing.
func newRPCTracing(o Options) *rpcTracing {
	if o.TracerProvider == nil {
		return nil
	}
	return &rpcTracing{tracer: o.TracerProvider.Tracer(tracerScope), prop: o.Prop()}
}

// traced says whether calls of fullMethod ("/pkg.Service/Method") get
// spans: every method but the health service's.
func traced(fullMethod string) bool {
	return !strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// start starts the span of a call of fullMethod.
func (t *rpcTracing) start(ctx context.Context, fullMethod string, kind trace.SpanKind) (context.Context, trace.Span) {
	key := startKey{fullMethod, kind}
	v, ok := t.starts.Load(key)
	if !ok {
		v, _ = t.starts.LoadOrStore(key, newSpanStart(fullMethod, kind))
	}
	st := v.(*spanStart)
	return t.tracer.Start(ctx, st.name, st.opts...)
}

// newSpanStart names the spans of fullMethod ("/pkg.Service/Method") and
// their attributes at start.
func newSpanStart(fullMethod string, kind trace.SpanKind) *spanStart {
	name, ok := strings.CutPrefix(fullMethod, "/")
	if !ok {
		// Not /package.Service/Method: named as it is, without rpc.method.
		return &spanStart{name: fullMethod, opts: []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(rpcSystemGRPC)}}
	}
	return &spanStart{name: name, opts: []trace.SpanStartOption{trace.WithSpanKind(kind),
		trace.WithAttributes(attribute.String(attrRPCMethod, name), rpcSystemGRPC)}}
}

// unaryServer traces a call a server handles.
func (t *rpcTracing) unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !traced(info.FullMethod) {
		return handler(ctx, req)
	}
	ctx, span := t.serverSpan(ctx, info.FullMethod)
	resp, err := handler(ctx, req)
	endSpan(span, err, serverStatus, nil)
	return resp, err
}

// streamServer traces a stream a server handles (reflection's), as one
// span from its start to the handler's return.
func (t *rpcTracing) streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !traced(info.FullMethod) {
		return handler(srv, ss)
	}
	ctx, span := t.serverSpan(ss.Context(), info.FullMethod)
	err := handler(srv, tracedServerStream{ServerStream: ss, ctx: ctx})
	endSpan(span, err, serverStatus, nil)
	return err
}

// serverSpan extracts the caller's context from the incoming metadata and
// starts the server span as its child.
func (t *rpcTracing) serverSpan(ctx context.Context, fullMethod string) (context.Context, trace.Span) {
	ctx = t.prop.Extract(ctx, incomingCarrier{ctx})
	ctx, span := t.start(ctx, fullMethod, trace.SpanKindServer)
	if span.IsRecording() {
		if p, ok := peer.FromContext(ctx); ok && p.LocalAddr != nil {
			span.SetAttributes(serverAddr(p.LocalAddr.String())...)
		}
	}
	return ctx, span
}

// tracedServerStream is a server stream whose context holds its span.
type tracedServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s tracedServerStream) Context() context.Context { return s.ctx }

// unaryClient traces one attempt of a call: a client span, its context
// in the outgoing metadata, the peer the attempt reached.
func (t *rpcTracing) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !traced(method) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	ctx, span := t.start(ctx, method, trace.SpanKindClient)
	ctx = t.inject(ctx)
	if !span.IsRecording() {
		// Not sampled: the context still goes downstream, nothing else.
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Peer(&p))...)
	var addr []attribute.KeyValue
	if p.Addr != nil {
		addr = serverAddr(p.Addr.String())
	}
	endSpan(span, err, clientStatus, addr)
	return err
}

// inject appends the span context of ctx to its outgoing metadata.
func (t *rpcTracing) inject(ctx context.Context) context.Context {
	var c outgoingCarrier
	t.prop.Inject(ctx, &c)
	if len(c.kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, c.kv...)
}

// endSpan sets the call's status and its code (after attrs, when there
// is room for it), and ends the span.
func endSpan(span trace.Span, err error, spanStatus func(*status.Status) (codes.Code, string), attrs []attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	code := grpccodes.OK
	if err != nil {
		s, ok := status.FromError(err)
		if !ok {
			// As a server answers a handler's context error.
			s = status.FromContextError(err)
		}
		code = s.Code()
		span.SetStatus(spanStatus(s))
	}
	span.SetAttributes(append(attrs, attribute.String(attrRPCStatusCode, canonicalCode(code)))...)
	span.End()
}

// clientStatus: every code but OK is an error of the client's call.
func clientStatus(s *status.Status) (codes.Code, string) { return codes.Error, s.Message() }

// serverStatus: only the codes that say the server failed are errors of
// its span (not a caller's bad argument or missing record).
func serverStatus(s *status.Status) (codes.Code, string) {
	switch s.Code() {
	case grpccodes.Unknown, grpccodes.DeadlineExceeded, grpccodes.Unimplemented,
		grpccodes.Internal, grpccodes.Unavailable, grpccodes.DataLoss:
		return codes.Error, s.Message()
	}
	return codes.Unset, ""
}

// canonicalCode is a code's name in the RPC conventions: "OK",
// "DEADLINE_EXCEEDED", ... (grpc's String is "DeadlineExceeded").
func canonicalCode(c grpccodes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "CODE(" + strconv.Itoa(int(c)) + ")"
}

var codeNames = [...]string{
	grpccodes.OK: "OK", grpccodes.Canceled: "CANCELLED", grpccodes.Unknown: "UNKNOWN",
	grpccodes.InvalidArgument: "INVALID_ARGUMENT", grpccodes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	grpccodes.NotFound: "NOT_FOUND", grpccodes.AlreadyExists: "ALREADY_EXISTS",
	grpccodes.PermissionDenied: "PERMISSION_DENIED", grpccodes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	grpccodes.FailedPrecondition: "FAILED_PRECONDITION", grpccodes.Aborted: "ABORTED",
	grpccodes.OutOfRange: "OUT_OF_RANGE", grpccodes.Unimplemented: "UNIMPLEMENTED",
	grpccodes.Internal: "INTERNAL", grpccodes.Unavailable: "UNAVAILABLE",
	grpccodes.DataLoss: "DATA_LOSS", grpccodes.Unauthenticated: "UNAUTHENTICATED",
}

// serverAddr is server.address and server.port of host:port (the address
// alone when there is no numeric port), with room for the status code.
func serverAddr(hostport string) []attribute.KeyValue {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return append(make([]attribute.KeyValue, 0, 2), attribute.String(attrServerAddress, hostport))
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return append(make([]attribute.KeyValue, 0, 2), attribute.String(attrServerAddress, h))
	}
	return append(make([]attribute.KeyValue, 0, 3), attribute.String(attrServerAddress, h), attribute.Int(attrServerPort, port))
}

// incomingCarrier reads single keys of a call's incoming metadata without
// copying the rest of it.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (incomingCarrier) Set(string, string) {}

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// outgoingCarrier collects what a propagator writes, as key-value pairs
// for metadata.AppendToOutgoingContext.
type outgoingCarrier struct{ kv []string }

func (c *outgoingCarrier) Get(key string) string {
	for i := 0; i < len(c.kv); i += 2 {
		if c.kv[i] == key {
			return c.kv[i+1]
		}
	}
	return ""
}

func (c *outgoingCarrier) Set(key, value string) { c.kv = append(c.kv, key, value) }

func (c *outgoingCarrier) Keys() []string {
	keys := make([]string, 0, len(c.kv)/2)
	for i := 0; i < len(c.kv); i += 2 {
		keys = append(keys, c.kv[i])
	}
	return keys
}
