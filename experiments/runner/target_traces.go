package runner

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// A --target run did not start the system, so it cannot give the services
// a tracer of its own. It captures their spans when they export OTLP to an
// address it can take: `fallacies up --otlp-endpoint 127.0.0.1:PORT` (a
// port nothing else listens on) writes that endpoint into the endpoints
// file, and the run listens there while it lasts.
//
//	fallacies up ──OTLP──▶ 127.0.0.1:PORT ◀── listened on by fallacies run --target
//	                                 └─▶ capture ─▶ trace metrics, traces.json

// targetSpanWait bounds how long a --target run waits, after the drain, for
// the services' last batches of spans (their exporters send every few
// seconds: 5 s by default, OTEL_BSP_SCHEDULE_DELAY).
const targetSpanWait = 15 * time.Second

// TargetTraceAddress returns the address a --target run receives the
// target's spans at: the endpoints file's OTLP endpoint, when it is
// plaintext, on loopback, and free to listen on. The error says why the
// run cannot capture them otherwise.
func TargetTraceAddress(ep topology.Endpoints) (string, error) {
	if ep.OTLP == "" {
		return "", fmt.Errorf("the target exports no spans (start fallacies up with --otlp-endpoint)")
	}
	hp, plain, err := tracing.ParseOTLPEndpoint(ep.OTLP)
	if err != nil {
		return "", err
	}
	host, _, _ := net.SplitHostPort(hp)
	if ip := net.ParseIP(host); !plain || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return "", fmt.Errorf("the target exports its spans to %s, which is not a plaintext loopback address this run can listen on", ep.OTLP)
	}
	lis, err := net.Listen("tcp", hp)
	if err != nil {
		return "", fmt.Errorf("the target exports its spans to %s, where something else listens (a Jaeger?): %v", hp, err)
	}
	lis.Close()
	return hp, nil
}

// receiveTargetSpans listens for the target's spans at its OTLP endpoint
// and feeds them to capture. It returns the receiver's shutdown, or nil
// when the run cannot listen there (TargetTraceAddress says why).
func receiveTargetSpans(ep topology.Endpoints, capture *tracing.Capture) func(context.Context) {
	hp, err := TargetTraceAddress(ep)
	if err != nil {
		return nil
	}
	lis, err := net.Listen("tcp", hp)
	if err != nil {
		return nil
	}
	rcv := tracing.NewReceiver(capture, "")
	go rcv.Serve(lis)
	return func(ctx context.Context) { rcv.Shutdown(ctx) }
}

// awaitSpans waits until every service has sent a span that started at or
// after since, or until limit passes. An exporter sends its spans in
// batches, in order: once a service's span of the end of the load is in,
// so are its earlier ones.
func awaitSpans(ctx context.Context, capture *tracing.Capture, since time.Time, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		seen := map[string]bool{}
		for _, s := range capture.Spans() {
			if !s.Start.Before(since) {
				seen[s.Service] = true
			}
		}
		all := true
		for _, svc := range topology.Services {
			all = all && seen[svc]
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}
