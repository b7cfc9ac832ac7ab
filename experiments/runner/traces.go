package runner

import (
	"cmp"
	"io"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/spec"
	"github.com/fallacies/fallacies/tracing"
)

// traceSet is what one variant captured, split by phase.
type traceSet struct {
	all       []tracing.Trace            // every trace, for traces.json
	orders    map[string][]tracing.Trace // order traces by phase (and "always")
	consumers map[string][]tracing.Span  // consumer spans by phase of their producer's order
}

// splitTraces groups the captured spans into traces and sorts the order
// traces into phases by when their root started, relative to start.
func splitTraces(spans []tracing.Span, exp *spec.Experiment, start time.Time) traceSet {
	ts := traceSet{all: tracing.Group(spans), orders: map[string][]tracing.Trace{}, consumers: map[string][]tracing.Span{}}
	phaseOf := func(t time.Time) string { return phaseAt(exp, t.Sub(start)) }
	producerPhase := map[string]string{} // producer span id → phase
	for _, t := range tracing.OrderTraces(ts.all) {
		p := phaseOf(t.Root.Start)
		ts.orders[p] = append(ts.orders[p], t)
		ts.orders[string(spec.Always)] = append(ts.orders[string(spec.Always)], t)
		for _, s := range t.Spans {
			if s.Kind == tracing.KindProducer {
				producerPhase[s.SpanID] = p
			}
		}
	}
	for _, s := range tracing.ConsumerSpans(spans) {
		p := phaseOf(s.Start)
		for _, l := range s.Links {
			if lp, ok := producerPhase[l.SpanID]; ok {
				p = lp
			}
		}
		ts.consumers[p] = append(ts.consumers[p], s)
		ts.consumers[string(spec.Always)] = append(ts.consumers[string(spec.Always)], s)
	}
	return ts
}

// phaseAt names the phase an offset of the run falls in.
func phaseAt(exp *spec.Experiment, off time.Duration) string {
	ph := exp.Phases()
	switch {
	case off < ph.Before.End:
		return string(spec.Before)
	case off < ph.During.End:
		return string(spec.During)
	}
	return string(spec.After)
}

// exemplars picks the slowest and the slowest failed order trace of each
// phase and draws them as waterfalls.
func exemplars(ts traceSet, jaegerUI string) []report.Exemplar {
	var out []report.Exemplar
	for _, phase := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter} {
		traces := ts.orders[phase]
		if t, ok := tracing.Slowest(traces); ok {
			out = append(out, exemplar(t, phase, report.ExemplarSlowest, jaegerUI))
		}
		if t, ok := tracing.Failed(traces); ok {
			out = append(out, exemplar(t, phase, report.ExemplarFailed, jaegerUI))
		}
	}
	return out
}

func exemplar(t tracing.Trace, phase, kind, jaegerUI string) report.Exemplar {
	ex := report.Exemplar{
		Phase: phase, Kind: kind, TraceID: t.ID, Root: tracing.ShortName(t.Root),
		DurationMs: ms(t.Duration()), Error: t.Root.Error, Spans: waterfall(t),
	}
	if jaegerUI != "" {
		ex.JaegerURL = tracing.JaegerTraceURL(jaegerUI, t.ID)
	}
	return ex
}

// waterfall lays a trace out depth first, parents before children,
// siblings by start time, offsets from the root's start.
func waterfall(t tracing.Trace) []report.WaterfallSpan {
	children := map[string][]tracing.Span{}
	for _, s := range t.Spans {
		if s.SpanID != t.Root.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	var out []report.WaterfallSpan
	var walk func(s tracing.Span, depth int)
	walk = func(s tracing.Span, depth int) {
		if len(out) >= 200 {
			return
		}
		note := s.StatusMsg
		for _, e := range s.Events {
			switch e.Name {
			case "retry", "fallback", "breaker.rejected", "bulkhead.rejected":
				if note != "" {
					note += "; "
				}
				note += e.Name
			}
		}
		out = append(out, report.WaterfallSpan{
			Service: s.Service, Name: tracing.ShortName(s), StartMs: ms(s.Start.Sub(t.Root.Start)),
			DurationMs: ms(s.Duration()), Depth: depth, Error: s.Error, Note: note,
		})
		kids := children[s.SpanID]
		slices.SortFunc(kids, func(a, b tracing.Span) int { return a.Start.Compare(b.Start) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(t.Root, 0)
	return out
}

// tracesPerVariant bounds the order traces of one variant in traces.json.
const tracesPerVariant = 300

// writeTraces writes traces.json: per variant a sample of at most
// tracesPerVariant order traces (every exemplar, then failed ones, the
// slowest, and an even spread over the run) with the consumer traces
// linked to them. A whole run's traces would be tens of megabytes, too
// much for Jaeger UI's file upload.
func writeTraces(w io.Writer, sets []traceSet) error {
	var out []tracing.Trace
	for _, s := range sets {
		out = append(out, sampleTraces(s, tracesPerVariant)...)
	}
	return tracing.WriteJaegerJSON(w, out)
}

func sampleTraces(s traceSet, limit int) []tracing.Trace {
	orders := s.orders[string(spec.Always)]
	picked := map[string]bool{}
	var out []tracing.Trace
	take := func(t tracing.Trace) {
		if !picked[t.ID] && len(out) < limit {
			picked[t.ID] = true
			out = append(out, t)
		}
	}
	for _, ex := range exemplars(s, "") {
		for _, t := range orders {
			if t.ID == ex.TraceID {
				take(t)
			}
		}
	}
	var failed []tracing.Trace
	for _, t := range orders {
		if t.Root.Error {
			failed = append(failed, t)
		}
	}
	for _, t := range failed[:min(len(failed), limit/3)] {
		take(t)
	}
	bySlowest := slices.Clone(orders)
	slices.SortFunc(bySlowest, func(a, b tracing.Trace) int { return cmp.Compare(b.Duration(), a.Duration()) })
	for _, t := range bySlowest[:min(len(bySlowest), limit/3)] {
		take(t)
	}
	if n := len(orders); n > 0 {
		step := max(1, n/max(1, limit-len(out)))
		for i := 0; i < n; i += step {
			take(orders[i])
		}
	}
	// The consumer traces that link to a picked order's producer span.
	producers := map[string]bool{}
	for _, t := range out {
		for _, sp := range t.Spans {
			if sp.Kind == tracing.KindProducer {
				producers[sp.SpanID] = true
			}
		}
	}
	for _, t := range s.all {
		if picked[t.ID] {
			continue
		}
		for _, l := range t.Root.Links {
			if producers[l.SpanID] {
				picked[t.ID] = true
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TraceHypotheses returns the hypotheses of exp that read a metric
// computed from traces (check.MetricInfo.Traces), by name. A run that
// captures no spans (a --target run: the system sends them elsewhere)
// fails each of them with "no value".
func TraceHypotheses(exp *spec.Experiment) []string {
	var out []string
	for _, h := range exp.Hypotheses {
		if h.Expr == nil {
			continue
		}
		for _, name := range h.Expr.Metrics() {
			_, bare := check.SplitPhase(name)
			if info, ok := check.LookupMetric(bare); ok && info.Traces {
				out = append(out, h.Name)
				break
			}
		}
	}
	return out
}
