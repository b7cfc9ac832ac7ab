package explore

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fallacies/fallacies/faults"
)

// Report files of a search's output folder.
const (
	FileJSON       = "explore.json"
	FileHTML       = "explore.html"
	FolderFindings = "findings"
)

// WriteReport writes explore.json and explore.html into dir.
func WriteReport(dir string, res *Result) error {
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FileJSON), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := page.Execute(&b, view(res)); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileHTML), b.Bytes(), 0o644)
}

// cell is the outcome of one edge × kind: the worst of its scenarios.
type cell struct {
	Outcome string // failed, effect, tolerated, unjudged, skipped, ""
	Title   string
}

// rank orders outcomes from worst to best, for colouring an edge.
func rank(outcome string) int {
	switch outcome {
	case Failed:
		return 5
	case Unjudged:
		return 4
	case "effect":
		return 3
	case Tolerated:
		return 2
	case "skipped":
		return 1
	}
	return 0
}

type graphNode struct {
	Name string
	X, Y float64
}

type graphEdge struct {
	Name, Outcome, Title string
	Path                 string
	LX, LY               float64
}

type pageView struct {
	*Result
	Kinds     []string
	Rows      []matrixRow
	Nodes     []graphNode
	Lines     []graphEdge
	Unused    []string
	Width     int
	Height    int
	Reduction string
}

type matrixRow struct {
	Edge    string
	Lineage string
	Calls   string
	Cells   []cell
}

// view computes what the page draws from a result.
func view(res *Result) pageView {
	v := pageView{Result: res}
	cells := map[[2]string]cell{}
	edgeOutcome := map[string]string{}
	note := func(edge, kind, outcome, title string) {
		k := [2]string{edge, kind}
		if rank(outcome) > rank(cells[k].Outcome) {
			cells[k] = cell{outcome, title}
		}
		if rank(outcome) > rank(edgeOutcome[edge]) {
			edgeOutcome[edge] = outcome
		}
	}
	kinds := map[string]bool{}
	for _, c := range res.Candidates {
		kinds[string(c.Kind)] = true
		note(c.Edge, string(c.Kind), "skipped", c.ID+": not run alone")
	}
	for _, r := range res.Scenarios {
		for _, f := range r.Faults {
			o := r.Outcome
			if o == Tolerated && r.Effect != "" {
				o = "effect"
			}
			title := r.ID + ": " + r.Outcome
			if r.Effect != "" {
				title += " (" + r.Effect + ")"
			}
			for _, fc := range r.Failed {
				title += "; failed " + fc.Name + ": " + fc.Observed
			}
			if len(r.Faults) > 1 && o != Failed { // a pair colours only by what it broke
				continue
			}
			note(f.Edge, string(f.Kind), o, title)
		}
	}
	for _, spec := range faults.Specs() { // registry order
		if kinds[string(spec.Kind)] {
			v.Kinds = append(v.Kinds, string(spec.Kind))
		}
	}
	if res.Graph != nil {
		for _, e := range res.Graph.Edges {
			row := matrixRow{Edge: e.Name, Lineage: fmt.Sprintf("%.0f%%", 100*e.Lineage)}
			var calls []string
			for _, c := range e.Calls {
				calls = append(calls, fmt.Sprintf("%s %s ×%d (in %d successes)", c.Type, c.Name, c.Count, c.InSuccess))
			}
			row.Calls = strings.Join(calls, "\n")
			for _, k := range v.Kinds {
				row.Cells = append(row.Cells, cells[[2]string{e.Name, k}])
			}
			v.Rows = append(v.Rows, row)
		}
		v.layout(edgeOutcome)
	}
	if res.Counts.Planned > 0 {
		v.Reduction = fmt.Sprintf("%.1f×", float64(res.Counts.Enumerated)/float64(res.Counts.Planned))
	}
	return v
}

// layout places the services in columns by their distance from the
// services nothing calls, and draws each used edge between them.
func (v *pageView) layout(outcome map[string]string) {
	g := v.Graph
	col := map[string]int{}
	targets := map[string]bool{}
	for _, e := range g.Edges {
		if e.From != "" {
			targets[e.To] = true
		}
	}
	var queue []string
	for _, e := range g.Edges {
		if e.From != "" && !targets[e.From] {
			if _, ok := col[e.From]; !ok {
				col[e.From] = 0
				queue = append(queue, e.From)
			}
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range g.Edges {
			if e.From == n {
				if _, ok := col[e.To]; !ok {
					col[e.To] = col[n] + 1
					queue = append(queue, e.To)
				}
			}
		}
	}
	for _, e := range g.Edges { // cycles without a root
		for _, n := range []string{e.From, e.To} {
			if _, ok := col[n]; !ok && n != "" {
				col[n] = 0
			}
		}
	}
	byCol := map[int][]string{}
	maxCol, maxRow := 0, 0
	for n, c := range col {
		byCol[c] = append(byCol[c], n)
		maxCol = max(maxCol, c)
	}
	pos := map[string][2]float64{}
	for c, ns := range byCol {
		slices.Sort(ns)
		maxRow = max(maxRow, len(ns))
		for i, n := range ns {
			pos[n] = [2]float64{80 + 220*float64(c), 60 + 110*float64(i)}
			v.Nodes = append(v.Nodes, graphNode{Name: n, X: pos[n][0], Y: pos[n][1]})
		}
	}
	slices.SortFunc(v.Nodes, func(a, b graphNode) int { return cmp.Compare(a.Name, b.Name) })
	v.Width, v.Height = 160+220*maxCol, 40+110*maxRow
	pairs := map[[2]string]int{}
	for _, e := range g.Edges {
		if e.From == "" {
			v.Unused = append(v.Unused, e.Name)
			continue
		}
		a, b := pos[e.From], pos[e.To]
		k := [2]string{e.From, e.To}
		off := float64(pairs[k]) * 28
		pairs[k]++
		mx, my := (a[0]+b[0])/2, (a[1]+b[1])/2
		dx, dy := b[0]-a[0], b[1]-a[1]
		l := math.Hypot(dx, dy)
		if l == 0 {
			l = 1
		}
		cx, cy := mx-dy/l*(10+off), my+dx/l*(10+off)
		o := outcome[e.Name]
		title := fmt.Sprintf("%s: %s → %s, in %.0f%% of successful orders", e.Name, e.From, e.To, 100*e.Lineage)
		v.Lines = append(v.Lines, graphEdge{Name: e.Name, Outcome: o, Title: title,
			Path: fmt.Sprintf("M%.0f %.0f Q%.0f %.0f %.0f %.0f", a[0], a[1], cx, cy, b[0], b[1]), LX: cx, LY: cy})
	}
}

var page = template.Must(template.New("explore").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fallacies explore</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}
th.k{writing-mode:vertical-rl;transform:rotate(180deg)}
.failed{background:#e74c3c;color:#fff} .unjudged{background:#9b59b6;color:#fff} .effect{background:#f5b041}
.tolerated{background:#58d68d} .skipped{background:#eee}
svg text{font-size:12px} .legend span{padding:2px 8px;margin-right:6px}
path.failed{stroke:#e74c3c;fill:none} path.unjudged{stroke:#9b59b6;fill:none} path.effect{stroke:#f5b041;fill:none}
path.tolerated{stroke:#27ae60;fill:none} path.skipped,path.{stroke:#aaa;fill:none}
code{font-size:12px}
</style></head><body>
<h1>fallacies explore</h1>
<p>seed {{.Seed}} · budget {{.Budget}} · max faults {{.MaxFaults}} · variant <b>{{.Variant}}</b>{{range .Knobs}} · {{.Name}}={{.Value}}{{end}}{{if .From}} · from <code>{{.From}}</code>{{end}} · took {{printf "%.0f" .Seconds}} s{{if .Stopped}} · stopped: {{.Stopped}}{{end}}</p>
<p class="legend"><span class="failed">a hypothesis failed</span><span class="effect">tolerated, with an effect</span><span class="tolerated">tolerated</span><span class="unjudged">not judged</span><span class="skipped">pruned or not reached</span></p>
<h2>Findings ({{len .Findings}})</h2>
{{if .Findings}}<ul>{{range .Findings}}<li><a href="{{.File}}">{{.File}}</a> — {{range .Failed}}<b>{{.Name}}</b> ({{.Phase}}: <code>{{.Check}}</code>) observed {{.Observed}}; {{end}}{{if .Confirmed}}replayed: failed again{{else}}<b>replay did not fail again</b>{{end}} · from {{.From}} in {{.Runs}} shrink runs · written {{printf "%.0f" .At}} s into the search</li>{{end}}</ul>{{else}}<p>None: every scenario run was tolerated.</p>{{end}}
<h2>Dependency graph</h2>
{{with .Graph}}<p>{{.Successes}} of {{.Orders}} orders succeeded in the baseline. Each edge is a proxy, coloured by the worst its faults did.</p>{{end}}
<svg width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" xmlns="http://www.w3.org/2000/svg">
{{range .Lines}}<path d="{{.Path}}" class="{{.Outcome}}" stroke-width="4"><title>{{.Title}}</title></path><text x="{{.LX}}" y="{{.LY}}" text-anchor="middle">{{.Name}}</text>
{{end}}{{range .Nodes}}<circle cx="{{.X}}" cy="{{.Y}}" r="26" fill="#fff" stroke="#333"/><text x="{{.X}}" y="{{.Y}}" dy="4" text-anchor="middle">{{.Name}}</text>
{{end}}</svg>
{{if .Unused}}<p>Edges nothing crossed in the baseline (their faults pruned): {{range .Unused}}<code>{{.}}</code> {{end}}</p>{{end}}
<h2>Edges × fault kinds</h2>
<table><tr><th>edge</th><th>lineage</th>{{range .Kinds}}<th class="k">{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td title="{{.Calls}}">{{.Edge}}</td><td>{{.Lineage}}</td>{{range .Cells}}<td class="{{.Outcome}}" title="{{.Title}}">{{if eq .Outcome "failed"}}✗{{else if eq .Outcome "tolerated"}}✓{{else if eq .Outcome "effect"}}~{{else if eq .Outcome "unjudged"}}?{{end}}</td>{{end}}</tr>
{{end}}</table>
<h2>Pruning</h2>
<p>Enumerated {{.Counts.Enumerated}} ({{.Counts.Singles}} singles + {{.Counts.Pairs}} pairs) · planned {{.Counts.Planned}}{{if .Reduction}} ({{.Reduction}} fewer){{end}} · run {{.Counts.Run}} · not reached {{.Counts.NotReached}} · shrink and replay runs {{.Counts.ShrinkRuns}} · fault-free controls {{.Counts.Controls}}</p>
<table><tr><th>skipped because</th><th>count</th><th>for example</th></tr>
{{range .Pruned}}<tr><td>{{.Reason}}</td><td>{{.Count}}</td><td>{{range .Examples}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}</table>
<h2>Hypotheses</h2>
<ul>{{range .Invariants}}<li>{{.}}</li>{{end}}{{range .Hypotheses}}<li>{{.}} (from the file)</li>{{end}}</ul>
{{if .Dropped}}<p>Dropped (they fail without any fault):</p><ul>{{range .Dropped}}<li>{{.Name}}: <code>{{.Check}}</code> observed {{.Observed}}</li>{{end}}</ul>{{end}}
{{if .Time}}<h2>Where the time went</h2>
<table><tr><th>step of the runs</th><th>s, every run</th><th>runs</th><th>median s</th><th>max s</th></tr>
{{range .Time}}<tr><td>{{.Step}}</td><td>{{printf "%.1f" .Seconds}}</td><td>{{.Runs}}</td><td>{{printf "%.3f" .Median}}</td><td>{{printf "%.3f" .Max}}</td></tr>{{end}}</table>{{end}}
<h2>Scenarios ({{len .Scenarios}})</h2>
<table><tr><th>scenario</th><th>outcome</th><th>what it did</th><th>s</th></tr>
{{range .Scenarios}}<tr><td><code>{{.ID}}</code></td><td class="{{.Outcome}}">{{.Outcome}}</td><td>{{.Effect}}{{range .Failed}} {{.Name}}: {{.Observed}};{{end}}{{if .Finding}} → <a href="{{.Finding}}">{{.Finding}}</a>{{end}} {{.Note}}</td><td>{{printf "%.1f" .Seconds}}</td></tr>
{{end}}</table>
</body></html>
`))
