package serve_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/tracing"
)

// testService answers UnaryCall with the status its request asks for.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (testService) UnaryCall(_ context.Context, r *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s := r.GetResponseStatus(); s.GetCode() != 0 {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testgrpc.SimpleResponse{}, nil
}

// callsOf makes the same calls on conn: OK, NOT_FOUND, UNAVAILABLE and a
// health check, and returns the spans they made, as the model shows them.
func callsOf(t *testing.T, conn *grpc.ClientConn, capture *tracing.Capture) []tracing.Span {
	t.Helper()
	ctx := t.Context()
	c := testgrpc.NewTestServiceClient(conn)
	if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("EmptyCall: %v", err)
	}
	for _, s := range []*testgrpc.EchoStatus{
		{Code: int32(codes.NotFound), Message: "no such thing"},
		{Code: int32(codes.Unavailable), Message: "down for now"},
	} {
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: s})
		if status.Code(err) != codes.Code(s.Code) {
			t.Fatalf("UnaryCall asking for %v: %v", codes.Code(s.Code), err)
		}
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check: %v", err)
	}
	// A server span may end just after its client has the answer.
	testenv.Eventually(t, 5*time.Second, "6 spans captured", func() bool { return capture.Len() >= 6 })
	return capture.Spans()
}

// describe writes a span as what the analyses and the report can see of
// it (IDs and times aside), with the server's port elided (each side has
// its own server) and the parent written as the span it points at.
func describe(spans []tracing.Span) []string {
	byID := map[string]tracing.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var out []string
	for _, s := range spans {
		var attrs []string
		for k, v := range s.Attrs {
			if k == "server.port" {
				v = "PORT"
			}
			attrs = append(attrs, k+"="+v)
		}
		slices.Sort(attrs)
		parent := "root"
		if p, ok := byID[s.ParentID]; ok && p.TraceID == s.TraceID {
			parent = p.Kind + " " + p.Name
		} else if s.ParentID != "" {
			parent = "unknown parent"
		}
		out = append(out, fmt.Sprintf("%s %s under %s error=%v %q events=%d links=%d {%s}",
			s.Kind, s.Name, parent, s.Error, s.StatusMsg, len(s.Events), len(s.Links), strings.Join(attrs, " ")))
	}
	slices.Sort(out)
	return out
}

func listen(t testing.TB, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// served starts a server of svc made by serve.NewServer(o) and returns a
// connection to it made by serve.Dial(…, o), closed when the test ends.
func served(t testing.TB, o serve.Options, svc testgrpc.TestServiceServer) *grpc.ClientConn {
	t.Helper()
	srv := serve.NewServer(o)
	testgrpc.RegisterTestServiceServer(srv.GRPC, svc)
	conn, err := serve.Dial(listen(t, srv.GRPC), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newCapture(t testing.TB) (*tracing.Capture, *tracing.Provider) {
	t.Helper()
	capture := tracing.NewCapture(0)
	p, shutdown, err := tracing.Setup(t.Context(), tracing.Config{Service: "svc", Capture: capture})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return capture, p
}

// TestSpansAsOtelgrpc: the interceptors of NewServer and Dial make the
// spans otelgrpc's stats handlers made before them (the same names,
// kinds, parents, attributes and status, health checks left out), so
// that every analysis reads the same traces.
func TestSpansAsOtelgrpc(t *testing.T) {
	notHealth := otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
		return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/")
	})

	refCapture, ref := newCapture(t)
	refSrv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(ref.TracerProvider), otelgrpc.WithPropagators(ref.Propagator), notHealth)))
	testgrpc.RegisterTestServiceServer(refSrv, testService{})
	healthpb.RegisterHealthServer(refSrv, healthServer{})
	refConn, err := grpc.NewClient("passthrough:///"+listen(t, refSrv),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(ref.TracerProvider), otelgrpc.WithPropagators(ref.Propagator), notHealth)))
	if err != nil {
		t.Fatal(err)
	}
	defer refConn.Close()

	ourCapture, ours := newCapture(t)
	conn := served(t, serve.Options{TracerProvider: ours.TracerProvider, Propagator: ours.Propagator}, testService{})

	want := describe(callsOf(t, refConn, refCapture))
	got := describe(callsOf(t, conn, ourCapture))
	t.Logf("otelgrpc spans:\n%s", strings.Join(want, "\n"))
	if len(want) != 6 {
		t.Fatalf("otelgrpc made %d spans, want 6 (a client and a server span per traced call):\n%s", len(want), strings.Join(want, "\n"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans differ from otelgrpc's\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUntracedCallsCarryNoSpans: without a tracer provider nothing is
// traced and no trace context is sent.
func TestUntracedCallsCarryNoSpans(t *testing.T) {
	var saw []string
	conn := served(t, serve.Options{}, metadataService{saw: &saw})
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(t.Context(), &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if len(saw) != 0 {
		t.Errorf("untraced call carried trace context: %v", saw)
	}
}

// TestTraceContextCrossesTheCall: the server span is the child of the
// client span across a real connection, in the same trace.
func TestTraceContextCrossesTheCall(t *testing.T) {
	capture, p := newCapture(t)
	conn := served(t, serve.Options{TracerProvider: p.TracerProvider, Propagator: p.Propagator}, testService{})
	ctx, parent := p.Tracer("test").Start(t.Context(), "caller")
	if _, err := testgrpc.NewTestServiceClient(conn).EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	testenv.Eventually(t, 5*time.Second, "3 spans captured", func() bool { return capture.Len() >= 3 })
	spans := capture.Spans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3: %+v", len(spans), spans)
	}
	byKind := map[string]tracing.Span{}
	for _, s := range spans {
		byKind[s.Kind] = s
		if s.TraceID != parent.SpanContext().TraceID().String() {
			t.Errorf("%s span %s is in trace %s, want the caller's %s", s.Kind, s.Name, s.TraceID, parent.SpanContext().TraceID())
		}
	}
	if c, s := byKind["client"], byKind["server"]; c.ParentID != parent.SpanContext().SpanID().String() || s.ParentID != c.SpanID {
		t.Errorf("parents: client under %s (want the caller %s), server under %s (want the client %s)",
			c.ParentID, parent.SpanContext().SpanID(), s.ParentID, c.SpanID)
	}
}

// metadataService records the trace headers each call arrived with.
type metadataService struct {
	testgrpc.UnimplementedTestServiceServer
	saw *[]string
}

func (m metadataService) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if v := incoming(ctx, k); v != "" {
			*m.saw = append(*m.saw, k+"="+v)
		}
	}
	return &testgrpc.Empty{}, nil
}

type healthServer struct {
	healthpb.UnimplementedHealthServer
}

func (healthServer) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func incoming(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}
