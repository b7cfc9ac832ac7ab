package waterfall

import (
	"testing"
	"time"

	"github.com/fallacies/fallacies/internal/semconv"
	"github.com/fallacies/fallacies/tracing"
)

// trace is an order whose call to user went through the proxy at
// 127.0.0.1:7001 and spent 300 ms before user's server span began, and
// a later call to payment with a retry.
func trace(t0 time.Time) tracing.Trace {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	root := tracing.Span{TraceID: "t", SpanID: "r", Service: "order", Name: "order.v1.OrderService/PlaceOrder", Kind: tracing.KindServer, Start: at(0), End: at(400)}
	return tracing.Trace{ID: "t", Root: root, Spans: []tracing.Span{
		root,
		// Listed out of order: the layout sorts siblings by start.
		{TraceID: "t", SpanID: "p", ParentID: "r", Service: "order", Name: "payment.v1.PaymentService/Charge", Kind: tracing.KindClient,
			Start: at(330), End: at(390), Attrs: map[string]string{semconv.Link: "payment"},
			Events: []tracing.Event{{Name: semconv.EventRetry}}},
		{TraceID: "t", SpanID: "u", ParentID: "r", Service: "order", Name: "user.v1.UserService/GetUser", Kind: tracing.KindClient,
			Start: at(10), End: at(320), Attrs: map[string]string{"server.address": "127.0.0.1", "server.port": "7001"}},
		{TraceID: "t", SpanID: "us", ParentID: "u", Service: "user", Name: "user.v1.UserService/GetUser", Kind: tracing.KindServer,
			Start: at(310), End: at(318), Error: true, StatusMsg: "boom"},
	}}
}

func TestLayout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := trace(t0)
	links := NewLinks(map[string]string{"user": "127.0.0.1:7001"})

	plain := Layout(tr, links, nil)
	var order []string
	for _, s := range plain {
		order = append(order, s.Service+"/"+s.Name)
		if s.Fault != "" || len(s.Held) > 0 {
			t.Errorf("%s: marked %q %v with no fault window", s.Name, s.Fault, s.Held)
		}
	}
	want := []int{0, 1, 2, 1}
	if len(plain) != 4 {
		t.Fatalf("layout %v: want 4 spans", order)
	}
	for i, s := range plain {
		if s.Depth != want[i] {
			t.Errorf("layout %v: span %d at depth %d, want %d (parents before children, siblings by start)", order, i, s.Depth, want[i])
		}
	}
	if plain[2].Service != "user" || plain[2].Note != "boom" || !plain[2].Error {
		t.Errorf("user's server span: %+v, want its error and status message", plain[2])
	}
	if plain[3].Note != semconv.EventRetry || plain[3].StartMs != 330 {
		t.Errorf("payment call: note %q at %v ms, want %q at 330", plain[3].Note, plain[3].StartMs, semconv.EventRetry)
	}

	// A fault on user from 100 ms on, still on: the call was held from
	// 100 ms to its server span's start (310 ms) and after its end.
	on := []Window{{Name: "slow-user", Target: "user", Start: t0.Add(100 * time.Millisecond)}}
	got := Layout(tr, links, on)[1]
	if got.Fault != "slow-user" || len(got.Held) != 2 || got.Held[0].StartMs != 100 || got.Held[0].DurationMs != 210 ||
		got.Held[1].StartMs != 318 || got.Held[1].DurationMs != 2 {
		t.Errorf("user call under slow-user: fault %q held %+v, want slow-user held 100+210 ms and 318+2 ms", got.Fault, got.Held)
	}
	// Ended at 200 ms: held only up to then.
	on[0].End = t0.Add(200 * time.Millisecond)
	if got := Layout(tr, links, on)[1]; len(got.Held) != 1 || got.Held[0].DurationMs != 100 {
		t.Errorf("a window ended at 200 ms: held %+v, want 100 ms from 100 ms", got.Held)
	}
	// A window on another link, or over before the call, marks nothing.
	for _, w := range []Window{
		{Name: "x", Target: "payment-1", Start: t0},
		{Name: "x", Target: "user", Start: t0.Add(-time.Second), End: t0.Add(5 * time.Millisecond)},
	} {
		if got := Layout(tr, links, []Window{w}); got[1].Fault != "" || got[3].Fault != "" {
			t.Errorf("window %+v marked %q / %q", w, got[1].Fault, got[3].Fault)
		}
	}
	// The payment call is named by its link attribute.
	if got := Layout(tr, links, []Window{{Name: "slow-pay", Target: "payment", Start: t0}})[3]; got.Fault != "slow-pay" {
		t.Errorf("payment call: fault %q, want slow-pay (named by %s)", got.Fault, semconv.Link)
	}
}

func TestLayoutBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	root := tracing.Span{TraceID: "t", SpanID: "r", Service: "order", Kind: tracing.KindServer, Start: t0, End: t0.Add(time.Second)}
	tr := tracing.Trace{ID: "t", Root: root, Spans: []tracing.Span{root}}
	for i := range 3 * MaxSpans {
		tr.Spans = append(tr.Spans, tracing.Span{TraceID: "t", SpanID: string(rune('a' + i)), ParentID: "r", Start: t0, End: t0})
	}
	if n := len(Layout(tr, nil, nil)); n != MaxSpans {
		t.Errorf("%d spans laid out, want at most %d", n, MaxSpans)
	}
}
