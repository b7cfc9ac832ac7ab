package tracing

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
)

// PlaceOrderSpan is the name of order's gRPC server span (made by the
// tracing interceptor of services/serve), the root of every order's trace.
const PlaceOrderSpan = "order.v1.OrderService/PlaceOrder"

// Trace is the spans of one trace ID.
type Trace struct {
	ID    string `json:"id"`
	Spans []Span `json:"spans"` // by start time
	Root  Span   `json:"root"`
}

// Duration is the root's duration.
func (t Trace) Duration() time.Duration { return t.Root.Duration() }

// Group sorts spans into traces, ordered by their roots' start. Within a
// trace spans are ordered by start. The root is the span without a parent;
// when the true root is missing (not captured, or dropped), it is the
// earliest span whose parent is not in the trace.
func Group(spans []Span) []Trace {
	byID := make(map[string][]Span)
	var order []string
	for _, s := range spans {
		if _, ok := byID[s.TraceID]; !ok {
			order = append(order, s.TraceID)
		}
		byID[s.TraceID] = append(byID[s.TraceID], s)
	}
	out := make([]Trace, 0, len(order))
	for _, id := range order {
		ss := byID[id]
		slices.SortStableFunc(ss, func(a, b Span) int { return a.Start.Compare(b.Start) })
		out = append(out, Trace{ID: id, Spans: ss, Root: findRoot(ss)})
	}
	slices.SortStableFunc(out, func(a, b Trace) int { return a.Root.Start.Compare(b.Root.Start) })
	return out
}

// findRoot returns the parentless span, else the earliest orphan; ss is
// sorted by start.
func findRoot(ss []Span) Span {
	ids := make(map[string]bool, len(ss))
	for _, s := range ss {
		ids[s.SpanID] = true
	}
	var orphan *Span
	for i := range ss {
		if ss[i].ParentID == "" {
			return ss[i]
		}
		if orphan == nil && !ids[ss[i].ParentID] {
			orphan = &ss[i]
		}
	}
	if orphan != nil {
		return *orphan
	}
	return ss[0] // a cycle; cannot happen with real IDs
}

// OrderTraces returns the traces whose root is order's PlaceOrder server
// span.
func OrderTraces(traces []Trace) []Trace {
	var out []Trace
	for _, t := range traces {
		if t.Root.Kind == KindServer && t.Root.Name == PlaceOrderSpan {
			out = append(out, t)
		}
	}
	return out
}

// ConsumerSpans returns the spans of kind consumer.
func ConsumerSpans(spans []Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.Kind == KindConsumer {
			out = append(out, s)
		}
	}
	return out
}

// children maps a span ID to its children in t.
func children(t Trace) map[string][]Span {
	m := make(map[string][]Span, len(t.Spans))
	for _, s := range t.Spans {
		if s.ParentID != "" && s.SpanID != t.Root.SpanID {
			m[s.ParentID] = append(m[s.ParentID], s)
		}
	}
	return m
}

// CriticalPath returns the spans on the critical path of t: the chain of
// work the root's duration waited on. It starts at the root and walks its
// window backwards from the root's end: the child that ended last (among
// children overlapping what remains of the window) is on the path, with its
// own critical path inside it; the window then shrinks to end where that
// child started, and the walk repeats until no child overlaps it. Time not
// covered by a chosen child is the parent's own.
//
// The result is in path order: each span is followed by its critical
// descendants, and siblings appear in time order, e.g. PlaceOrder, GetUser
// (client), GetUser (server), Charge (client), Charge (server).
func CriticalPath(t Trace) []Span {
	if t.Root.SpanID == "" {
		return nil
	}
	kids := children(t)
	for id := range kids {
		slices.SortStableFunc(kids[id], func(a, b Span) int { return b.End.Compare(a.End) })
	}
	seen := make(map[string]bool)
	return criticalFrom(t.Root, t.Root.End, kids, seen)
}

func criticalFrom(s Span, limit time.Time, kids map[string][]Span, seen map[string]bool) []Span {
	if seen[s.SpanID] {
		return nil
	}
	seen[s.SpanID] = true
	end := s.End
	if limit.Before(end) {
		end = limit
	}
	var segs [][]Span // latest first
	for _, c := range kids[s.SpanID] {
		if !end.After(s.Start) {
			break
		}
		if !c.Start.Before(end) || !c.End.After(s.Start) {
			continue
		}
		cEnd := c.End
		if end.Before(cEnd) {
			cEnd = end
		}
		segs = append(segs, criticalFrom(c, cEnd, kids, seen))
		end = c.Start
	}
	out := []Span{s}
	for i := len(segs) - 1; i >= 0; i-- {
		out = append(out, segs[i]...)
	}
	return out
}

// ShortName names a span for people: an RPC span
// "pkg.v1.XService/Method" becomes "<service>.Method", where <service> is
// the span's own service for a server span and, for a client span, the
// first segment of the proto package, which in this system is the callee's
// service name (so both ends of order→user read "user.GetUser"). Other
// spans become "<service>.<name>", e.g. "order.orders.created publish".
func ShortName(s Span) string {
	if pkg, method, ok := rpcName(s.Name); ok {
		if s.Kind == KindServer && s.Service != "" {
			return s.Service + "." + method
		}
		return pkg + "." + method
	}
	if s.Service == "" {
		return s.Name
	}
	return s.Service + "." + s.Name
}

// rpcName splits a gRPC span name "pkg.v1.XService/Method" into the first
// segment of the proto package ("pkg") and the method; ok is false for
// names of another shape.
func rpcName(name string) (pkg, method string, ok bool) {
	full, method, ok := strings.Cut(name, "/")
	if !ok || method == "" || strings.Contains(method, "/") || !strings.Contains(full, ".") || strings.Contains(full, " ") {
		return "", "", false
	}
	pkg, _, _ = strings.Cut(full, ".")
	return pkg, method, pkg != ""
}

// Callee returns the service a client RPC span called: the first segment
// of the proto package of its rpc.service attribute (older semantic
// conventions), else of its rpc.method attribute or its name ("user" for
// "user.v1.UserService/GetUser"), which in this system is the callee's
// service name. It returns "" for spans that are not client RPC spans.
func Callee(s Span) string {
	if s.Kind != KindClient {
		return ""
	}
	if svc := s.Attrs["rpc.service"]; svc != "" {
		if pkg, _, _ := strings.Cut(svc, "."); pkg != "" {
			return pkg
		}
	}
	for _, n := range []string{s.Attrs["rpc.method"], s.Name} {
		if pkg, _, ok := rpcName(n); ok {
			return pkg
		}
	}
	return ""
}

// blamed is the service an error that started in s is attributed to: the
// callee for a client RPC span (see ErrorOrigin), else s's own service.
func blamed(s Span) string {
	if c := Callee(s); c != "" {
		return c
	}
	return s.Service
}

// CriticalPathNames returns the short names of t's critical path, with
// consecutive repeats collapsed (the client and server spans of one call),
// e.g. ["order.PlaceOrder", "user.GetUser", "payment.Charge"].
func CriticalPathNames(t Trace) []string {
	var out []string
	for _, s := range CriticalPath(t) {
		n := ShortName(s)
		if len(out) > 0 && out[len(out)-1] == n {
			continue
		}
		out = append(out, n)
	}
	return out
}

// ErrorOrigin returns the service where t's error started, and whether it
// travelled to the root.
//
// The origin span is, among spans with error status none of whose children
// has error status (errors that were not passed up from below), the one
// that ended first, ties going to the deeper span. The service is:
//
//   - for a client RPC span, the callee (Callee: "payment" for order's
//     client span of payment.v1.PaymentService/Charge). A failed client
//     span with no failed server span below it is a call that did not get
//     an answer: the callee was unreachable (a partitioned link: the
//     server never saw the call, so no server span exists), too slow (the
//     caller's deadline expired while the server was still working), or
//     the connection to it broke. In each case the trouble is the callee
//     or the path to it, not the caller;
//   - for any other span, its own service: a server span that failed
//     itself, or a rejection the caller decided on its own (an open
//     circuit breaker or a full bulkhead fails order's "<link>.attempt"
//     span or the root without any client span: the origin is "order").
//
// service is "" when no span failed. inherited reports whether the error
// travelled to the root: the root has error status and is not itself the
// origin span.
func ErrorOrigin(t Trace) (service string, inherited bool) {
	s, ok := errorOriginSpan(t)
	if !ok {
		return "", false
	}
	return blamed(s), t.Root.Error && s.SpanID != t.Root.SpanID
}

func errorOriginSpan(t Trace) (Span, bool) {
	failedChild := make(map[string]bool)
	for _, s := range t.Spans {
		if s.Error && s.ParentID != "" {
			failedChild[s.ParentID] = true
		}
	}
	depth := depths(t)
	var best Span
	found := false
	for _, s := range t.Spans {
		if !s.Error || failedChild[s.SpanID] {
			continue
		}
		if !found {
			best, found = s, true
			continue
		}
		if c := s.End.Compare(best.End); c < 0 || (c == 0 && depth[s.SpanID] > depth[best.SpanID]) {
			best = s
		}
	}
	return best, found
}

// depths maps span IDs to their depth below the root (root 0).
func depths(t Trace) map[string]int {
	parent := make(map[string]string, len(t.Spans))
	for _, s := range t.Spans {
		parent[s.SpanID] = s.ParentID
	}
	d := make(map[string]int, len(t.Spans))
	for _, s := range t.Spans {
		n := 0
		for id := s.SpanID; id != t.Root.SpanID && n <= len(t.Spans); n++ {
			p, ok := parent[id]
			if !ok || p == "" {
				break
			}
			id = p
		}
		d[s.SpanID] = n
	}
	return d
}

// RetryAmplification returns how many server spans service has in t: the
// attempts that reached it (1 without retries, 0 if none got through).
func RetryAmplification(t Trace, service string) int {
	n := 0
	for _, s := range t.Spans {
		if s.Kind == KindServer && s.Service == service {
			n++
		}
	}
	return n
}

// Linked reports whether consumer carries a link to producer.
func Linked(consumer Span, producer Span) bool {
	for _, l := range consumer.Links {
		if l.SpanID == producer.SpanID && l.TraceID == producer.TraceID {
			return true
		}
	}
	return false
}

// AsyncIsolated reports whether the asynchronous consumers stayed off the
// order's path. A consumer span belongs to the order when it is in the
// order's trace or links to one of the trace's producer spans; the order is
// isolated when every consumer span that belongs to it either
//
//   - is in a trace of its own (the design: a new root with a link to the
//     producer, so no consumer work can be an ancestor or descendant of the
//     order's root), or
//   - started no earlier than the root ended (same trace, but the order had
//     already answered when the consumer began).
//
// A consumer span in the order's trace that started while the root was
// still open means the order could have waited for it: not isolated. An
// order with no consumer spans at all is isolated. consumerSpans may
// contain spans of other orders and of other kinds; they are ignored.
func AsyncIsolated(order Trace, consumerSpans []Span) bool {
	producers := make(map[string]bool)
	for _, s := range order.Spans {
		if s.Kind == KindProducer {
			producers[s.SpanID] = true
		}
	}
	check := func(c Span) bool {
		if c.TraceID != order.ID {
			return true
		}
		return !c.Start.Before(order.Root.End)
	}
	for _, s := range order.Spans {
		if s.Kind == KindConsumer && !check(s) {
			return false
		}
	}
	for _, c := range consumerSpans {
		if c.Kind != KindConsumer {
			continue
		}
		belongs := c.TraceID == order.ID
		for _, l := range c.Links {
			if l.TraceID == order.ID && producers[l.SpanID] {
				belongs = true
			}
		}
		if belongs && !check(c) {
			return false
		}
	}
	return true
}

// Amplification is the distribution over order traces of the number of
// server spans a service had per order.
type Amplification struct {
	P50 int `json:"p50"`
	P99 int `json:"p99"`
	Max int `json:"max"`
}

// Summary is the trace view of one phase.
type Summary struct {
	Count          int    `json:"count"`            // order traces
	Failed         int    `json:"failed"`           // order traces whose root has error status
	SlowestTraceID string `json:"slowest_trace_id"` // "" when Count is 0
	// CriticalPath is CriticalPathNames of the slowest order trace.
	CriticalPath []string `json:"critical_path,omitempty"`
	// ErrorOrigin is the most common ErrorOrigin service among failed
	// order traces (ties: alphabetical); ErrorOrigins counts them all.
	ErrorOrigin  string         `json:"error_origin,omitempty"`
	ErrorOrigins map[string]int `json:"error_origins,omitempty"`
	// ErrorInherited is the fraction of failed order traces whose error
	// started below the root (0 when none failed).
	ErrorInherited float64 `json:"error_inherited"`
	// RetryAmplification is, per service with a server span in any order
	// trace, the distribution of its server spans per order.
	RetryAmplification map[string]Amplification `json:"retry_amplification,omitempty"`
	// AsyncIsolated holds when AsyncIsolated holds for every order trace.
	AsyncIsolated bool `json:"async_isolated"`
}

// Metrics summarizes the order traces among traces (others are ignored);
// consumerSpans are the consumer spans of the same phase (see
// AsyncIsolated).
func Metrics(traces []Trace, consumerSpans []Span) Summary {
	orders := OrderTraces(traces)
	sum := Summary{Count: len(orders), AsyncIsolated: true}
	if len(orders) == 0 {
		return sum
	}
	if slow, ok := Slowest(orders); ok {
		sum.SlowestTraceID = slow.ID
		sum.CriticalPath = CriticalPathNames(slow)
	}
	// Consumer spans indexed by the trace they link to, so that each
	// order only checks its own.
	related := make(map[string][]Span)
	for _, c := range consumerSpans {
		if c.Kind != KindConsumer {
			continue
		}
		related[c.TraceID] = append(related[c.TraceID], c)
		for _, l := range c.Links {
			if l.TraceID != c.TraceID {
				related[l.TraceID] = append(related[l.TraceID], c)
			}
		}
	}
	inherited := 0
	services := make(map[string]bool)
	for _, t := range orders {
		for _, s := range t.Spans {
			if s.Kind == KindServer {
				services[s.Service] = true
			}
		}
		if !AsyncIsolated(t, related[t.ID]) {
			sum.AsyncIsolated = false
		}
		if !t.Root.Error {
			continue
		}
		sum.Failed++
		svc, inh := ErrorOrigin(t)
		if svc != "" {
			if sum.ErrorOrigins == nil {
				sum.ErrorOrigins = make(map[string]int)
			}
			sum.ErrorOrigins[svc]++
		}
		if inh {
			inherited++
		}
	}
	if sum.Failed > 0 {
		sum.ErrorInherited = float64(inherited) / float64(sum.Failed)
	}
	best := 0
	for svc, n := range sum.ErrorOrigins {
		if n > best || (n == best && svc < sum.ErrorOrigin) {
			sum.ErrorOrigin, best = svc, n
		}
	}
	sum.RetryAmplification = make(map[string]Amplification, len(services))
	for svc := range services {
		counts := make([]int, len(orders))
		for i, t := range orders {
			counts[i] = RetryAmplification(t, svc)
		}
		slices.Sort(counts)
		sum.RetryAmplification[svc] = Amplification{
			P50: nearestRank(counts, 0.50),
			P99: nearestRank(counts, 0.99),
			Max: counts[len(counts)-1],
		}
	}
	return sum
}

// nearestRank is the q-quantile of sorted by the nearest-rank method.
func nearestRank(sorted []int, q float64) int {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Slowest returns the trace with the longest root, or false when traces is
// empty.
func Slowest(traces []Trace) (Trace, bool) {
	if len(traces) == 0 {
		return Trace{}, false
	}
	return slices.MaxFunc(traces, func(a, b Trace) int {
		return cmp.Compare(a.Duration(), b.Duration())
	}), true
}

// Failed returns the slowest trace whose root has error status, or false
// when none failed.
func Failed(traces []Trace) (Trace, bool) {
	var failed []Trace
	for _, t := range traces {
		if t.Root.Error {
			failed = append(failed, t)
		}
	}
	return Slowest(failed)
}

// JaegerTraceURL returns the Jaeger UI address of a trace.
func JaegerTraceURL(uiBase, traceID string) string {
	return strings.TrimRight(uiBase, "/") + "/trace/" + traceID
}

// OutsideServer splits a client RPC span of t around the server span that
// answered it (its child of kind server): the time before the server span
// started and after it ended, which the call spent on the wire, in queues
// and in proxies rather than being worked on. A network fault that holds
// the bytes (a latency toxic) shows here: a 353 ms client span around a
// 0.02 ms server span. Without a server child (the request never arrived)
// the whole client span is outside, as before. ok is false for spans that
// are not client spans.
func OutsideServer(t Trace, client Span) (before, after time.Duration, ok bool) {
	if client.Kind != KindClient {
		return 0, 0, false
	}
	for _, s := range t.Spans {
		if s.ParentID == client.SpanID && s.Kind == KindServer {
			before = max(0, s.Start.Sub(client.Start))
			after = max(0, client.End.Sub(s.End))
			return before, after, true
		}
	}
	return client.Duration(), 0, true
}
