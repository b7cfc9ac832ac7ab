package tracing_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fallacies/fallacies/tracing"
)

// clientAttempt is one PlaceOrder trace of order id for a client attempt
// starting at ms, in which order's call reached payment charges times.
func clientAttempt(traceID, orderID string, ms, charges int) []tracing.Span {
	root := tracing.Span{
		TraceID: traceID, SpanID: traceID + "-root", Service: "order", Kind: tracing.KindServer, Name: tracing.PlaceOrderSpan,
		Start: t0.Add(time.Duration(ms) * time.Millisecond), End: t0.Add(time.Duration(ms+100) * time.Millisecond),
	}
	if orderID != "" {
		root.Attrs = map[string]string{tracing.AttrOrderID: orderID}
	}
	spans := []tracing.Span{root}
	for i := range charges {
		id := fmt.Sprintf("%s-c%d", traceID, i)
		spans = append(spans,
			tracing.Span{TraceID: traceID, SpanID: id, ParentID: root.SpanID, Service: "order", Kind: tracing.KindClient,
				Name: "payment.v1.PaymentService/Charge", Start: root.Start, End: root.End},
			tracing.Span{TraceID: traceID, SpanID: id + "s", ParentID: id, Service: "payment", Kind: tracing.KindServer,
				Name: "payment.v1.PaymentService/Charge", Start: root.Start, End: root.End})
	}
	return spans
}

func TestClientAmplification(t *testing.T) {
	var spans []tracing.Span
	// o-1: the client tried 4 times, order retried 4 times each: 16 charges.
	for i := range 4 {
		spans = append(spans, clientAttempt(fmt.Sprintf("a%d", i), "o-1", 10+200*i, 4)...)
	}
	// o-2: one attempt, one charge; o-3: one attempt that never reached payment.
	spans = append(spans, clientAttempt("b", "o-2", 5, 1)...)
	spans = append(spans, clientAttempt("c", "o-3", 20, 0)...)
	// A trace without an order id is a request of its own.
	spans = append(spans, clientAttempt("d", "", 30, 2)...)

	reqs := tracing.ClientRequests(tracing.Group(spans))
	if len(reqs) != 4 {
		t.Fatalf("%d client requests, want 4: %+v", len(reqs), reqs)
	}
	if reqs[0].OrderID != "o-2" || reqs[1].OrderID != "o-1" {
		t.Fatalf("requests not in order of their first attempt: %s, %s", reqs[0].OrderID, reqs[1].OrderID)
	}
	if n := len(reqs[1].Traces); n != 4 {
		t.Fatalf("o-1 has %d traces, want 4", n)
	}
	if got := reqs[1].Attempts("payment"); got != 16 {
		t.Fatalf("o-1 reached payment %d times, want 16", got)
	}
	if got := reqs[1].Attempts("order"); got != 4 {
		t.Fatalf("o-1 reached order %d times, want 4", got)
	}

	amp := tracing.ClientAmplification(reqs)
	want := tracing.ClientAmplificationSummary{P50: 1, P99: 16, Max: 16, Mean: (16 + 1 + 0 + 2) / 4.0, Requests: 4}
	if got := amp["payment"]; got != want {
		t.Fatalf("payment amplification %+v, want %+v", got, want)
	}
	// Each trace alone shows only order's own retries.
	if got := tracing.Metrics(tracing.Group(spans), nil).RetryAmplification["payment"].Max; got != 4 {
		t.Fatalf("per-trace amplification max %d, want 4", got)
	}
}

func TestClientAmplificationEmpty(t *testing.T) {
	if got := tracing.ClientAmplification(nil); len(got) != 0 {
		t.Fatalf("amplification of nothing: %+v", got)
	}
}
