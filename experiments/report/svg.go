package report

import (
	"html/template"
	"math"
	"strconv"
	"strings"
)

// svgWriter builds one inline SVG element. Every piece of text it writes is
// escaped; numbers are written with one decimal so the output is
// deterministic and compact. Colours come from classes styled by the page.
type svgWriter struct {
	b strings.Builder
}

// newSVG starts an <svg> of the given viewBox size with an accessible title
// and description (role="img", aria-labelledby).
func newSVG(id string, w, h float64, title, desc string) *svgWriter {
	s := &svgWriter{}
	s.b.WriteString(`<svg class="chart" viewBox="0 0 `)
	s.b.WriteString(num(w) + " " + num(h))
	s.b.WriteString(`" width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-labelledby="`)
	s.b.WriteString(esc(id) + `-t ` + esc(id) + `-d">`)
	s.b.WriteString(`<title id="` + esc(id) + `-t">` + esc(title) + `</title>`)
	s.b.WriteString(`<desc id="` + esc(id) + `-d">` + esc(desc) + `</desc>`)
	return s
}

// HTML closes the element and returns it for a template. The markup is safe:
// all text in it went through esc.
func (s *svgWriter) HTML() template.HTML {
	s.b.WriteString(`</svg>`)
	return template.HTML(s.b.String()) //nolint:gosec // every text and attribute value written is escaped
}

// rect draws a rectangle; a non-empty title becomes its tooltip.
func (s *svgWriter) rect(x, y, w, h float64, class, title string) {
	s.b.WriteString(`<rect x="` + num(x) + `" y="` + num(y) + `" width="` + num(math.Max(w, 0)) + `" height="` + num(math.Max(h, 0)) + `"`)
	s.class(class)
	if title == "" {
		s.b.WriteString(`/>`)
		return
	}
	s.b.WriteString(`><title>` + esc(title) + `</title></rect>`)
}

// line draws a straight line.
func (s *svgWriter) line(x1, y1, x2, y2 float64, class string) {
	s.b.WriteString(`<line x1="` + num(x1) + `" y1="` + num(y1) + `" x2="` + num(x2) + `" y2="` + num(y2) + `"`)
	s.class(class)
	s.b.WriteString(`/>`)
}

// text writes a label; anchor is start, middle or end.
func (s *svgWriter) text(x, y float64, anchor, class, text string) {
	s.b.WriteString(`<text x="` + num(x) + `" y="` + num(y) + `"`)
	if anchor != "" && anchor != "start" {
		s.b.WriteString(` text-anchor="` + anchor + `"`)
	}
	s.class(class)
	s.b.WriteString(`>` + esc(text) + `</text>`)
}

// path draws a path with the given d attribute, built by a polyline.
func (s *svgWriter) path(d, class, title string) {
	if d == "" {
		return
	}
	s.b.WriteString(`<path d="` + d + `"`)
	s.class(class)
	if title == "" {
		s.b.WriteString(`/>`)
		return
	}
	s.b.WriteString(`><title>` + esc(title) + `</title></path>`)
}

// group opens a <g> with a class; end closes it.
func (s *svgWriter) group(class string) {
	s.b.WriteString(`<g`)
	s.class(class)
	s.b.WriteString(`>`)
}

func (s *svgWriter) end() { s.b.WriteString(`</g>`) }

func (s *svgWriter) class(c string) {
	if c != "" {
		s.b.WriteString(` class="` + esc(c) + `"`)
	}
}

// polyline accumulates the d attribute of a line with gaps.
type polyline struct {
	b    strings.Builder
	open bool
}

// to extends the line to (x, y), starting a new segment after a gap.
func (p *polyline) to(x, y float64) {
	if p.open {
		p.b.WriteString("L")
	} else {
		p.b.WriteString("M")
		p.open = true
	}
	p.b.WriteString(num(x) + " " + num(y))
}

// gap ends the current segment.
func (p *polyline) gap() { p.open = false }

func (p *polyline) d() string { return p.b.String() }

// num formats a coordinate with at most one decimal.
func num(x float64) string {
	return strconv.FormatFloat(math.Round(finite(x)*10)/10, 'f', -1, 64)
}

// esc escapes text for an HTML or SVG text node or a quoted attribute.
func esc(s string) string { return template.HTMLEscapeString(s) }

// linearScale maps values in [lo, hi] onto pixels [p0, p1].
type linearScale struct{ lo, hi, p0, p1 float64 }

func (l linearScale) at(v float64) float64 {
	if l.hi == l.lo {
		return l.p0
	}
	return l.p0 + (v-l.lo)/(l.hi-l.lo)*(l.p1-l.p0)
}

// yScale maps a value onto a vertical pixel, linearly or logarithmically.
type yScale struct {
	log    bool
	lo, hi float64 // value range; both > 0 when log
	bottom float64 // pixel of lo
	top    float64 // pixel of hi
	ticks  []float64
}

func (y yScale) at(v float64) float64 {
	if y.log {
		v = math.Max(v, y.lo)
		return y.bottom + (math.Log10(v)-math.Log10(y.lo))/(math.Log10(y.hi)-math.Log10(y.lo))*(y.top-y.bottom)
	}
	if y.hi == y.lo {
		return y.bottom
	}
	v = math.Min(math.Max(v, y.lo), y.hi)
	return y.bottom + (v-y.lo)/(y.hi-y.lo)*(y.top-y.bottom)
}

// niceStep returns a round step (1, 2, 2.5 or 5 × 10^k) near span/n.
func niceStep(span float64, n int) float64 {
	if span <= 0 || n <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// linearY builds a linear scale from 0 to a round number at or above max.
func linearY(max float64, bottom, top float64) yScale {
	if max <= 0 {
		max = 1
	}
	step := niceStep(max, 4)
	hi := math.Ceil(max/step-1e-9) * step
	y := yScale{lo: 0, hi: hi, bottom: bottom, top: top}
	for v := 0.0; v <= hi+step/2; v += step {
		y.ticks = append(y.ticks, v)
	}
	return y
}

// logY builds a log scale over [min, max] widened to 1-2-5 values, with
// ticks at the 1-2-5 values inside (only the powers of ten when the range
// spans many decades).
func logY(min, max float64, bottom, top float64) yScale {
	lo, hi := below125(min), above125(max)
	if hi <= lo {
		hi = above125(lo * 1.01)
	}
	y := yScale{log: true, lo: lo, hi: hi, bottom: bottom, top: top}
	decades := math.Log10(hi / lo)
	mults := []float64{1, 2, 5}
	if decades > 3 {
		mults = []float64{1}
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range mults {
			v := m * math.Pow(10, e)
			if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				y.ticks = append(y.ticks, v)
			}
		}
	}
	return y
}

// below125 is the largest 1-2-5 value at or below v.
func below125(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= v*(1+1e-9) {
			return m * e
		}
	}
	return e
}

// above125 is the smallest 1-2-5 value at or above v.
func above125(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v*(1-1e-9) {
			return m * e
		}
	}
	return 10 * e
}
