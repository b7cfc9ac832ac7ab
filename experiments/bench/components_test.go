package bench

import (
	"bytes"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestComponentOf checks that a stack is charged to the component of the
// frame nearest its leaf that has one, through shared plumbing.
func TestComponentOf(t *testing.T) {
	tests := []struct {
		stack []string // leaf first
		want  string
	}{
		{[]string{"runtime.mallocgc", "go.opentelemetry.io/otel/sdk/trace.(*tracer).Start", "github.com/fallacies/fallacies/services/order.(*Server).place"}, compTracing},
		{[]string{"syscall.Syscall6", "github.com/fallacies/fallacies/services/resilience.(*Policy).attempt", "github.com/fallacies/fallacies/services/order.(*Server).place"}, compOrder},
		{[]string{"internal/runtime/syscall/linux.Syscall6", "github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"}, compProxies},
		{[]string{"github.com/nats-io/nats-server/v2/server.(*client).parse"}, compNATSServer},
		{[]string{"github.com/nats-io/nats.go.(*Conn).processMsg", "github.com/fallacies/fallacies/services/consumer.(*Server).run"}, compNATSClient},
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, compGC},
		{[]string{"github.com/fallacies/fallacies/tracing.(*Capture).keep"}, compTracing},
		{[]string{"google.golang.org/grpc/internal/transport.(*loopyWriter).run"}, compTransport},
		// The tracing interceptor's own work is tracing; the call it wraps is not.
		{[]string{"google.golang.org/grpc/metadata.ValueFromIncomingContext", "github.com/fallacies/fallacies/services/serve.incomingCarrier.Get", "github.com/fallacies/fallacies/services/serve.(*rpcTracing).serverSpan", "github.com/fallacies/fallacies/services/serve.(*rpcTracing).unaryServer"}, compTracing},
		{[]string{"google.golang.org/grpc.invoke", "github.com/fallacies/fallacies/services/serve.(*rpcTracing).unaryClient", "github.com/fallacies/fallacies/services/resilience.(*Policy).Intercept", "github.com/fallacies/fallacies/services/order.(*Server).place"}, compOrder},
	}
	for _, tc := range tests {
		if got := componentOf(tc.stack); got != tc.want {
			t.Errorf("componentOf(%q) = %q, want %q", tc.stack, got, tc.want)
		}
	}
}

// TestComponentShares profiles a busy loop of this package and checks
// that the shares sum to one and the loop is charged to the load generator.
func TestComponentShares(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("a CPU profile is already being recorded: %v", err)
	}
	spin(300 * time.Millisecond)
	pprof.StopCPUProfile()
	prof, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	shares, err := componentShares(prof)
	if err != nil {
		t.Skipf("no samples on this machine: %v", err)
	}
	var sum float64
	for _, s := range shares {
		sum += s
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("shares sum to %v, want 1: %v", sum, shares)
	}
	if shares[compLoad] < 0.5 {
		t.Errorf("a busy loop of package bench is charged %.0f%% to %q, want most: %v", 100*shares[compLoad], compLoad, shares)
	}
}

//go:noinline
func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		for i := range 10_000 {
			x += i
		}
	}
	sink = x
}

var sink int
