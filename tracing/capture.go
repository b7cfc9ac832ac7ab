package tracing

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span kinds as they appear in Span.Kind.
const (
	KindServer   = "server"
	KindClient   = "client"
	KindProducer = "producer"
	KindConsumer = "consumer"
	KindInternal = "internal"
)

// Span is one finished span in this package's own model: plain data, no SDK
// types, safe to keep, copy and marshal. Captured spans share their maps
// with the Capture; treat them as read-only.
type Span struct {
	TraceID   string            `json:"trace_id"`            // 32 hex digits
	SpanID    string            `json:"span_id"`             // 16 hex digits
	ParentID  string            `json:"parent_id,omitempty"` // 16 hex digits; empty for a root
	Name      string            `json:"name"`
	Service   string            `json:"service"` // service.name of the resource
	Kind      string            `json:"kind"`    // KindServer, KindClient, KindProducer, KindConsumer or KindInternal
	Start     time.Time         `json:"start"`
	End       time.Time         `json:"end"`
	Error     bool              `json:"error,omitempty"` // status code Error
	StatusMsg string            `json:"status_msg,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
	Events    []Event           `json:"events,omitempty"`
	Links     []Link            `json:"links,omitempty"`
}

// Duration is End minus Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Event is a timestamped annotation on a span ("retry", "fallback", ...).
type Event struct {
	Name  string            `json:"name"`
	Time  time.Time         `json:"time"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Link points at a span in the same or another trace, as a consumer span
// points at the producer span of the message it processes.
type Link struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// DefaultCaptureLimit is the capacity of a Capture made with a limit <= 0.
const DefaultCaptureLimit = 200_000

// Capture is an in-process span sink. It is an sdktrace.SpanProcessor
// (pass it as Config.Capture, and share one Capture among the providers of
// every service in a process), and the Receiver writes into it too.
//
// It keeps at most its limit of spans; later spans are dropped and counted.
// All methods are safe for concurrent use. A span ends into it with one
// short lock and is kept as it is (the recorder's compact record, or the
// SDK's read-only span through OnEnd): the conversion into the model
// happens in Spans, off the path of the requests being traced.
type Capture struct {
	limit   int
	held    atomic.Int64 // number of entries, readable without the lock
	dropped atomic.Int64

	mu     sync.Mutex
	chunks [][]entry // each of capacity chunkSize, so that growth never copies
}

// entry is one captured span: a recorder's span (rec) or an SDK span (ro)
// not converted yet, or a span of the model (from Add).
type entry struct {
	rec *recordedSpan
	ro  sdktrace.ReadOnlySpan
	s   *Span
}

// chunkSize is the number of spans per chunk of a Capture.
const chunkSize = 1024

var _ sdktrace.SpanProcessor = (*Capture)(nil)

// NewCapture returns a Capture holding at most limit spans
// (DefaultCaptureLimit when limit <= 0).
func NewCapture(limit int) *Capture {
	if limit <= 0 {
		limit = DefaultCaptureLimit
	}
	return &Capture{limit: limit}
}

// Spans returns a copy of the captured spans, in the order they ended
// (for the Receiver: were added), converting those the SDK ended.
func (c *Capture) Spans() []Span {
	c.mu.Lock()
	chunks := make([][]entry, len(c.chunks))
	for i, ch := range c.chunks {
		chunks[i] = ch[:len(ch):len(ch)] // entries are never modified once added
	}
	n := c.held.Load()
	c.mu.Unlock()
	return convert(chunks, n)
}

// Take returns the captured spans, as Spans does, and forgets them in
// the same step, so that a reader that takes spans now and then (a live
// console) sees each span once and the capture never fills.
func (c *Capture) Take() []Span {
	c.mu.Lock()
	chunks := c.chunks
	c.chunks = nil
	n := c.held.Swap(0)
	c.mu.Unlock()
	return convert(chunks, n)
}

// From returns the spans captured from position n on, in the order they
// ended, and the position after the last of them: a reader that follows
// the capture as it fills without taking its spans (the live console of
// a run, which keeps them for its report) calls From again with that
// position. After a Reset or a Take the positions start over at 0, and a
// position beyond the spans held reads from 0 again.
func (c *Capture) From(n int) ([]Span, int) {
	c.mu.Lock()
	held := int(c.held.Load())
	if n < 0 || n > held {
		n = 0
	}
	var chunks [][]entry
	skip := n
	for _, ch := range c.chunks {
		if skip >= len(ch) {
			skip -= len(ch)
			continue
		}
		chunks = append(chunks, ch[skip:len(ch):len(ch)]) // entries are never modified once added
		skip = 0
	}
	c.mu.Unlock()
	return convert(chunks, int64(held-n)), held
}

// convert turns n entries held in chunks into spans of the model.
func convert(chunks [][]entry, n int64) []Span {
	out := make([]Span, 0, n)
	for _, ch := range chunks {
		for i := range ch {
			switch {
			case ch[i].rec != nil:
				out = append(out, ch[i].rec.model())
			case ch[i].ro != nil:
				out = append(out, fromSDK(ch[i].ro))
			default:
				out = append(out, *ch[i].s)
			}
		}
	}
	return out
}

// Len returns the number of spans held.
func (c *Capture) Len() int { return int(c.held.Load()) }

// Dropped returns how many spans were dropped because the capture was full.
func (c *Capture) Dropped() int64 { return c.dropped.Load() }

// Reset forgets every span and the dropped count (between phases, say).
func (c *Capture) Reset() {
	c.mu.Lock()
	c.chunks = nil
	c.held.Store(0)
	c.mu.Unlock()
	c.dropped.Store(0)
}

// Add appends spans, dropping and counting those beyond the limit.
func (c *Capture) Add(spans ...Span) {
	c.mu.Lock()
	held := int(c.held.Load())
	n := min(max(c.limit-held, 0), len(spans))
	batch := slices.Clone(spans[:n]) // one allocation per batch
	for i := range batch {
		c.appendLocked(entry{s: &batch[i]})
	}
	c.held.Store(int64(held + n))
	c.mu.Unlock()
	if d := len(spans) - n; d > 0 {
		c.dropped.Add(int64(d))
	}
}

// appendLocked appends one entry; c.mu is held and there is room.
func (c *Capture) appendLocked(e entry) {
	last := len(c.chunks) - 1
	if last < 0 || len(c.chunks[last]) == cap(c.chunks[last]) {
		c.chunks = append(c.chunks, make([]entry, 0, min(chunkSize, c.limit)))
		last++
	}
	c.chunks[last] = append(c.chunks[last], e)
}

// OnStart does nothing; it is part of sdktrace.SpanProcessor.
func (c *Capture) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd keeps a finished, sampled span (Spans converts it). It is part of
// sdktrace.SpanProcessor and runs on the goroutine that ends the span.
func (c *Capture) OnEnd(s sdktrace.ReadOnlySpan) { c.keep(entry{ro: s}) }

// record keeps a span a recorder ended.
func (c *Capture) record(s *recordedSpan) { c.keep(entry{rec: s}) }

// keep appends one ended span, or drops and counts it when full.
func (c *Capture) keep(e entry) {
	c.mu.Lock()
	held := c.held.Load()
	if held >= int64(c.limit) {
		c.mu.Unlock()
		c.dropped.Add(1)
		return
	}
	c.appendLocked(e)
	c.held.Store(held + 1)
	c.mu.Unlock()
}

// Shutdown does nothing: a Capture outlives the providers that feed it. It
// is part of sdktrace.SpanProcessor.
func (c *Capture) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: OnEnd is synchronous. It is part of
// sdktrace.SpanProcessor.
func (c *Capture) ForceFlush(context.Context) error { return nil }

// fromSDK converts an SDK span to the model, copying only what it needs.
func fromSDK(s sdktrace.ReadOnlySpan) Span {
	sc := s.SpanContext()
	out := Span{
		TraceID: sc.TraceID().String(),
		SpanID:  sc.SpanID().String(),
		Name:    s.Name(),
		Kind:    kindName(s.SpanKind()),
		Start:   s.StartTime(),
		End:     s.EndTime(),
	}
	if p := s.Parent(); p.SpanID().IsValid() {
		out.ParentID = p.SpanID().String()
	}
	if res := s.Resource(); res != nil {
		if v, ok := res.Set().Value(AttrServiceName); ok {
			out.Service = v.AsString()
		}
	}
	if st := s.Status(); st.Code == codes.Error {
		out.Error = true
		out.StatusMsg = st.Description
	}
	out.Attrs = sdkAttrs(s.Attributes())
	if evs := s.Events(); len(evs) > 0 {
		out.Events = make([]Event, len(evs))
		for i, e := range evs {
			out.Events[i] = Event{Name: e.Name, Time: e.Time, Attrs: sdkAttrs(e.Attributes)}
		}
	}
	if ls := s.Links(); len(ls) > 0 {
		out.Links = make([]Link, len(ls))
		for i, l := range ls {
			out.Links[i] = Link{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()}
		}
	}
	return out
}

func kindName(k trace.SpanKind) string {
	switch k {
	case trace.SpanKindServer:
		return KindServer
	case trace.SpanKindClient:
		return KindClient
	case trace.SpanKindProducer:
		return KindProducer
	case trace.SpanKindConsumer:
		return KindConsumer
	default:
		return KindInternal
	}
}

func sdkAttrs(kvs []attribute.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = attrString(kv.Value)
	}
	return m
}

// attrString renders an attribute value the way the Receiver renders the
// same value received over OTLP: scalars in their usual text form, slices
// as JSON arrays.
func attrString(v attribute.Value) string {
	switch v.Type() {
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOL:
		return strconv.FormatBool(v.AsBool())
	case attribute.INT64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case attribute.FLOAT64:
		return strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE:
		b, err := json.Marshal(v.AsInterface())
		if err != nil {
			return v.Emit()
		}
		return string(b)
	default:
		return v.Emit()
	}
}
