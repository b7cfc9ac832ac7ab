package topology_test

import (
	"context"
	"testing"
	"time"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

// benchStartStop starts and stops a topology b.N times, timing each
// separately: ms/start is start-to-ready (the start function returns once
// every service answers its health check and both consumers subscribed),
// ms/stop is Stop until everything is gone.
func benchStartStop(b *testing.B, start func(context.Context, topology.Options) (topology.Topology, error), o topology.Options) {
	b.ReportAllocs()
	var starting, stopping time.Duration
	n := 0
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		t0 := time.Now()
		top, err := start(ctx, o)
		t1 := time.Now()
		if err != nil {
			cancel()
			b.Fatalf("start: %v", err)
		}
		if err := top.Stop(ctx); err != nil {
			cancel()
			b.Fatalf("stop: %v", err)
		}
		t2 := time.Now()
		cancel()
		starting += t1.Sub(t0)
		stopping += t2.Sub(t1)
		n++
	}
	b.ReportMetric(float64(starting)/float64(n)/float64(time.Millisecond), "ms/start")
	b.ReportMetric(float64(stopping)/float64(n)/float64(time.Millisecond), "ms/stop")
}

// BenchmarkEmbeddedStart times the embedded topology: Toxiproxy,
// nats-server with JetStream, five services, six proxies, all ready.
func BenchmarkEmbeddedStart(b *testing.B) {
	benchStartStop(b, func(ctx context.Context, o topology.Options) (topology.Topology, error) {
		return topology.StartEmbedded(ctx, o)
	}, topology.Options{System: config.Default()})
}

// BenchmarkProcessesStart times the processes topology: the same with
// every service a child process. Run it with few iterations (-benchtime=5x).
func BenchmarkProcessesStart(b *testing.B) {
	bin := fallaciesBinary(b)
	benchStartStop(b, func(ctx context.Context, o topology.Options) (topology.Topology, error) {
		return topology.StartProcesses(ctx, o)
	}, topology.Options{System: config.Default(), Binary: bin})
}
