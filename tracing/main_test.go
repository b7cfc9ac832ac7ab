package tracing_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/tracing"
)

// binDir holds the fallacies binary the processes test builds; TestMain
// removes it after the tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fallacies-tracing-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(3)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// setup is tracing.Setup with the shutdown registered as a cleanup.
func setup(t testing.TB, cfg tracing.Config) *tracing.Provider {
	t.Helper()
	p, shutdown, err := tracing.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shutdown %s: %v", cfg.Service, err)
		}
	})
	return p
}

// seen is what the test user service observed about one call.
type seen struct {
	traceID     string
	spanID      string // the server span's
	traceparent string
	tenant      string
}

// userImpl is a real user service with scripted answers: "bad" fails with
// INTERNAL, anything else succeeds.
type userImpl struct {
	userv1.UnimplementedUserServiceServer
	mu       sync.Mutex
	lastSeen seen
}

func (u *userImpl) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	sc := trace.SpanContextFromContext(ctx)
	s := seen{traceID: sc.TraceID().String(), spanID: sc.SpanID().String(), tenant: baggage.FromContext(ctx).Member("tenant").Value()}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("traceparent")) > 0 {
		s.traceparent = md.Get("traceparent")[0]
	}
	u.mu.Lock()
	u.lastSeen = s
	u.mu.Unlock()
	if req.GetUserId() == "bad" {
		return nil, status.Error(codes.Internal, "boom")
	}
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetUserId(), Name: "Ada", Tier: "gold", BalanceCents: 100}}, nil
}

func (u *userImpl) last() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastSeen
}

// startUser serves impl on 127.0.0.1 with opts and returns its address.
func startUser(t testing.TB, opts serve.Options, impl userv1.UserServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := serve.NewServer(opts)
	userv1.RegisterUserServiceServer(srv.GRPC, impl)
	done := make(chan error, 1)
	go func() { done <- srv.GRPC.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve user: %v", err)
		}
	})
	return lis.Addr().String()
}

// dialUser returns a user client to addr instrumented with opts.
func dialUser(t testing.TB, addr string, opts serve.Options) userv1.UserServiceClient {
	t.Helper()
	conn, err := serve.Dial(addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return userv1.NewUserServiceClient(conn)
}

func byName(spans []tracing.Span, name, kind string) (tracing.Span, bool) {
	for _, s := range spans {
		if s.Name == name && s.Kind == kind {
			return s, true
		}
	}
	return tracing.Span{}, false
}

// inTrace returns the spans of trace id, sorted by span ID.
func inTrace(spans []tracing.Span, id string) []tracing.Span {
	var out []tracing.Span
	for _, s := range spans {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SpanID < out[j].SpanID })
	return out
}
