package console

import (
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/waterfall"
	"github.com/fallacies/fallacies/tracing"
)

// exemplar is a trace of the moment as the report draws its exemplars
// (experiments/waterfall), with the time the faults seen on its links
// held its calls marked.
func exemplar(t tracing.Trace, windows []window, links *waterfall.Links) report.Exemplar {
	ex := report.Exemplar{Phase: "live", Kind: report.ExemplarSlowest, TraceID: t.ID, Root: tracing.ShortName(t.Root),
		DurationMs: millis(t.Duration()), Error: t.Root.Error}
	if ex.Error {
		ex.Kind = report.ExemplarFailed
	}
	ws := make([]waterfall.Window, 0, len(windows))
	for _, w := range windows {
		ws = append(ws, waterfall.Window{Name: w.Name, Target: w.Target, Start: w.Start, End: w.End})
	}
	ex.Spans = waterfall.Layout(t, links, ws)
	return ex
}
