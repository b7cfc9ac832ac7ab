package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

//go:embed report.html.tmpl
var htmlTemplate string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   fmtPct,
	"ms":    fmtMs,
	"sec":   fmtSec,
	"num":   fmtNum,
	"codes": func(m map[string]int64) string { return fmtCodes(m, 3) },
	"attrs": fmtAttrs,
	"dash":  dash,
	"status": func(h Hypothesis) string {
		return status(h)
	},
	"lower": strings.ToLower,
	"title": hypothesisTitle,
}).Parse(htmlTemplate))

// HTML writes r as one self-contained HTML page: a verdict banner, the
// variants side by side, charts over time (latency p50/p99, success rate,
// requests, breaker states) with fault windows shaded, and tables of
// hypotheses, phases, faults, consistency, metrics and exemplar trace
// waterfalls. The page loads nothing: styles are inline, charts are inline
// SVG, and it needs no JavaScript. The only links leaving it are to a Jaeger
// UI when one is configured.
func HTML(w io.Writer, r *Report) error {
	if err := pageTemplate.Execute(w, buildView(Normalize(r))); err != nil {
		return fmt.Errorf("render html report %s: %w", r.Experiment, err)
	}
	return nil
}

// htmlView is everything the page template shows, prepared.
type htmlView struct {
	R           *Report
	Verdict     string
	VerdictLine string
	ExitCode    int
	Counts      Counts
	Started     string
	Faults      []faultRow
	// FaultsByVariant is set when the variants ran their faults
	// differently: the table then names each row's variant.
	FaultsByVariant bool
	Variants        []variantView
	Charts          []chartRow
	Hypotheses      []hypothesisRow
	Consistency     []consistencyRow
	Metrics         []metricRow
	NoMechanism     string
}

type variantView struct {
	Name    string
	Status  string // PASS, FAIL, INCONCLUSIVE, ERROR
	Error   string
	Stopped *Stop
	// LateRemoval notes an after phase that began late (Variant.LateRemoval).
	LateRemoval *LateRemoval
	// Removals says which faults did not come off (removalNotes).
	Removals  []string
	Knobs     []Knob
	Counts    Counts
	Before    Phase
	During    Phase
	After     Phase
	Phases    []phaseRow
	Exemplars []exemplarView
	Breakers  []BreakerTransition
	// Mechanisms says what each resilience mechanism did; empty with
	// MechanismsKnown means none acted.
	Mechanisms      []string
	MechanismsKnown bool
}

type phaseRow struct {
	Op    string
	Phase string
	P     Phase
}

type exemplarView struct {
	E   Exemplar
	SVG template.HTML
}

type chartRow struct {
	ID    string
	Title string
	Note  string
	Cells []chartCell
}

type chartCell struct {
	Variant string
	Status  string
	SVG     template.HTML
}

type hypothesisRow struct {
	H      Hypothesis
	Status string
}

type consistencyRow struct {
	First bool // first row of its group
	Group string
	Label string
	Cells []consistencyCell
}

type consistencyCell struct {
	N   int
	Bad bool
}

type metricRow struct {
	Name   string
	Values []string
}

func buildView(r *Report) htmlView {
	view := htmlView{
		R:           r,
		Verdict:     r.Verdict(),
		VerdictLine: verdictLine(r),
		ExitCode:    r.ExitCode(),
		Counts:      r.Count(),
		Faults:      reportFaults(r),
		NoMechanism: noMechanism,
	}
	view.FaultsByVariant = len(view.Faults) > 0 && view.Faults[0].Variant != ""
	if !r.StartedAt.IsZero() {
		view.Started = r.StartedAt.Format("2006-01-02 15:04:05 MST")
	}
	for i, v := range r.Variants {
		vv := variantView{
			Name: v.Name, Status: variantVerdict(r, v), Error: v.Error, Stopped: v.Stopped, LateRemoval: v.LateRemoval, Knobs: v.Knobs,
			Before: v.Phases[PhaseBefore], During: v.Phases[PhaseDuring], After: v.Phases[PhaseAfter],
			Breakers: v.Breakers,
		}
		vv.Removals = removalNotes(v)
		vv.MechanismsKnown = mechanismsKnown(v)
		for _, m := range v.Mechanisms {
			vv.Mechanisms = append(vv.Mechanisms, fmtMechanism(m))
		}
		one := Report{Variants: []Variant{v}}
		vv.Counts = one.Count()
		for _, ph := range phaseOrder(v.Phases) {
			vv.Phases = append(vv.Phases, phaseRow{Op: "place_order", Phase: ph, P: v.Phases[ph]})
		}
		for _, op := range sortedKeys(v.Ops) {
			for _, ph := range phaseOrder(v.Ops[op]) {
				vv.Phases = append(vv.Phases, phaseRow{Op: op, Phase: ph, P: v.Ops[op][ph]})
			}
		}
		for j, e := range v.Exemplars {
			vv.Exemplars = append(vv.Exemplars, exemplarView{E: e, SVG: waterfall(fmt.Sprintf("v%d-x%d", i, j), e)})
		}
		view.Variants = append(view.Variants, vv)
		for _, h := range v.Hypotheses {
			if h.Variant == "" {
				h.Variant = v.Name
			}
			view.Hypotheses = append(view.Hypotheses, hypothesisRow{H: h, Status: status(h)})
		}
	}
	view.Charts = buildCharts(r)
	view.Consistency = buildConsistency(r)
	view.Metrics = buildMetrics(r)
	return view
}

func buildCharts(r *Report) []chartRow {
	d := domainOf(r)
	lat, req := latencyScale(r), requestsScale(r)
	rows := []chartRow{
		{ID: "latency", Title: "Latency per second", Note: "p50 and p99 of place_order, timed from the intended send time; the same scale for every variant."},
		{ID: "success", Title: "Success rate per second", Note: "share of place_order requests answered OK."},
		{ID: "requests", Title: "Requests per second", Note: "answered OK, failed, and dropped because the load generator was saturated."},
	}
	links := breakerLinksOf(r)
	if len(links) > 0 {
		rows = append(rows, chartRow{ID: "breakers", Title: "Circuit breakers", Note: "state of each breaker over time: closed lets calls through, open fails them fast, half-open lets a probe through."})
	}
	consumers := consumerNames(r)
	firstConsumer := len(rows)
	for _, name := range consumers {
		rows = append(rows, chartRow{ID: "consumer-" + name, Title: "Consumer " + name + ": published, applied, behind",
			Note: "orders.created events published per second against the events " + name + " applied; the shaded area is how many events it was behind at the end of each second, the dashed line how long the oldest of them had waited (right-hand scale). A consumer that keeps up during a fault shows the asynchronous path does not inherit it."})
	}
	for i, v := range r.Variants {
		st := variantVerdict(r, v)
		for j, name := range consumers {
			ev, lag := consumerScales(r, name)
			rows[firstConsumer+j].Cells = append(rows[firstConsumer+j].Cells, chartCell{v.Name, st, consumerChart(fmt.Sprintf("v%d-c%d", i, j), v, name, d, ev, lag)})
		}
		rows[0].Cells = append(rows[0].Cells, chartCell{v.Name, st, latencyChart(fmt.Sprintf("v%d-lat", i), v, d, lat)})
		rows[1].Cells = append(rows[1].Cells, chartCell{v.Name, st, successChart(fmt.Sprintf("v%d-ok", i), v, d)})
		rows[2].Cells = append(rows[2].Cells, chartCell{v.Name, st, requestsChart(fmt.Sprintf("v%d-req", i), v, d, req)})
		if len(links) > 0 {
			rows[3].Cells = append(rows[3].Cells, chartCell{v.Name, st, breakerChart(fmt.Sprintf("v%d-br", i), v, d, links)})
		}
	}
	return rows
}

func buildConsistency(r *Report) []consistencyRow {
	var rows []consistencyRow
	add := func(group, label string, bad bool, get func(Consistency) int) {
		row := consistencyRow{Group: group, Label: label, First: len(rows) == 0 || rows[len(rows)-1].Group != group}
		for _, v := range r.Variants {
			n := get(v.Consistency)
			row.Cells = append(row.Cells, consistencyCell{N: n, Bad: bad && n != 0})
		}
		rows = append(rows, row)
	}
	add("orders", "acknowledged", false, func(c Consistency) int { return c.Acknowledged })
	add("orders", "lost", true, func(c Consistency) int { return c.Lost })
	add("orders", "duplicated", true, func(c Consistency) int { return c.Duplicated })
	add("orders", "ghost", true, func(c Consistency) int { return c.Ghost })
	add("orders", "recovered", false, func(c Consistency) int { return c.Recovered })
	add("orders", "unexpected", true, func(c Consistency) int { return c.Unexpected })
	var consumers []string
	for _, v := range r.Variants {
		for _, name := range sortedKeys(v.Consistency.Consumers) {
			if !slices.Contains(consumers, name) {
				consumers = append(consumers, name)
			}
		}
	}
	for _, name := range consumers {
		add(name, "applied", false, func(c Consistency) int { return c.Consumers[name].Applied })
		add(name, "lost", true, func(c Consistency) int { return c.Consumers[name].Lost })
		add(name, "duplicated", true, func(c Consistency) int { return c.Consumers[name].Duplicated })
		add(name, "unexpected", true, func(c Consistency) int { return c.Consumers[name].Unexpected })
	}
	add("payments", "lost", true, func(c Consistency) int { return c.Payments.Lost })
	add("payments", "duplicated", true, func(c Consistency) int { return c.Payments.Duplicated })
	add("payments", "ghost", true, func(c Consistency) int { return c.Payments.Ghost })
	return rows
}

func buildMetrics(r *Report) []metricRow {
	var names []string
	for _, v := range r.Variants {
		for _, k := range sortedKeys(v.Metrics) {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	rows := make([]metricRow, 0, len(names))
	for _, n := range names {
		row := metricRow{Name: n}
		for _, v := range r.Variants {
			x, ok := v.Metrics[n]
			if ok {
				row.Values = append(row.Values, fmtNum(x))
			} else {
				row.Values = append(row.Values, "–")
			}
		}
		rows = append(rows, row)
	}
	return rows
}
