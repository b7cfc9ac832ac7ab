package tracing_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// BenchmarkCaptureOnEnd measures the conversion and append of one
// typical server span (a few attributes, one event).
func BenchmarkCaptureOnEnd(b *testing.B) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, span := tp.Tracer("b").Start(context.Background(), tracing.PlaceOrderSpan,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.service", "order.v1.OrderService"),
			attribute.String("rpc.method", "PlaceOrder"),
			attribute.Int("rpc.grpc.status_code", 0),
			attribute.String("order.id", "o-123"),
		))
	span.AddEvent("retry", trace.WithAttributes(attribute.Int("fallacies.attempt", 2)))
	span.End()
	ro := rec.Ended()[0]

	capture := tracing.NewCapture(1 << 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(1<<16) == 0 {
			capture.Reset()
		}
		capture.OnEnd(ro)
	}
	if capture.Dropped() != 0 {
		b.Fatalf("dropped %d", capture.Dropped())
	}
}

// BenchmarkGRPCRoundTrip times real unary calls over loopback on an
// untraced and a traced (client and server otelgrpc, everything sampled
// into a Capture) connection, alternating, and reports both and their
// ratio.
func BenchmarkGRPCRoundTrip(b *testing.B) {
	capture := tracing.NewCapture(1 << 16)
	orderP := setup(b, tracing.Config{Service: "order", Capture: capture})
	userP := setup(b, tracing.Config{Service: "user", Capture: capture})
	plain := dialUser(b, startUser(b, serve.Options{}, &userImpl{}), serve.Options{})
	traced := dialUser(b, startUser(b, serve.Options{TracerProvider: userP.TracerProvider}, &userImpl{}),
		serve.Options{TracerProvider: orderP.TracerProvider})
	req := &userv1.GetUserRequest{UserId: "u1"}
	ctx := context.Background()
	for _, c := range []userv1.UserServiceClient{plain, traced} { // connect
		if _, err := c.GetUser(ctx, req); err != nil {
			b.Fatal(err)
		}
	}

	var plainT, tracedT time.Duration
	n := 0
	for b.Loop() {
		if n%(1<<14) == 0 {
			capture.Reset()
		}
		start := time.Now()
		if _, err := plain.GetUser(ctx, req); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := traced.GetUser(ctx, req); err != nil {
			b.Fatal(err)
		}
		plainT += mid.Sub(start)
		tracedT += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(plainT.Nanoseconds())/float64(n), "untraced-ns/call")
	b.ReportMetric(float64(tracedT.Nanoseconds())/float64(n), "traced-ns/call")
	b.ReportMetric(float64(tracedT)/float64(plainT), "traced/untraced")
}

// Bounds of one round of BenchmarkOrdersTracing.
const (
	benchClients   = 32
	benchRound     = 3 * time.Second
	benchMaxOrders = 100_000
)

// benchSystem is an embedded topology for the benchmark, traced or not,
// and a client of its order service.
type benchSystem struct {
	name    string
	capture *tracing.Capture
	client  orderv1.OrderServiceClient
	round   int
}

// startBench starts the embedded topology, traced the way the runner
// traces (every service its own provider, every span sampled into one
// Capture) when traced is set; it stops at the end of the benchmark.
func startBench(b *testing.B, name string, traced bool) *benchSystem {
	b.Helper()
	bs := &benchSystem{name: name, capture: tracing.NewCapture(1_000_000)}
	opts := topology.Options{System: config.Default()}
	if traced {
		p := &providers{t: b, capture: bs.capture, opts: map[string]serve.Options{}}
		opts.Tracing = p.serveOptions
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	top, err := topology.StartEmbedded(ctx, opts)
	cancel()
	if err != nil {
		b.Fatalf("start embedded topology: %v", err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := top.Stop(ctx); err != nil {
			b.Errorf("stop: %v", err)
		}
	})
	conn, err := serve.Dial(top.Endpoints().Services["order"], serve.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	bs.client = orderv1.NewOrderServiceClient(conn)
	if err := place(context.Background(), bs.client, "bench-warm-"+name); err != nil {
		b.Fatalf("warm-up order: %v", err)
	}
	return bs
}

// tally accumulates rounds: orders placed, wall time and process CPU time.
type tally struct {
	orders    int64
	wall, cpu time.Duration
}

func (t tally) perSecond() float64 { return float64(t.orders) / t.wall.Seconds() }

// cpuPerOrder is the process's CPU time (every service, the clients and
// the infrastructure share it) per order, in microseconds: less sensitive
// than throughput to other load on the machine.
func (t tally) cpuPerOrder() float64 {
	return float64(t.cpu.Microseconds()) / float64(max(t.orders, 1))
}

// run saturates the system for d and adds the round to t.
func (bs *benchSystem) run(b *testing.B, d time.Duration, t *tally) {
	b.Helper()
	cpu0 := processCPU(b)
	n, wall, err := saturate(bs.client, fmt.Sprintf("bench-%s-%d", bs.name, bs.round), d)
	if err != nil {
		b.Fatal(err)
	}
	t.cpu += processCPU(b) - cpu0
	t.orders += n
	t.wall += wall
	bs.round++
	bs.capture.Reset()
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOrdersTracing measures what tracing costs the whole system: the
// embedded topology with PlaceOrder saturated by benchClients closed-loop
// clients for benchRound (at most benchMaxOrders orders), untraced ("off")
// and traced the way the runner traces ("on"). It reports orders/s and
// process CPU µs per order. "paired" runs both systems side by side and
// alternates 1-second rounds, so that other load on a shared machine hits
// both alike; it reports both figures and on/off ratios. Run it with
// -benchtime=1x -count=N and compare the medians.
func BenchmarkOrdersTracing(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			bs := startBench(b, mode, mode == "on")
			var t tally
			for b.Loop() {
				bs.run(b, benchRound, &t)
			}
			b.ReportMetric(t.perSecond(), "orders/s")
			b.ReportMetric(t.cpuPerOrder(), "cpu-µs/order")
		})
	}
	b.Run("paired", func(b *testing.B) {
		off, on := startBench(b, "paired-off", false), startBench(b, "paired-on", true)
		var toff, ton tally
		for b.Loop() {
			for range 3 {
				off.run(b, time.Second, &toff)
				on.run(b, time.Second, &ton)
			}
		}
		b.ReportMetric(toff.perSecond(), "off-orders/s")
		b.ReportMetric(ton.perSecond(), "on-orders/s")
		b.ReportMetric(ton.perSecond()/toff.perSecond(), "on/off-throughput")
		b.ReportMetric(toff.cpuPerOrder(), "off-cpu-µs/order")
		b.ReportMetric(ton.cpuPerOrder(), "on-cpu-µs/order")
		b.ReportMetric(ton.cpuPerOrder()/toff.cpuPerOrder(), "on/off-cpu")
	})
}

// saturate drives PlaceOrder from benchClients closed-loop clients until d
// passes or benchMaxOrders were placed, and returns how many succeeded and
// how long it took; a failed order is an error.
func saturate(client orderv1.OrderServiceClient, prefix string, d time.Duration) (int64, time.Duration, error) {
	// New calls stop at the end of the round; calls in flight finish.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		mu         sync.Mutex
		firstErr   error
	)
	start := time.Now()
	end := start.Add(d)
	for c := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				i := next.Add(1)
				if i > benchMaxOrders {
					return
				}
				if err := place(ctx, client, fmt.Sprintf("%s-%d", prefix, i)); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("client %d: PlaceOrder: %w", c, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), time.Since(start), firstErr
}
