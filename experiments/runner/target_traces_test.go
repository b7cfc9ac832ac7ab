package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

// TestTargetRunCapturesTheTargetsSpans starts a system as `fallacies up
// --otlp-endpoint` does, its services exporting OTLP to a free loopback
// port named in its endpoints, and runs against it: the run listens there,
// so its trace hypotheses are decided on the target's own spans.
func TestTargetRunCapturesTheTargetsSpans(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200") // ms: the exporters' batches come quickly
	addr := portToLeaveFree(t)

	tr := topology.NewTracers(nil, addr)
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: config.Default(), Tracing: tr.ServeOptions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		topo.Stop(context.Background())
		shutdownTracers(tr)
	})
	ep := topo.Endpoints()
	ep.OTLP = addr
	if got, err := TargetTraceAddress(ep); err != nil || got != addr {
		t.Fatalf("TargetTraceAddress = %q, %v; want %s", got, err, addr)
	}

	res, err := Run(t.Context(), mustParse(t, `
name: target-traces
fallacy: latency-is-zero
description: trace hypotheses against a target
load: { rate: 20/s, duration: 2s, drain: 5s }
variants: { only: {} }
hypotheses:
  - { when: before, check: "trace.count >= 20 and trace.async_isolated" }
  - { when: before, check: "trace.critical_path(order.PlaceOrder) contains user.GetUser" }
`), Options{Target: &ep, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Report.Variants[0]
	for _, h := range v.Hypotheses {
		if !h.Passed {
			t.Errorf("%s: %s", h.Expr, h.Observed)
		}
	}
	if n := v.Metrics["before.trace.count"]; n < 20 {
		t.Errorf("before.trace.count = %v, want every order's trace", n)
	}

	// Where something else listens, the run cannot capture, and says why.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ep.OTLP = busy.Addr().String()
	if _, err := TargetTraceAddress(ep); err == nil || !strings.Contains(err.Error(), "something else listens") {
		t.Errorf("TargetTraceAddress with the port taken: %v", err)
	}
	ep.OTLP = ""
	if _, err := TargetTraceAddress(ep); err == nil || !strings.Contains(err.Error(), "--otlp-endpoint") {
		t.Errorf("TargetTraceAddress without an endpoint: %v", err)
	}
}

// portToLeaveFree returns a loopback address nothing listens on, with a
// port below the kernel's ephemeral range (32768-60999 by default), as an
// operator's --otlp-endpoint would be (4317): a port taken from the
// ephemeral range and released can be handed to one of the topology's own
// outgoing connections before the run listens there.
func portToLeaveFree(t *testing.T) string {
	t.Helper()
	for port := 20000 + os.Getpid()%5000; port < 32000; port += 97 {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if lis, err := net.Listen("tcp", addr); err == nil {
			lis.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}
