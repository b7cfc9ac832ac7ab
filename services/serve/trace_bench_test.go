package serve_test

import (
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/fallacies/fallacies/services/serve"
)

// BenchmarkTracedCall is one unary call over loopback, both sides in this
// process: untraced, traced by serve's interceptors, and traced by
// otelgrpc's stats handlers (what serve used before), every span recorded
// into a capture. Its allocations per call are the figure to compare.
//
//	go test -run '^$' -bench BenchmarkTracedCall -benchmem ./services/serve
func BenchmarkTracedCall(b *testing.B) {
	call := func(b *testing.B, conn *grpc.ClientConn) {
		c := testgrpc.NewTestServiceClient(conn)
		ctx := b.Context()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("untraced", func(b *testing.B) {
		call(b, served(b, serve.Options{}, testService{}))
	})
	b.Run("interceptors", func(b *testing.B) {
		capture, p := newCapture(b)
		call(b, served(b, serve.Options{TracerProvider: p.TracerProvider, Propagator: p.Propagator}, testService{}))
		b.ReportMetric(float64(capture.Len())/float64(b.N), "spans/op")
	})
	b.Run("otelgrpc", func(b *testing.B) {
		capture, p := newCapture(b)
		srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(p.TracerProvider), otelgrpc.WithPropagators(p.Propagator))))
		testgrpc.RegisterTestServiceServer(srv, testService{})
		conn, err := grpc.NewClient("passthrough:///"+listen(b, srv),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(p.TracerProvider), otelgrpc.WithPropagators(p.Propagator))))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		call(b, conn)
		b.ReportMetric(float64(capture.Len())/float64(b.N), "spans/op")
	})
}
