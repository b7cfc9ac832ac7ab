package tracing

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// A recorder is the tracer provider of a service whose spans go only to an
// in-process Capture (no OTLP export): it implements the OpenTelemetry
// tracing API and records each span straight into a compact record the
// Capture keeps, converted into the model only when Spans is called.
//
// It makes the same spans the SDK would (same names, kinds, parents, IDs
// propagated the W3C way, attributes, events, links and status, with the
// same parent-based ratio sampling), without what the SDK does for export:
// no resource and scope per span, no snapshot copied at End, no span
// processor pipeline, no attribute dedupe until conversion. Setup uses it
// when Config.Capture is set and no OTLP export is; with an exporter the SDK
// provider feeds the Capture instead (Capture.OnEnd).
type recorder struct {
	embedded.TracerProvider
	service string
	capture *Capture
	// bound is the sampling threshold of a new trace: sampled when the
	// low 63 bits of its ID's lower half are below it; 1<<63 samples all.
	bound   uint64
	stopped atomic.Bool
	tracer  *recorderTracer
}

// Limits of one recorded span, as the SDK's defaults: what is beyond them
// is dropped.
const (
	recordedAttrLimit  = 128
	recordedEventLimit = 128
	recordedLinkLimit  = 128
)

func newRecorder(service string, capture *Capture, ratio float64) *recorder {
	r := &recorder{service: service, capture: capture, bound: 1 << 63}
	if ratio < 1 {
		r.bound = uint64(ratio * (1 << 63))
	}
	r.tracer = &recorderTracer{r: r}
	return r
}

// Tracer returns the recorder's tracer; the instrumentation scope is not
// part of the model, so every name shares it.
func (r *recorder) Tracer(string, ...trace.TracerOption) trace.Tracer { return r.tracer }

// shutdown makes later spans non-recording, as the SDK's Shutdown does.
func (r *recorder) shutdown(context.Context) error {
	r.stopped.Store(true)
	return nil
}

// sampled says whether a new trace with this ID is recorded: the SDK's
// TraceIDRatioBased rule, so both providers pick the same traces.
func (r *recorder) sampled(id trace.TraceID) bool {
	return binary.BigEndian.Uint64(id[8:16])>>1 < r.bound
}

type recorderTracer struct {
	embedded.Tracer
	r *recorder
}

// Start starts a span: a child of the span in ctx (unless WithNewRoot),
// sampled as its parent was, or a new trace sampled by the ratio.
func (t *recorderTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	var parent trace.SpanContext
	if !cfg.NewRoot() {
		parent = trace.SpanContextFromContext(ctx)
	}
	scc := trace.SpanContextConfig{SpanID: newSpanID()}
	var sampled bool
	if parent.IsValid() {
		scc.TraceID, scc.TraceState, sampled = parent.TraceID(), parent.TraceState(), parent.IsSampled()
	} else {
		scc.TraceID = newTraceID()
		sampled = t.r.sampled(scc.TraceID)
	}
	if sampled {
		scc.TraceFlags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(scc)
	if !sampled || t.r.stopped.Load() {
		// A non-recording span that still carries the context downstream.
		ctx = trace.ContextWithSpanContext(ctx, sc)
		return ctx, trace.SpanFromContext(ctx)
	}
	start := cfg.Timestamp()
	if start.IsZero() {
		start = time.Now()
	}
	s := &recordedSpan{
		tracer: t,
		sc:     sc,
		kind:   cfg.SpanKind(),
		start:  start,
		name:   name,
	}
	if parent.IsValid() {
		s.parent = parent.SpanID()
	}
	if a := cfg.Attributes(); len(a) > 0 {
		// Room for the few attributes instrumentation sets before End.
		s.attrs = make([]attribute.KeyValue, 0, min(len(a)+4, recordedAttrLimit))
		s.addAttrs(a)
	}
	for _, l := range cfg.Links() {
		s.addLink(l)
	}
	return trace.ContextWithSpan(ctx, s), s
}

// recordedSpan is a live span of a recorder and, once ended, the compact
// record a Capture keeps. It is written under mu until End; after End it
// is never written again.
type recordedSpan struct {
	embedded.Span
	tracer *recorderTracer
	sc     trace.SpanContext
	parent trace.SpanID // zero for a root
	kind   trace.SpanKind
	start  time.Time

	mu        sync.Mutex
	ended     bool
	name      string
	end       time.Time
	attrs     []attribute.KeyValue // in the order set; duplicates resolved at conversion (last wins)
	events    []recordedEvent
	links     []trace.SpanContext
	status    codes.Code
	statusMsg string
}

type recordedEvent struct {
	name  string
	time  time.Time
	attrs []attribute.KeyValue
}

var _ trace.Span = (*recordedSpan)(nil)

// End records the span into the Capture; later calls do nothing. A panic
// passing through a deferred End is recorded as an "exception" event and
// goes on.
func (s *recordedSpan) End(opts ...trace.SpanEndOption) {
	end := time.Now()
	if recovered := recover(); recovered != nil {
		defer panic(recovered)
		s.addEvent(exceptionEvent, end, []attribute.KeyValue{
			attribute.String("exception.type", typeName(recovered)),
			attribute.String("exception.message", fmt.Sprint(recovered)),
		})
	}
	if len(opts) > 0 {
		if cfg := trace.NewSpanEndConfig(opts...); !cfg.Timestamp().IsZero() {
			end = cfg.Timestamp()
		}
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, end
	s.mu.Unlock()
	s.tracer.r.capture.record(s)
}

// exceptionEvent is the name of the event RecordError and a recorded panic
// add, as OpenTelemetry's semantic conventions name it.
const exceptionEvent = "exception"

// AddEvent adds an event (dropped beyond the limit).
func (s *recordedSpan) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	s.addEvent(name, cfg.Timestamp(), cfg.Attributes())
}

func (s *recordedSpan) addEvent(name string, at time.Time, attrs []attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || len(s.events) >= recordedEventLimit {
		return
	}
	s.events = append(s.events, recordedEvent{name: name, time: at, attrs: clipAttrs(attrs)})
}

// clipAttrs returns a copy of at most recordedAttrLimit attributes, nil
// for none.
func clipAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	return append([]attribute.KeyValue(nil), attrs[:min(len(attrs), recordedAttrLimit)]...)
}

// AddLink links the span to another (an invalid context is ignored).
func (s *recordedSpan) AddLink(l trace.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addLink(l)
	}
}

// addLink appends a link; s.mu is held or s not shared yet.
func (s *recordedSpan) addLink(l trace.Link) {
	if l.SpanContext.IsValid() && len(s.links) < recordedLinkLimit {
		s.links = append(s.links, l.SpanContext)
	}
}

// IsRecording reports whether the span still records (it has not ended).
func (s *recordedSpan) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

// RecordError adds an "exception" event with the error's type and message
// (it does not set the status, as in the SDK).
func (s *recordedSpan) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	cfg := trace.NewEventConfig(opts...)
	attrs := append(clipAttrs(cfg.Attributes()),
		attribute.String("exception.type", typeName(err)),
		attribute.String("exception.message", err.Error()))
	if cfg.StackTrace() {
		attrs = append(attrs, attribute.String("exception.stacktrace", string(debug.Stack())))
	}
	s.addEvent(exceptionEvent, cfg.Timestamp(), attrs)
}

// typeName names the type of v with its package path, e.g.
// "github.com/x/y.ErrThing", or as Go writes it for unnamed types.
func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t.Name() == "" || t.PkgPath() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// SpanContext returns the span's context.
func (s *recordedSpan) SpanContext() trace.SpanContext { return s.sc }

// SetStatus sets the status; Ok is final, an Error's description is kept,
// Unset changes nothing, as in the SDK.
func (s *recordedSpan) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status > code {
		return
	}
	s.status, s.statusMsg = code, ""
	if code == codes.Error {
		s.statusMsg = description
	}
}

// SetName renames the span.
func (s *recordedSpan) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

// SetAttributes sets attributes (a key set again takes its last value).
func (s *recordedSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addAttrs(kv)
	}
}

// addAttrs appends valid attributes up to the limit; s.mu is held or s not
// shared yet.
func (s *recordedSpan) addAttrs(kv []attribute.KeyValue) {
	for _, a := range kv {
		if len(s.attrs) >= recordedAttrLimit {
			return
		}
		if a.Valid() {
			s.attrs = append(s.attrs, a)
		}
	}
}

// TracerProvider returns the recorder that made the span.
func (s *recordedSpan) TracerProvider() trace.TracerProvider { return s.tracer.r }

// model converts an ended span into the model. It reads fields End no
// longer writes, after the Capture's lock ordered it after End.
func (s *recordedSpan) model() Span {
	out := Span{
		TraceID: s.sc.TraceID().String(),
		SpanID:  s.sc.SpanID().String(),
		Name:    s.name,
		Service: s.tracer.r.service,
		Kind:    kindName(s.kind),
		Start:   s.start,
		End:     s.end,
		Attrs:   sdkAttrs(s.attrs),
	}
	if s.parent.IsValid() {
		out.ParentID = s.parent.String()
	}
	if s.status == codes.Error {
		out.Error, out.StatusMsg = true, s.statusMsg
	}
	if len(s.events) > 0 {
		out.Events = make([]Event, len(s.events))
		for i, e := range s.events {
			out.Events[i] = Event{Name: e.name, Time: e.time, Attrs: sdkAttrs(e.attrs)}
		}
	}
	if len(s.links) > 0 {
		out.Links = make([]Link, len(s.links))
		for i, l := range s.links {
			out.Links[i] = Link{TraceID: l.TraceID().String(), SpanID: l.SpanID().String()}
		}
	}
	return out
}

// newTraceID and newSpanID draw random non-zero IDs.
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
