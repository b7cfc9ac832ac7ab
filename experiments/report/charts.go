package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
)

// Chart geometry, in viewBox units. Every time chart shares the horizontal
// layout so that charts stacked in a column line up second for second.
const (
	chartW      = 600.0
	chartH      = 230.0
	chartLeft   = 58.0
	chartRight  = chartW - 14
	chartTop    = 30.0
	chartBottom = chartH - 34
)

// timeDomain is the common x axis of every time chart of a report.
type timeDomain struct {
	seconds float64 // the axis runs from 0 to seconds
}

func (d timeDomain) x() linearScale {
	return linearScale{lo: 0, hi: d.seconds, p0: chartLeft, p1: chartRight}
}

// domainOf is the time range covering every variant's timeseries, faults and
// breaker transitions.
func domainOf(r *Report) timeDomain {
	var n float64
	for _, v := range r.Variants {
		for _, s := range v.Timeseries {
			n = math.Max(n, float64(s.T+1))
		}
		for _, f := range v.Faults {
			n = math.Max(n, f.EndOffset)
		}
		for _, b := range v.Breakers {
			n = math.Max(n, b.Offset)
		}
		for _, c := range v.Consumers {
			for _, s := range c.Seconds {
				n = math.Max(n, float64(s.T+1))
			}
		}
	}
	if n <= 0 {
		n = 1
	}
	return timeDomain{seconds: math.Ceil(n)}
}

// chart is one time chart being drawn.
type chart struct {
	s *svgWriter
	x linearScale
	y yScale
}

// newChart draws the frame of a time chart: grid, y ticks labelled by
// label, x ticks in seconds, and the fault windows shaded and named.
func newChart(id, title, desc string, d timeDomain, y yScale, label func(float64) string, faults []Fault) *chart {
	c := &chart{s: newSVG(id, chartW, chartH, title, desc), x: d.x(), y: y}
	s := c.s
	s.rect(chartLeft, chartTop, chartRight-chartLeft, chartBottom-chartTop, "plot", "")
	s.group("grid")
	for _, t := range y.ticks {
		py := y.at(t)
		s.line(chartLeft, py, chartRight, py, "")
	}
	s.end()
	s.group("ticks")
	for _, t := range y.ticks {
		s.text(chartLeft-6, y.at(t)+4, "end", "", label(t))
	}
	step := niceStep(d.seconds, 6)
	if step < 1 {
		step = 1
	}
	for t := 0.0; t <= d.seconds+1e-9; t += step {
		px := c.x.at(t)
		s.line(px, chartBottom, px, chartBottom+4, "tick")
		s.text(px, chartBottom+17, "middle", "", fmtSec(t))
	}
	s.text((chartLeft+chartRight)/2, chartH-4, "middle", "axis", "seconds since start")
	s.end()
	c.faults(faults)
	return c
}

// faults shades each fault window and names it at the top of the window;
// overlapping windows put their names on successive lines.
func (c *chart) faults(faults []Fault) {
	s := c.s
	s.group("faults")
	var ends []float64 // end offset of the label on each line
	for _, f := range faults {
		x0 := c.x.at(math.Max(f.StartOffset, 0))
		x1 := c.x.at(math.Min(math.Max(f.EndOffset, f.StartOffset), c.x.hi))
		title := fmt.Sprintf("fault %s: %s on %s, %s–%s", f.Name, f.Kind, f.Target, fmtSec(f.StartOffset), fmtSec(f.EndOffset))
		if a := fmtAttrs(f.Attrs); a != "" {
			title += " (" + a + ")"
		}
		s.rect(x0, chartTop, x1-x0, chartBottom-chartTop, "fault", title)
		line := slices.IndexFunc(ends, func(e float64) bool { return e <= f.StartOffset })
		if line < 0 {
			line = len(ends)
			ends = append(ends, 0)
		}
		ends[line] = f.EndOffset
		s.text(x0+4, chartTop+13+float64(line)*12, "start", "flabel", f.Name)
	}
	s.end()
}

// legend writes a row of coloured keys above the plot, from the left.
func (c *chart) legend(keys ...[2]string) {
	x := chartLeft
	for _, k := range keys {
		c.s.rect(x, 11, 14, 4, "key "+k[0], "")
		c.s.text(x+18, 17, "start", "legend", k[1])
		x += 26 + 7*float64(len([]rune(k[1])))
	}
}

// hover adds an invisible column per second whose tooltip tells its numbers.
func (c *chart) hover(ts []Second) {
	s := c.s
	s.group("hover")
	w := c.x.at(1) - c.x.at(0)
	for _, p := range ts {
		tip := fmt.Sprintf("%ds: %d requests, %s ok, %d errors, p50 %s, p99 %s", p.T, p.Requests, fmtPct(p.SuccessRate), p.Errors, fmtMs(p.P50Ms), fmtMs(p.P99Ms))
		if p.Dropped > 0 {
			tip += fmt.Sprintf(", %d dropped", p.Dropped)
		}
		if len(p.ActiveFaults) > 0 {
			tip += ", faults: " + strings.Join(p.ActiveFaults, ", ")
		}
		s.rect(c.x.at(float64(p.T)), chartTop, w, chartBottom-chartTop, "", tip)
	}
	s.end()
}

// latencyScale is the y scale shared by the latency charts of all variants:
// logarithmic when the values span more than a factor of 20, else linear.
func latencyScale(r *Report) yScale {
	minPos, max := math.Inf(1), 0.0
	for _, v := range r.Variants {
		for _, s := range v.Timeseries {
			if s.Requests == 0 {
				continue
			}
			for _, x := range []float64{s.P50Ms, s.P99Ms} {
				if x > 0 {
					minPos = math.Min(minPos, x)
					max = math.Max(max, x)
				}
			}
		}
	}
	if max > 0 && max/minPos >= 20 {
		return logY(minPos, max, chartBottom, chartTop)
	}
	return linearY(max, chartBottom, chartTop)
}

// latencyChart draws p50 and p99 per second.
func latencyChart(id string, v Variant, d timeDomain, y yScale) template.HTML {
	scale := "linear"
	if y.log {
		scale = "logarithmic"
	}
	c := newChart(id, "Latency per second, "+v.Name,
		fmt.Sprintf("p50 and p99 latency of place_order per second for variant %s, %s scale in milliseconds, fault windows shaded", v.Name, scale),
		d, y, tickMs, v.Faults)
	var p50, p99 polyline
	for _, p := range v.Timeseries {
		mid := c.x.at(float64(p.T) + 0.5)
		if p.Requests == 0 || (y.log && p.P50Ms <= 0) {
			p50.gap()
		} else {
			p50.to(mid, y.at(p.P50Ms))
		}
		if p.Requests == 0 || (y.log && p.P99Ms <= 0) {
			p99.gap()
		} else {
			p99.to(mid, y.at(p.P99Ms))
		}
	}
	c.s.path(p99.d(), "series p99", "p99 latency")
	c.s.path(p50.d(), "series p50", "p50 latency")
	keyScale := "ms, linear"
	if y.log {
		keyScale = "ms, log scale"
	}
	c.legend([2]string{"p50", "p50"}, [2]string{"p99", "p99"}, [2]string{"fault", "fault window"})
	c.s.text(chartRight, 17, "end", "legend", keyScale)
	c.hover(v.Timeseries)
	return c.s.HTML()
}

// successChart draws the success rate per second, 0–100 %.
func successChart(id string, v Variant, d timeDomain) template.HTML {
	y := yScale{lo: 0, hi: 1, bottom: chartBottom, top: chartTop, ticks: []float64{0, 0.25, 0.5, 0.75, 1}}
	c := newChart(id, "Success rate per second, "+v.Name,
		fmt.Sprintf("share of place_order requests answered OK per second for variant %s, 0 to 100 percent, fault windows shaded", v.Name),
		d, y, func(f float64) string { return fmtNum(f*100) + "%" }, v.Faults)
	// The line is the success rate; the shaded area between it and 100 %
	// is what failed. Seconds without requests leave gaps.
	var line, area polyline
	var segment []float64 // x of the points of the current segment
	closeArea := func() {
		if len(segment) > 0 {
			area.to(segment[len(segment)-1], y.at(1))
			area.b.WriteString("Z")
			area.gap()
			segment = segment[:0]
		}
	}
	for _, p := range v.Timeseries {
		if p.Requests == 0 {
			closeArea()
			line.gap()
			continue
		}
		mid := c.x.at(float64(p.T) + 0.5)
		if len(segment) == 0 {
			area.to(mid, y.at(1))
		}
		segment = append(segment, mid)
		line.to(mid, y.at(p.SuccessRate))
		area.to(mid, y.at(p.SuccessRate))
	}
	closeArea()
	c.s.path(area.d(), "area failed", "")
	c.s.path(line.d(), "series ok", "success rate")
	c.legend([2]string{"ok", "success rate"}, [2]string{"failed", "failed"}, [2]string{"fault", "fault window"})
	c.hover(v.Timeseries)
	return c.s.HTML()
}

// requestsScale is the y scale shared by the request charts of all variants.
func requestsScale(r *Report) yScale {
	var max float64
	for _, v := range r.Variants {
		for _, s := range v.Timeseries {
			max = math.Max(max, float64(s.Successes+s.Errors+s.Dropped))
		}
	}
	return linearY(max, chartBottom, chartTop)
}

// requestsChart draws per second the successes, errors and dropped requests
// as stacked bars.
func requestsChart(id string, v Variant, d timeDomain, y yScale) template.HTML {
	c := newChart(id, "Requests per second, "+v.Name,
		fmt.Sprintf("place_order requests per second for variant %s: successes, errors and requests dropped by the saturated load generator, stacked", v.Name),
		d, y, func(f float64) string { return fmtNum(f) + "/s" }, v.Faults)
	w := c.x.at(1) - c.x.at(0)
	gap := math.Min(1, w/5)
	c.s.group("bars")
	for _, p := range v.Timeseries {
		x := c.x.at(float64(p.T)) + gap/2
		base := 0.0
		for _, part := range []struct {
			n     int64
			class string
		}{{p.Successes, "bar-ok"}, {p.Errors, "bar-err"}, {p.Dropped, "bar-drop"}} {
			if part.n <= 0 {
				continue
			}
			top := base + float64(part.n)
			c.s.rect(x, y.at(top), w-gap, y.at(base)-y.at(top), part.class, "")
			base = top
		}
	}
	c.s.end()
	c.legend([2]string{"bar-ok", "ok"}, [2]string{"bar-err", "error"}, [2]string{"bar-drop", "dropped"}, [2]string{"fault", "fault window"})
	c.hover(v.Timeseries)
	return c.s.HTML()
}

// breakerSegment is a stretch of time a breaker spent in one state.
type breakerSegment struct {
	state      string
	start, end float64
}

// breakerLinks returns, per link in order of first appearance, the states
// the link's breaker went through, covering 0 to the end of the domain.
func breakerLinks(bs []BreakerTransition, end float64) ([]string, map[string][]breakerSegment) {
	sorted := slices.Clone(bs)
	slices.SortStableFunc(sorted, func(a, b BreakerTransition) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	var links []string
	segs := map[string][]breakerSegment{}
	for _, b := range sorted {
		cur, ok := segs[b.Link]
		if !ok {
			links = append(links, b.Link)
			from := b.From
			if from == "" {
				from = BreakerClosed
			}
			cur = []breakerSegment{{state: from, start: 0}}
		}
		cur[len(cur)-1].end = b.Offset
		cur = append(cur, breakerSegment{state: b.To, start: b.Offset})
		segs[b.Link] = cur
	}
	for _, l := range links {
		segs[l][len(segs[l])-1].end = end
	}
	return links, segs
}

// breakerLinksOf lists every link with a breaker transition in any variant,
// in order of first appearance, so that all variants draw the same rows.
func breakerLinksOf(r *Report) []string {
	return firstSeen(r, func(v Variant, add func(string)) {
		for _, b := range v.Breakers {
			add(b.Link)
		}
	})
}

// firstSeen lists, without repeats and in order of first appearance, the
// names each variant gives to add.
func firstSeen(r *Report, names func(v Variant, add func(string))) []string {
	var out []string
	for _, v := range r.Variants {
		names(v, func(n string) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		})
	}
	return out
}

// breakerChart draws one band per link coloured by breaker state.
func breakerChart(id string, v Variant, d timeDomain, links []string) template.HTML {
	const row, top = 22.0, 26.0
	h := top + row*float64(len(links)) + 26
	s := newSVG(id, chartW, h, "Circuit breaker states, "+v.Name,
		fmt.Sprintf("state of each circuit breaker over time for variant %s: closed, open or half-open", v.Name))
	x := d.x()
	_, segs := breakerLinks(v.Breakers, d.seconds)
	lx := chartLeft
	for _, k := range [][2]string{{"closed", "closed"}, {"open", "open"}, {"half-open", "half-open"}} {
		s.rect(lx, 8, 14, 10, "state-"+k[0], "")
		s.text(lx+18, 17, "start", "legend", k[1])
		lx += 30 + 7*float64(len(k[1]))
	}
	for i, link := range links {
		y := top + row*float64(i)
		ss := segs[link]
		if len(ss) == 0 {
			ss = []breakerSegment{{state: BreakerClosed, start: 0, end: d.seconds}}
		}
		for _, g := range ss {
			s.rect(x.at(g.start), y+2, x.at(g.end)-x.at(g.start), row-4, "state-"+g.state,
				fmt.Sprintf("%s %s from %s to %s", link, g.state, fmtSec(g.start), fmtSec(g.end)))
		}
		s.text(x.at(0)+5, y+row/2+4, "start", "blabel", link)
	}
	base := top + row*float64(len(links))
	step := niceStep(d.seconds, 6)
	if step < 1 {
		step = 1
	}
	s.group("ticks")
	for t := 0.0; t <= d.seconds+1e-9; t += step {
		s.line(x.at(t), base, x.at(t), base+4, "tick")
		s.text(x.at(t), base+17, "middle", "", fmtSec(t))
	}
	s.end()
	return s.HTML()
}

// Waterfall draws the spans of an exemplar trace as an SVG of bars on a
// time axis, indented by depth, errors in red, each labelled with service,
// name and duration, the time a fault held a call marked: the report's
// waterfall, for other pages that show traces (the live console). id is
// the SVG element's id; the classes are those of the report's style sheet.
func Waterfall(id string, e Exemplar) template.HTML { return waterfall(id, e) }

// waterfall draws Waterfall.
func waterfall(id string, e Exemplar) template.HTML {
	const (
		w      = 960.0
		label  = 330.0 // width of the label column
		barL   = label + 10
		barR   = w - 80
		row    = 20.0
		top    = 28.0
		indent = 12.0
	)
	total := e.DurationMs
	for _, sp := range e.Spans {
		total = math.Max(total, sp.StartMs+sp.DurationMs)
	}
	if total <= 0 {
		total = 1
	}
	h := top + row*float64(len(e.Spans)) + 8
	s := newSVG(id, w, h, fmt.Sprintf("Trace %s, %s %s", e.TraceID, e.Phase, e.Kind),
		fmt.Sprintf("waterfall of the %d spans of trace %s (%s, %s): bars show when each span ran, errors in red", len(e.Spans), e.TraceID, e.Root, fmtMs(e.DurationMs)))
	x := linearScale{lo: 0, hi: total, p0: barL, p1: barR}
	step := niceStep(total, 5)
	s.group("grid")
	for t := 0.0; t <= total+1e-9; t += step {
		s.line(x.at(t), top-4, x.at(t), h-4, "")
	}
	s.end()
	s.group("ticks")
	for t := 0.0; t <= total+1e-9; t += step {
		s.text(x.at(t), top-10, "middle", "", tickMs(t))
	}
	s.end()
	for i, sp := range e.Spans {
		y := top + row*float64(i)
		if i%2 == 1 {
			s.rect(0, y, w, row, "stripe", "")
		}
		name := sp.Service + " " + sp.Name
		full := name
		maxChars := int((label - float64(sp.Depth)*indent - 8) / 6.4)
		if r := []rune(name); maxChars > 1 && len(r) > maxChars {
			name = string(r[:maxChars-1]) + "…"
		}
		s.b.WriteString(`<text x="` + num(4+float64(sp.Depth)*indent) + `" y="` + num(y+14) + `" class="slabel">`)
		s.b.WriteString(`<tspan class="svc">` + esc(sp.Service) + `</tspan>`)
		if rest := strings.TrimPrefix(name, sp.Service); rest != name {
			s.b.WriteString(esc(rest))
		} else {
			s.b.WriteString(" " + esc(name))
		}
		s.b.WriteString(`</text>`)
		class := "span"
		if sp.Error {
			class = "span span-err"
		}
		tip := fmt.Sprintf("%s: starts at %s, takes %s", full, fmtMs(sp.StartMs), fmtMs(sp.DurationMs))
		if sp.Error {
			tip += ", error"
		}
		if sp.Note != "" {
			tip += ", " + sp.Note
		}
		held := 0.0
		for _, h := range sp.Held {
			held += h.DurationMs
		}
		if sp.Fault != "" {
			tip += fmt.Sprintf(", fault %s on its link: %s outside the server span", sp.Fault, fmtMs(held))
		}
		bx, bw := x.at(sp.StartMs), math.Max(x.at(sp.StartMs+sp.DurationMs)-x.at(sp.StartMs), 1.5)
		s.rect(bx, y+4, bw, row-8, class, tip)
		for _, h := range sp.Held {
			hx := x.at(h.StartMs)
			s.rect(hx, y+2, math.Max(x.at(h.StartMs+h.DurationMs)-hx, 1.5), row-4, "held",
				fmt.Sprintf("fault %s held the call %s (%s–%s)", sp.Fault, fmtMs(h.DurationMs), fmtMs(h.StartMs), fmtMs(h.StartMs+h.DurationMs)))
		}
		txt := fmtMs(sp.DurationMs)
		switch {
		case sp.Fault != "" && fmtMs(held) == fmtMs(sp.DurationMs):
			txt += " held by fault " + sp.Fault // all of it, as shown
		case sp.Fault != "":
			txt += " · " + fmtMs(held) + " held by fault " + sp.Fault
		}
		if sp.Note != "" {
			txt += " · " + sp.Note
		}
		tw := 6.2 * float64(len([]rune(txt)))
		tclass := "dur"
		if sp.Fault != "" {
			tclass = "dur heldlabel"
		}
		switch {
		case bx+bw+4+tw <= w-2:
			s.text(bx+bw+4, y+14, "start", tclass, txt)
		case bx-4-tw >= barL:
			s.text(bx-4, y+14, "end", tclass, txt)
		case bx+4+tw <= w-2: // a long bar: the label goes over it
			s.text(bx+4, y+14, "start", tclass+" inbar", txt)
		default:
			s.text(w-2, y+14, "end", tclass+" inbar", txt)
		}
	}
	return s.HTML()
}

// tickMs labels a latency tick: 0.5ms, 2ms, 300ms, 1s.
func tickMs(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms >= 1000:
		return fmtNum(ms/1000) + "s"
	default:
		return fmtNum(ms) + "ms"
	}
}

// consumerNames lists every consumer with a series in any variant, in
// order of first appearance, so that all variants draw the same rows.
func consumerNames(r *Report) []string {
	return firstSeen(r, func(v Variant, add func(string)) {
		for _, c := range v.Consumers {
			add(c.Consumer)
		}
	})
}

// consumerScales are the y scales shared by one consumer's charts across
// variants: events per second (and events behind) on the left, the age of
// the oldest unapplied event on the right.
func consumerScales(r *Report, name string) (events, lag yScale) {
	var maxEvents, maxLag float64
	for _, v := range r.Variants {
		for _, c := range v.Consumers {
			if c.Consumer != name {
				continue
			}
			for _, s := range c.Seconds {
				maxEvents = math.Max(maxEvents, float64(max(s.Published, s.Applied, s.LagEvents)))
				maxLag = math.Max(maxLag, s.LagMs)
			}
		}
	}
	// At least a second on the lag scale: a consumer a few milliseconds
	// behind is keeping up, and should look like it.
	return linearY(maxEvents, chartBottom, chartTop), linearY(math.Max(maxLag, 1000), chartBottom, chartTop)
}

// consumerSeriesOf returns v's series of consumer name; ok is false when v
// has none.
func consumerSeriesOf(v Variant, name string) (ConsumerSeries, bool) {
	for _, c := range v.Consumers {
		if c.Consumer == name {
			return c, true
		}
	}
	return ConsumerSeries{}, false
}

// consumerChart draws one consumer second by second: events published and
// applied per second as lines, the events published but not yet applied
// as a shaded area (left axis), and the age of the oldest of them as a
// dashed line (right axis, labelled inside the plot).
func consumerChart(id string, v Variant, name string, d timeDomain, events, lag yScale) template.HTML {
	c := newChart(id, "Consumer "+name+", "+v.Name,
		fmt.Sprintf("orders.created events published and applied by %s per second for variant %s, the events it was behind, and the age of the oldest unapplied event; fault windows shaded", name, v.Name),
		d, events, func(f float64) string { return fmtNum(f) }, v.Faults)
	cs, _ := consumerSeriesOf(v, name)
	var pub, app, behind, age polyline
	var maxBehind int64
	var maxWait float64
	for i, s := range cs.Seconds {
		maxBehind, maxWait = max(maxBehind, s.LagEvents), math.Max(maxWait, s.LagMs)
		mid := c.x.at(float64(s.T) + 0.5)
		if i == 0 {
			behind.to(mid, events.at(0))
		}
		pub.to(mid, events.at(float64(s.Published)))
		app.to(mid, events.at(float64(s.Applied)))
		behind.to(mid, events.at(float64(s.LagEvents)))
		age.to(mid, lag.at(s.LagMs))
		if i == len(cs.Seconds)-1 {
			behind.to(mid, events.at(0))
			behind.b.WriteString("Z")
		}
	}
	c.s.path(behind.d(), "area behind", "events published but not yet applied")
	c.s.path(pub.d(), "series published", "published per second")
	c.s.path(app.d(), "series applied", "applied per second")
	c.s.path(age.d(), "series lag", "age of the oldest unapplied event")
	c.s.group("ticks lagticks")
	for _, t := range lag.ticks[1:] {
		c.s.text(chartRight-4, lag.at(t)+4, "end", "lagtick", tickMs(t))
	}
	c.s.end()
	c.legend([2]string{"published", "published/s"}, [2]string{"applied", "applied/s"},
		[2]string{"behind", "behind"}, [2]string{"lag", "oldest wait (right)"})
	summary := fmt.Sprintf("at most %d behind, oldest waited %s", maxBehind, fmtMs(maxWait))
	if maxBehind == 0 {
		summary = "never behind at the end of a second"
	}
	c.s.text(chartRight-48, chartBottom-8, "end", "innote", summary)
	c.s.group("hover")
	w := c.x.at(1) - c.x.at(0)
	for _, s := range cs.Seconds {
		tip := fmt.Sprintf("%ds: %d published, %d applied by %s, %d behind", s.T, s.Published, s.Applied, name, s.LagEvents)
		if s.LagEvents > 0 {
			tip += ", oldest waiting " + fmtMs(s.LagMs)
		}
		c.s.rect(c.x.at(float64(s.T)), chartTop, w, chartBottom-chartTop, "", tip)
	}
	c.s.end()
	return c.s.HTML()
}
