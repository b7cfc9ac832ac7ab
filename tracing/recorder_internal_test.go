package tracing

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// script makes the same spans through any tracer provider: a server span
// with a child client span, attributes set at start and later (one key set
// twice), events, an error, a status, a rename, a link and a remote parent.
func script(tp trace.TracerProvider) {
	tr := tp.Tracer("t")
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	ctx, root := tr.Start(ctx, "root", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.method", "Place"), attribute.Int("n", 1)))
	root.SetAttributes(attribute.Int("n", 2), attribute.Bool("ok", true), attribute.StringSlice("s", []string{"a", "b"}))
	root.AddEvent("retry", trace.WithAttributes(attribute.Int("fallacies.attempt", 2)))
	root.SetStatus(codes.Error, "boom")
	root.SetStatus(codes.Unset, "ignored")
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: remote}))
	child.RecordError(errors.New("refused"))
	child.SetName("child renamed")
	child.SetStatus(codes.Ok, "")
	child.SetStatus(codes.Error, "too late")
	child.End()
	child.SetAttributes(attribute.String("after", "end"))
	root.End()
	root.End()
}

// TestRecorderMatchesSDK checks that a recorder and the SDK provider make
// the same model from the same calls (IDs and times aside).
func TestRecorderMatchesSDK(t *testing.T) {
	viaRecorder := NewCapture(0)
	script(newRecorder("order", viaRecorder, 1))

	viaSDK := NewCapture(0)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(viaSDK),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String(AttrServiceName, "order"))))
	script(tp)
	_ = tp.Shutdown(context.Background())

	got, want := viaRecorder.Spans(), viaSDK.Spans()
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("recorder made %d spans, SDK %d; want 2 each", len(got), len(want))
	}
	for i := range got {
		g, w := normalise(got[i]), normalise(want[i])
		if g.Name != w.Name || g.Kind != w.Kind || g.Service != w.Service || g.Error != w.Error || g.StatusMsg != w.StatusMsg ||
			g.TraceID != w.TraceID || !maps.Equal(g.Attrs, w.Attrs) || len(g.Events) != len(w.Events) || len(g.Links) != len(w.Links) {
			t.Errorf("span %d:\nrecorder %+v\nSDK      %+v", i, g, w)
			continue
		}
		for j := range g.Events {
			if g.Events[j].Name != w.Events[j].Name || !maps.Equal(g.Events[j].Attrs, w.Events[j].Attrs) {
				t.Errorf("span %d event %d: recorder %+v, SDK %+v", i, j, g.Events[j], w.Events[j])
			}
		}
		if g.Links != nil && g.Links[0] != w.Links[0] {
			t.Errorf("span %d link: recorder %+v, SDK %+v", i, g.Links, w.Links)
		}
	}
	child, root := got[0], got[1]
	if root.ParentID != "0405060000000000" || child.ParentID != root.SpanID {
		t.Errorf("parents: root's %q (want the remote 0405060000000000), child's %q (want root %q)", root.ParentID, child.ParentID, root.SpanID)
	}
	if child.End.Before(child.Start) || root.End.Before(child.End) {
		t.Errorf("times out of order: child %v–%v, root %v–%v", child.Start, child.End, root.Start, root.End)
	}
}

// normalise blanks what differs between two runs of script: IDs of spans
// made, times.
func normalise(s Span) Span {
	s.SpanID, s.ParentID, s.Start, s.End = "", "", time.Time{}, time.Time{}
	for i := range s.Events {
		s.Events[i].Time = time.Time{}
	}
	return s
}

// TestRecorderSamplesLikeSDK checks that a recorder picks the same traces
// as the SDK's ratio sampler, so a sampled run keeps the same orders either
// way, and that unsampled spans still carry their context.
func TestRecorderSamplesLikeSDK(t *testing.T) {
	for _, ratio := range []float64{0.1, 0.5, 1} {
		r := newRecorder("s", NewCapture(0), ratio)
		sdk := sdktrace.TraceIDRatioBased(ratio)
		for range 2000 {
			var id trace.TraceID
			for i := range id {
				id[i] = byte(rand.Uint32())
			}
			want := sdk.ShouldSample(sdktrace.SamplingParameters{TraceID: id}).Decision == sdktrace.RecordAndSample
			if got := r.sampled(id); got != want {
				t.Fatalf("ratio %v, trace %s: recorder samples %v, SDK %v", ratio, id, got, want)
			}
		}
	}
	capture := NewCapture(0)
	r := newRecorder("s", capture, 0.0000001)
	ctx, span := r.Tracer("t").Start(context.Background(), "unsampled")
	if span.IsRecording() || !span.SpanContext().IsValid() || span.SpanContext().IsSampled() {
		t.Fatalf("unsampled span: recording %v, context %+v; want a valid, unsampled, non-recording span", span.IsRecording(), span.SpanContext())
	}
	_, child := r.Tracer("t").Start(ctx, "child")
	if child.IsRecording() || child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("child of an unsampled span: recording %v, trace %s (parent's %s)", child.IsRecording(), child.SpanContext().TraceID(), span.SpanContext().TraceID())
	}
	child.End()
	span.End()
	if capture.Len() != 0 {
		t.Errorf("captured %d unsampled spans", capture.Len())
	}
	if err := r.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = newRecorder("s", capture, 1)
	_ = r.shutdown(context.Background())
	if _, s := r.Tracer("t").Start(context.Background(), "after shutdown"); s.IsRecording() {
		t.Errorf("a span started after shutdown records")
	}
}
