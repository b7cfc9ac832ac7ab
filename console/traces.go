package console

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/tracing"
)

// exemplar lays a trace out as the report's waterfall does: depth first,
// parents before children, siblings by start time; a client span whose
// link had a fault on while it ran names the fault and is marked for the
// time it spent outside its server span inside the fault's window.
func exemplar(t tracing.Trace, windows []window, linkOf func(tracing.Span) string) report.Exemplar {
	children := map[string][]tracing.Span{}
	for _, s := range t.Spans {
		if s.SpanID != t.Root.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	ex := report.Exemplar{Phase: "live", Kind: report.ExemplarSlowest, TraceID: t.ID, Root: tracing.ShortName(t.Root),
		DurationMs: millis(t.Duration()), Error: t.Root.Error}
	if ex.Error {
		ex.Kind = report.ExemplarFailed
	}
	at := func(tm time.Time) float64 { return millis(tm.Sub(t.Root.Start)) }
	var walk func(s tracing.Span, depth int)
	walk = func(s tracing.Span, depth int) {
		if len(ex.Spans) >= 200 {
			return
		}
		ws := report.WaterfallSpan{Service: s.Service, Name: tracing.ShortName(s), StartMs: at(s.Start),
			DurationMs: millis(s.Duration()), Depth: depth, Error: s.Error, Note: s.StatusMsg}
		if s.Kind == tracing.KindClient {
			link := linkOf(s)
			for _, w := range windows {
				end := w.End
				if end.IsZero() {
					end = time.Now()
				}
				if w.Target != link || !w.Start.Before(s.End) || !end.After(s.Start) {
					continue
				}
				ws.Fault = w.Name
				before, after, _ := tracing.OutsideServer(t, s)
				for _, out := range [][2]time.Time{{s.Start, s.Start.Add(before)}, {s.End.Add(-after), s.End}} {
					from, to := latest(out[0], w.Start), earliest(out[1], end)
					if to.After(from) {
						ws.Held = append(ws.Held, report.Interval{StartMs: at(from), DurationMs: millis(to.Sub(from))})
					}
				}
				break
			}
		}
		ex.Spans = append(ex.Spans, ws)
		kids := children[s.SpanID]
		slices.SortFunc(kids, func(a, b tracing.Span) int { return a.Start.Compare(b.Start) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(t.Root, 0)
	return ex
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
