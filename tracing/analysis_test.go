package tracing_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fallacies/fallacies/tracing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sp builds a span of trace "t" (unless tr says otherwise) from start and
// end offsets in milliseconds.
type sp struct {
	id, parent, svc, kind, name string
	start, end                  int
	err                         bool
	tr                          string
	links                       []tracing.Link
}

func (s sp) span() tracing.Span {
	tr := s.tr
	if tr == "" {
		tr = "t"
	}
	kind := s.kind
	if kind == "" {
		kind = tracing.KindInternal
	}
	return tracing.Span{
		TraceID: tr, SpanID: s.id, ParentID: s.parent, Service: s.svc, Kind: kind, Name: s.name,
		Start: t0.Add(time.Duration(s.start) * time.Millisecond), End: t0.Add(time.Duration(s.end) * time.Millisecond),
		Error: s.err, Links: s.links,
	}
}

func build(specs ...sp) []tracing.Span {
	out := make([]tracing.Span, len(specs))
	for i, s := range specs {
		out[i] = s.span()
	}
	return out
}

func one(t *testing.T, spans []tracing.Span) tracing.Trace {
	t.Helper()
	traces := tracing.Group(spans)
	if len(traces) != 1 {
		t.Fatalf("Group made %d traces, want 1", len(traces))
	}
	return traces[0]
}

const (
	placeOrder = tracing.PlaceOrderSpan
	charge     = "payment.v1.PaymentService/Charge"
)

func root(end int, err bool) sp {
	return sp{id: "r", svc: "order", kind: tracing.KindServer, name: placeOrder, start: 0, end: end, err: err}
}

func ids(spans []tracing.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.SpanID
	}
	return out
}

func TestCriticalPath(t *testing.T) {
	tests := []struct {
		name      string
		spans     []sp
		wantIDs   []string
		wantNames []string
	}{
		{
			name: "sequential calls",
			spans: []sp{
				root(100, false),
				{id: "uc", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 5, end: 55},
				{id: "us", parent: "uc", svc: "user", kind: tracing.KindServer, name: getUser, start: 7, end: 53},
				{id: "pc", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 56, end: 80},
				{id: "ps", parent: "pc", svc: "payment", kind: tracing.KindServer, name: charge, start: 57, end: 79},
				{id: "pub", parent: "r", svc: "order", kind: tracing.KindProducer, name: "orders.created publish", start: 81, end: 90},
			},
			wantIDs:   []string{"r", "uc", "us", "pc", "ps", "pub"},
			wantNames: []string{"order.PlaceOrder", "user.GetUser", "payment.Charge", "order.orders.created publish"},
		},
		{
			name: "parallel: the longer branch only",
			spans: []sp{
				root(100, false),
				{id: "a", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 0, end: 90},
				{id: "b", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 0, end: 50},
			},
			wantIDs:   []string{"r", "a"},
			wantNames: []string{"order.PlaceOrder", "user.GetUser"},
		},
		{
			name: "overlapping: the later, then what remains before it",
			spans: []sp{
				root(100, false),
				{id: "a", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 10, end: 60},
				{id: "b", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 50, end: 95},
				{id: "c", parent: "r", svc: "order", name: "tiny", start: 52, end: 53}, // hidden under b
			},
			wantIDs:   []string{"r", "a", "b"},
			wantNames: []string{"order.PlaceOrder", "user.GetUser", "payment.Charge"},
		},
		{
			name: "retries: every attempt is on the path",
			spans: []sp{
				root(100, false),
				{id: "a1", parent: "r", svc: "order", name: "user.attempt", start: 1, end: 30},
				{id: "c1", parent: "a1", svc: "order", kind: tracing.KindClient, name: getUser, start: 2, end: 29, err: true},
				{id: "s1", parent: "c1", svc: "user", kind: tracing.KindServer, name: getUser, start: 3, end: 28, err: true},
				{id: "a2", parent: "r", svc: "order", name: "user.attempt", start: 40, end: 70},
				{id: "c2", parent: "a2", svc: "order", kind: tracing.KindClient, name: getUser, start: 41, end: 69},
				{id: "s2", parent: "c2", svc: "user", kind: tracing.KindServer, name: getUser, start: 42, end: 68},
			},
			wantIDs:   []string{"r", "a1", "c1", "s1", "a2", "c2", "s2"},
			wantNames: []string{"order.PlaceOrder", "order.user.attempt", "user.GetUser", "order.user.attempt", "user.GetUser"},
		},
		{
			name: "a child outliving its parent is clipped, not dropped",
			spans: []sp{
				root(50, false),
				{id: "late", parent: "r", svc: "order", kind: tracing.KindProducer, name: "orders.created publish", start: 10, end: 80},
			},
			wantIDs:   []string{"r", "late"},
			wantNames: []string{"order.PlaceOrder", "order.orders.created publish"},
		},
		{
			name:      "root alone",
			spans:     []sp{root(10, false)},
			wantIDs:   []string{"r"},
			wantNames: []string{"order.PlaceOrder"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := one(t, build(tc.spans...))
			if got := ids(tracing.CriticalPath(tr)); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("CriticalPath = %v, want %v", got, tc.wantIDs)
			}
			if got := tracing.CriticalPathNames(tr); !slices.Equal(got, tc.wantNames) {
				t.Errorf("CriticalPathNames = %v, want %v", got, tc.wantNames)
			}
		})
	}
}

func TestShortName(t *testing.T) {
	tests := []struct {
		span tracing.Span
		want string
	}{
		{tracing.Span{Name: getUser, Service: "user", Kind: tracing.KindServer}, "user.GetUser"},
		{tracing.Span{Name: getUser, Service: "order", Kind: tracing.KindClient}, "user.GetUser"},
		{tracing.Span{Name: charge, Service: "payment-blue", Kind: tracing.KindServer}, "payment-blue.Charge"},
		{tracing.Span{Name: "orders.created publish", Service: "order", Kind: tracing.KindProducer}, "order.orders.created publish"},
		{tracing.Span{Name: "GET /users/{id}", Service: "user", Kind: tracing.KindServer}, "user.GET /users/{id}"},
		{tracing.Span{Name: "x"}, "x"},
	}
	for _, tc := range tests {
		if got := tracing.ShortName(tc.span); got != tc.want {
			t.Errorf("ShortName(%q of %q, %s) = %q, want %q", tc.span.Name, tc.span.Service, tc.span.Kind, got, tc.want)
		}
	}
}

func TestErrorOrigin(t *testing.T) {
	tests := []struct {
		name          string
		spans         []sp
		wantService   string
		wantInherited bool
	}{
		{
			name:  "no error",
			spans: []sp{root(10, false), {id: "c", parent: "r", svc: "order", kind: tracing.KindClient, start: 1, end: 9}},
		},
		{
			name: "user failed and it reached the root",
			spans: []sp{
				root(100, true),
				{id: "c", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 1, end: 50, err: true},
				{id: "s", parent: "c", svc: "user", kind: tracing.KindServer, name: getUser, start: 2, end: 49, err: true},
			},
			wantService: "user", wantInherited: true,
		},
		{
			name:        "order itself rejected the request",
			spans:       []sp{root(10, true), {id: "c", parent: "r", svc: "order", kind: tracing.KindClient, start: 1, end: 5}},
			wantService: "order", wantInherited: false,
		},
		{
			name: "payment failed but the fallback saved the order",
			spans: []sp{
				root(100, false),
				{id: "c", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 1, end: 50, err: true},
				{id: "s", parent: "c", svc: "payment", kind: tracing.KindServer, name: charge, start: 2, end: 49, err: true},
			},
			wantService: "payment", wantInherited: false,
		},
		{
			name: "the earliest of two independent failures",
			spans: []sp{
				root(100, true),
				{id: "pc", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 30, end: 61, err: true},
				{id: "ps", parent: "pc", svc: "payment", kind: tracing.KindServer, name: charge, start: 31, end: 60, err: true},
				{id: "uc", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 1, end: 21, err: true},
				{id: "us", parent: "uc", svc: "user", kind: tracing.KindServer, name: getUser, start: 2, end: 20, err: true},
			},
			wantService: "user", wantInherited: true,
		},
		{
			name: "a deadline: the client gave up on a slow callee that did not fail",
			spans: []sp{
				root(100, true),
				{id: "c", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 1, end: 50, err: true},
				{id: "s", parent: "c", svc: "user", kind: tracing.KindServer, name: getUser, start: 2, end: 70},
			},
			wantService: "user", wantInherited: true,
		},
		{
			name: "a partitioned link: the callee never saw the call",
			spans: []sp{
				root(100, true),
				{id: "uc", parent: "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 1, end: 10},
				{id: "us", parent: "uc", svc: "user", kind: tracing.KindServer, name: getUser, start: 2, end: 9},
				{id: "pc", parent: "r", svc: "order", kind: tracing.KindClient, name: charge, start: 11, end: 12, err: true},
			},
			wantService: "payment", wantInherited: true,
		},
		{
			name: "an open breaker: order refused on its own, no client span",
			spans: []sp{
				root(100, true),
				{id: "a", parent: "r", svc: "order", name: "payment.attempt", start: 1, end: 2, err: true},
			},
			wantService: "order", wantInherited: true,
		},
		{
			name: "same end: the deeper span",
			spans: []sp{
				root(100, true),
				{id: "a", parent: "r", svc: "order", name: "user.attempt", start: 1, end: 50, err: true},
				{id: "c", parent: "r", svc: "payment", kind: tracing.KindClient, name: charge, start: 1, end: 50, err: true},
				{id: "cs", parent: "a", svc: "user", kind: tracing.KindClient, start: 2, end: 50, err: true},
			},
			wantService: "user", wantInherited: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc, inh := tracing.ErrorOrigin(one(t, build(tc.spans...)))
			if svc != tc.wantService || inh != tc.wantInherited {
				t.Errorf("ErrorOrigin = %q, %v; want %q, %v", svc, inh, tc.wantService, tc.wantInherited)
			}
		})
	}
}

func TestCallee(t *testing.T) {
	tests := []struct {
		span tracing.Span
		want string
	}{
		{tracing.Span{Name: charge, Service: "order", Kind: tracing.KindClient}, "payment"},
		{tracing.Span{Name: charge, Service: "payment", Kind: tracing.KindServer}, ""},
		{tracing.Span{Name: "x", Service: "order", Kind: tracing.KindClient, Attrs: map[string]string{"rpc.method": getUser}}, "user"},
		{tracing.Span{Name: "x", Service: "order", Kind: tracing.KindClient, Attrs: map[string]string{"rpc.service": "payment.v1.PaymentService"}}, "payment"},
		{tracing.Span{Name: "GET /users/{id}", Service: "order", Kind: tracing.KindClient}, ""},
		{tracing.Span{Name: "orders.created publish", Service: "order", Kind: tracing.KindProducer}, ""},
	}
	for _, tc := range tests {
		if got := tracing.Callee(tc.span); got != tc.want {
			t.Errorf("Callee(%q, %s, %v) = %q, want %q", tc.span.Name, tc.span.Kind, tc.span.Attrs, got, tc.want)
		}
	}
}

func TestRetryAmplification(t *testing.T) {
	tr := one(t, build(
		root(100, false),
		sp{id: "s1", parent: "c1", svc: "user", kind: tracing.KindServer, start: 1, end: 2},
		sp{id: "s2", parent: "c2", svc: "user", kind: tracing.KindServer, start: 3, end: 4},
		sp{id: "s3", parent: "c3", svc: "user", kind: tracing.KindServer, start: 5, end: 6},
		sp{id: "c1", parent: "r", svc: "order", kind: tracing.KindClient, start: 1, end: 2},
		sp{id: "c2", parent: "r", svc: "order", kind: tracing.KindClient, start: 3, end: 4},
		sp{id: "c3", parent: "r", svc: "order", kind: tracing.KindClient, start: 5, end: 6},
		sp{id: "p", parent: "r", svc: "payment", kind: tracing.KindServer, start: 7, end: 8},
	))
	for svc, want := range map[string]int{"user": 3, "payment": 1, "order": 1, "ledger": 0} {
		if got := tracing.RetryAmplification(tr, svc); got != want {
			t.Errorf("RetryAmplification(%s) = %d, want %d", svc, got, want)
		}
	}
}

func TestAsyncIsolated(t *testing.T) {
	producer := sp{id: "pub", parent: "r", svc: "order", kind: tracing.KindProducer, name: "orders.created publish", start: 80, end: 90}
	link := []tracing.Link{{TraceID: "t", SpanID: "pub"}}
	tests := []struct {
		name      string
		inTrace   []sp // extra spans of the order trace
		consumers []sp
		want      bool
	}{
		{name: "no consumers", want: true},
		{
			name:      "own trace, linked, even while the order was still open",
			consumers: []sp{{id: "n", tr: "n", svc: "notification", kind: tracing.KindConsumer, start: 91, end: 120, links: link}},
			want:      true,
		},
		{
			name:      "same trace but after the order answered",
			consumers: []sp{{id: "n", parent: "pub", svc: "notification", kind: tracing.KindConsumer, start: 101, end: 120}},
			want:      true,
		},
		{
			name:      "same trace while the order was open",
			consumers: []sp{{id: "n", parent: "pub", svc: "notification", kind: tracing.KindConsumer, start: 91, end: 99}},
			want:      false,
		},
		{
			name:    "a consumer inside the order trace, not passed separately",
			inTrace: []sp{{id: "l", parent: "pub", svc: "ledger", kind: tracing.KindConsumer, start: 92, end: 150}},
			want:    false,
		},
		{
			name: "other orders' consumers are ignored",
			consumers: []sp{
				{id: "x", tr: "other", parent: "otherpub", svc: "ledger", kind: tracing.KindConsumer, start: 10, end: 20},
				{id: "n", tr: "n", svc: "notification", kind: tracing.KindConsumer, start: 95, end: 96, links: link},
			},
			want: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			order := one(t, build(append([]sp{root(100, false), producer}, tc.inTrace...)...))
			if got := tracing.AsyncIsolated(order, build(tc.consumers...)); got != tc.want {
				t.Errorf("AsyncIsolated = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLinked(t *testing.T) {
	producer := sp{id: "pub", tr: "a", kind: tracing.KindProducer}.span()
	tests := []struct {
		links []tracing.Link
		want  bool
	}{
		{links: []tracing.Link{{TraceID: "a", SpanID: "pub"}}, want: true},
		{links: []tracing.Link{{TraceID: "z", SpanID: "q"}, {TraceID: "a", SpanID: "pub"}}, want: true},
		{links: []tracing.Link{{TraceID: "b", SpanID: "pub"}}, want: false},
		{links: nil, want: false},
	}
	for _, tc := range tests {
		consumer := sp{id: "c", tr: "c", kind: tracing.KindConsumer, links: tc.links}.span()
		if got := tracing.Linked(consumer, producer); got != tc.want {
			t.Errorf("Linked with links %v = %v, want %v", tc.links, got, tc.want)
		}
	}
}

func TestGroup(t *testing.T) {
	spans := build(
		sp{id: "b2", tr: "B", parent: "b1", start: 15, end: 16},
		sp{id: "a2", tr: "A", parent: "a1", start: 2, end: 3},
		sp{id: "b1", tr: "B", start: 10, end: 20},
		sp{id: "a1", tr: "A", start: 1, end: 5},
		// C lost its root (a caller outside, or a dropped span): the
		// earliest orphan stands in.
		sp{id: "c3", tr: "C", parent: "c2", start: 32, end: 33},
		sp{id: "c2", tr: "C", parent: "gone", start: 31, end: 34},
	)
	traces := tracing.Group(spans)
	var got []string
	for _, tr := range traces {
		got = append(got, fmt.Sprintf("%s:%s:%v", tr.ID, tr.Root.SpanID, ids(tr.Spans)))
	}
	want := []string{"A:a1:[a1 a2]", "B:b1:[b1 b2]", "C:c2:[c2 c3]"}
	if !slices.Equal(got, want) {
		t.Errorf("Group = %v, want %v", got, want)
	}
	if n := len(tracing.Group(nil)); n != 0 {
		t.Errorf("Group(nil) has %d traces", n)
	}
}

// orderTrace builds an order trace id with the given duration, user
// attempts, and failure.
func orderTrace(id string, dur, userAttempts int, failAt string) []tracing.Span {
	specs := []sp{{id: id + "r", tr: id, svc: "order", kind: tracing.KindServer, name: placeOrder, end: dur, err: failAt != ""}}
	for i := range userAttempts {
		c, s := fmt.Sprintf("%suc%d", id, i), fmt.Sprintf("%sus%d", id, i)
		last := i == userAttempts-1
		specs = append(specs,
			sp{id: c, tr: id, parent: id + "r", svc: "order", kind: tracing.KindClient, name: getUser, start: 1 + 10*i, end: 9 + 10*i, err: !last || failAt == "user"},
			sp{id: s, tr: id, parent: c, svc: "user", kind: tracing.KindServer, name: getUser, start: 2 + 10*i, end: 8 + 10*i, err: !last || failAt == "user"})
	}
	specs = append(specs,
		sp{id: id + "pc", tr: id, parent: id + "r", svc: "order", kind: tracing.KindClient, name: charge, start: dur - 20, end: dur - 11, err: failAt == "payment"},
		sp{id: id + "ps", tr: id, parent: id + "pc", svc: "payment", kind: tracing.KindServer, name: charge, start: dur - 19, end: dur - 12, err: failAt == "payment"},
		sp{id: id + "pub", tr: id, parent: id + "r", svc: "order", kind: tracing.KindProducer, name: "orders.created publish", start: dur - 10, end: dur - 5},
	)
	return build(specs...)
}

func TestMetrics(t *testing.T) {
	var spans []tracing.Span
	spans = append(spans, orderTrace("o1", 100, 1, "")...)
	spans = append(spans, orderTrace("o2", 300, 3, "user")...)
	spans = append(spans, orderTrace("o3", 200, 1, "payment")...)
	spans = append(spans, orderTrace("o4", 150, 2, "user")...)
	consumer := sp{id: "n1", tr: "n1", svc: "notification", kind: tracing.KindConsumer, name: "orders.created process",
		start: 95, end: 120, links: []tracing.Link{{TraceID: "o1", SpanID: "o1pub"}}}.span()
	spans = append(spans, consumer)
	traces := tracing.Group(spans)
	if len(traces) != 5 || len(tracing.OrderTraces(traces)) != 4 {
		t.Fatalf("%d traces, %d order traces; want 5, 4", len(traces), len(tracing.OrderTraces(traces)))
	}

	got := tracing.Metrics(traces, tracing.ConsumerSpans(spans))
	want := tracing.Summary{
		Count:          4,
		Failed:         3,
		SlowestTraceID: "o2",
		CriticalPath:   []string{"order.PlaceOrder", "user.GetUser", "payment.Charge", "order.orders.created publish"},
		ErrorOrigin:    "user",
		ErrorOrigins:   map[string]int{"user": 2, "payment": 1},
		ErrorInherited: 1,
		RetryAmplification: map[string]tracing.Amplification{
			"order":   {P50: 1, P99: 1, Max: 1},
			"user":    {P50: 1, P99: 3, Max: 3},
			"payment": {P50: 1, P99: 1, Max: 1},
		},
		AsyncIsolated: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Metrics =\n %+v\nwant\n %+v", got, want)
	}

	// A consumer in o3's own trace, started while o3 was open, breaks
	// isolation.
	coupled := sp{id: "l3", tr: "o3", parent: "o3pub", svc: "ledger", kind: tracing.KindConsumer, start: 191, end: 199}.span()
	if tracing.Metrics(tracing.Group(append(spans, coupled)), []tracing.Span{consumer, coupled}).AsyncIsolated {
		t.Error("AsyncIsolated holds with a consumer inside an open order trace")
	}
	if empty := tracing.Metrics(nil, nil); empty.Count != 0 || !empty.AsyncIsolated || empty.CriticalPath != nil {
		t.Errorf("Metrics(nil) = %+v", empty)
	}
}

func TestExemplars(t *testing.T) {
	var spans []tracing.Span
	spans = append(spans, orderTrace("fast", 100, 1, "")...)
	spans = append(spans, orderTrace("slowok", 400, 1, "")...)
	spans = append(spans, orderTrace("failfast", 120, 1, "user")...)
	spans = append(spans, orderTrace("failslow", 250, 1, "payment")...)
	traces := tracing.Group(spans)
	if s, ok := tracing.Slowest(traces); !ok || s.ID != "slowok" {
		t.Errorf("Slowest = %s, %v; want slowok", s.ID, ok)
	}
	if f, ok := tracing.Failed(traces); !ok || f.ID != "failslow" {
		t.Errorf("Failed = %s, %v; want failslow", f.ID, ok)
	}
	if _, ok := tracing.Failed(tracing.Group(orderTrace("fine", 10, 1, ""))); ok {
		t.Error("Failed found a trace among successes")
	}
	if _, ok := tracing.Slowest(nil); ok {
		t.Error("Slowest found a trace in nothing")
	}
	for _, base := range []string{"http://127.0.0.1:16686", "http://127.0.0.1:16686/"} {
		if got, want := tracing.JaegerTraceURL(base, "abc"), "http://127.0.0.1:16686/trace/abc"; got != want {
			t.Errorf("JaegerTraceURL(%q) = %q, want %q", base, got, want)
		}
	}
}
