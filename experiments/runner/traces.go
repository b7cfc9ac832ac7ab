package runner

import (
	"compress/gzip"
	"io"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/waterfall"
	"github.com/fallacies/fallacies/tracing"
)

// traceSet is what one variant captured, split by phase.
type traceSet struct {
	all       []tracing.Trace            // every trace, for traces.json
	orders    map[string][]tracing.Trace // order traces by phase (and "always")
	consumers map[string][]tracing.Span  // consumer spans by phase of their producer's order
}

// splitTraces groups the captured spans into traces and sorts the order
// traces into phases by when their root started (phases: the run's
// phases as they happened).
func splitTraces(spans []tracing.Span, phases *phaseClock) traceSet {
	ts := traceSet{all: tracing.Group(spans), orders: map[string][]tracing.Trace{}, consumers: map[string][]tracing.Span{}}
	phaseOf := phases.atTime
	producerPhase := map[string]string{} // producer span id → phase
	for _, t := range tracing.OrderTraces(ts.all) {
		p := phaseOf(t.Root.Start)
		ts.orders[p] = append(ts.orders[p], t)
		ts.orders[string(definition.Always)] = append(ts.orders[string(definition.Always)], t)
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
		ts.consumers[string(definition.Always)] = append(ts.consumers[string(definition.Always)], s)
	}
	return ts
}

// exemplars picks the slowest and the slowest failed order trace of each
// phase and draws them as waterfalls (experiments/waterfall), marking in
// them the time the faults' windows on links held calls (none: nil).
func exemplars(ts traceSet, jaegerUI string, links *waterfall.Links, windows []waterfall.Window) []report.Exemplar {
	var out []report.Exemplar
	for _, phase := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter} {
		traces := ts.orders[phase]
		if t, ok := tracing.Slowest(traces); ok {
			out = append(out, exemplar(t, phase, report.ExemplarSlowest, jaegerUI, links, windows))
		}
		if t, ok := tracing.Failed(traces); ok {
			out = append(out, exemplar(t, phase, report.ExemplarFailed, jaegerUI, links, windows))
		}
	}
	return out
}

func exemplar(t tracing.Trace, phase, kind, jaegerUI string, links *waterfall.Links, windows []waterfall.Window) report.Exemplar {
	ex := report.Exemplar{
		Phase: phase, Kind: kind, TraceID: t.ID, Root: tracing.ShortName(t.Root),
		DurationMs: ms(t.Duration()), Error: t.Root.Error, Spans: waterfall.Layout(t, links, windows),
	}
	if jaegerUI != "" {
		ex.JaegerURL = tracing.JaegerTraceURL(jaegerUI, t.ID)
	}
	return ex
}

// Trace files a report folder holds.
const (
	// FileTraces holds, per variant, the exemplar order traces and the
	// consumer traces linked to them: what the waterfalls and the trace
	// hypotheses were read from, small enough to keep with every report
	// and to drop into Jaeger UI as it is.
	FileTraces = "traces.json"
	// FileFullTraces holds every trace of the run, gzip-compressed; written
	// only when Options.FullTraces asks for it.
	FileFullTraces = "traces-full.json.gz"
)

// writeTraces writes traces.json: per variant its exemplar order traces
// (the slowest and the slowest failed of each phase: the traces the
// critical-path hypotheses read) and the consumer traces linked to them
// (what trace.async_isolated compares), in Jaeger's JSON format.
func writeTraces(w io.Writer, sets []traceSet) error {
	var out []tracing.Trace
	for _, s := range sets {
		out = append(out, exemplarTraces(s)...)
	}
	return tracing.WriteJaegerJSON(w, out)
}

// writeFullTraces writes every trace of every variant, in Jaeger's JSON
// format, gzip-compressed (the JSON of a 30-second run is tens of
// megabytes; compressed, a tenth of that).
func writeFullTraces(w io.Writer, sets []traceSet) error {
	zw := gzip.NewWriter(w)
	var out []tracing.Trace
	for _, s := range sets {
		out = append(out, s.all...)
	}
	if err := tracing.WriteJaegerJSON(zw, out); err != nil {
		return err
	}
	return zw.Close()
}

// exemplarTraces returns the exemplar order traces of s and the consumer
// traces that link to their producer spans.
func exemplarTraces(s traceSet) []tracing.Trace {
	orders := s.orders[string(definition.Always)]
	picked := map[string]bool{}
	var out []tracing.Trace
	for _, ex := range exemplars(s, "", nil, nil) {
		for _, t := range orders {
			if t.ID == ex.TraceID && !picked[t.ID] {
				picked[t.ID] = true
				out = append(out, t)
			}
		}
	}
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
func TraceHypotheses(exp *definition.Experiment) []string {
	var out []string
	for _, h := range exp.Hypotheses {
		if h.Expr == nil {
			continue
		}
		for _, name := range h.Expr.Metrics() {
			_, bare := check.SplitPhase(name)
			if info, ok := metrics.Lookup(bare); ok && info.Traces {
				out = append(out, h.Name)
				break
			}
		}
	}
	return out
}

// faultWindows are the faults of a report as the windows a waterfall
// marks.
func faultWindows(fs []report.Fault) []waterfall.Window {
	out := make([]waterfall.Window, 0, len(fs))
	for _, f := range fs {
		out = append(out, waterfall.Window{Name: f.Name, Target: f.Target, Start: f.Start, End: f.End})
	}
	return out
}
