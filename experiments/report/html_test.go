package report

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func renderHTML(t *testing.T, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatalf("HTML: %v", err)
	}
	return buf.Bytes()
}

func parseHTML(t *testing.T, data []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	return doc
}

// walk calls f on every element node under n.
func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasClass(n *html.Node, class string) bool {
	v, _ := attr(n, "class")
	for _, c := range strings.Fields(v) {
		if c == class {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return b.String()
}

func TestHTML(t *testing.T) {
	r := sampleReport()
	out := renderHTML(t, r)
	doc := parseHTML(t, out)

	var svgs, svgTitled, faultRects, hypoRows, failRows int
	var chartSVGs, waterfalls int
	var jaegerLinks []string
	var banner *html.Node
	var faultXs []string
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "svg":
			svgs++
			if c := n.FirstChild; c != nil && c.Data == "title" && textOf(c) != "" {
				svgTitled++
			}
			if role, _ := attr(n, "role"); role != "img" {
				t.Errorf("svg without role=img")
			}
			title := textOf(n.FirstChild)
			switch {
			case strings.HasPrefix(title, "Trace "):
				waterfalls++
			default:
				chartSVGs++
			}
		case "rect":
			if hasClass(n, "fault") && !hasClass(n, "key") {
				faultRects++
				x, _ := attr(n, "x")
				w, _ := attr(n, "width")
				faultXs = append(faultXs, x+"+"+w)
				if n.FirstChild == nil || !strings.Contains(textOf(n), "user-latency") {
					t.Errorf("fault rect without a title naming the fault")
				}
			}
		case "header":
			if hasClass(n, "banner") {
				banner = n
			}
		case "tr":
			if hasClass(n, "pass") || hasClass(n, "fail") || hasClass(n, "skip") {
				hypoRows++
			}
			if hasClass(n, "fail") {
				failRows++
				if !strings.Contains(textOf(n), "observed order.latency.p99 = 142ms, expected order.latency.p99 < 100ms") {
					t.Errorf("failed hypothesis row = %q", textOf(n))
				}
			}
		case "a":
			href, _ := attr(n, "href")
			if strings.HasPrefix(href, "http") {
				jaegerLinks = append(jaegerLinks, href)
			}
		}
	})
	// 2 variants × (latency, success, requests, breakers) + 3 exemplar waterfalls.
	if chartSVGs != 8 || waterfalls != 3 || svgs != 11 || svgTitled != svgs {
		t.Errorf("svgs: %d charts, %d waterfalls, %d in all, %d titled; want 8, 3, 11, 11", chartSVGs, waterfalls, svgs, svgTitled)
	}
	// One shaded window per time chart: 2 variants × 3 charts.
	if faultRects != 6 {
		t.Errorf("%d shaded fault windows, want 6", faultRects)
	}
	// The window runs from 10 s to 20 s of a 30 s axis.
	plot := chartRight - chartLeft
	wantX := num(chartLeft+plot/3) + "+" + num(plot/3)
	for _, got := range faultXs {
		if got != wantX {
			t.Errorf("fault rect at x+width %s, want %s", got, wantX)
		}
	}
	if banner == nil || !hasClass(banner, "fail") || !strings.Contains(textOf(banner), "FAIL") ||
		!strings.Contains(textOf(banner), "1 of 7 checks failed: 6 hypotheses × the variants they apply to") {
		t.Errorf("verdict banner missing or wrong")
	}
	if hypoRows != 8 || failRows != 1 {
		t.Errorf("%d hypothesis rows with %d failed, want 8 and 1", hypoRows, failRows)
	}
	// Links out: the Jaeger UI and one per exemplar, nothing else.
	if len(jaegerLinks) != 4 {
		t.Errorf("links out = %v, want the Jaeger UI and 3 exemplar links", jaegerLinks)
	}
	for _, l := range jaegerLinks {
		if !strings.HasPrefix(l, r.JaegerUI) {
			t.Errorf("link out %q is not to Jaeger", l)
		}
	}
	text := textOf(doc)
	for _, want := range []string{"4bf92f3577b34da6a3ce929d0e0e4736", "user-latency", "order.user", "ghost", "UNAVAILABLE 19", "get_order", "during.fallback.user"} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
}

// TestHTMLSelfContained checks that the page loads nothing: no scripts, no
// stylesheets or images by URL, no url() or @import in styles, and no
// http(s) URL anywhere except the Jaeger links.
func TestHTMLSelfContained(t *testing.T) {
	out := renderHTML(t, sampleReport())
	doc := parseHTML(t, out)
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use":
			t.Errorf("page has a <%s> element", n.Data)
		case "style":
			css := textOf(n)
			if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
				t.Errorf("style loads a resource")
			}
		}
		for _, a := range n.Attr {
			if a.Key == "src" || a.Key == "srcset" || strings.HasPrefix(a.Key, "on") || a.Key == "xlink:href" {
				t.Errorf("<%s> has attribute %s=%q", n.Data, a.Key, a.Val)
			}
			if a.Key == "href" && !strings.HasPrefix(a.Val, "#") && !strings.HasPrefix(a.Val, "http://127.0.0.1:16686") {
				t.Errorf("<%s> links to %q", n.Data, a.Val)
			}
		}
	})
	// Outside the 4 Jaeger links (and the text summary of them, which the page does not repeat), no URL.
	n := strings.Count(string(out), "http://") + strings.Count(string(out), "https://")
	if n != 4 {
		t.Errorf("page mentions %d http(s) URLs, want only the 4 Jaeger links", n)
	}
}

// TestHTMLEscapes feeds hostile strings through every field the page shows.
func TestHTMLEscapes(t *testing.T) {
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	r := sampleReport()
	r.Experiment, r.Description, r.Fallacy, r.File = evil, evil, evil, evil
	r.JaegerUI = "javascript:alert(3)"
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Name = evil + strconv.Itoa(i)
		v.Knobs = append(v.Knobs, Knob{evil, evil})
		v.Faults[0].Name = evil
		v.Hypotheses[0].Expr, v.Hypotheses[0].Observed = evil, evil
		v.Breakers = append(v.Breakers, BreakerTransition{Link: evil, From: evil, To: evil, Offset: 3})
		v.Metrics[evil] = 1
		v.Consistency.Consumers[evil] = ConsumerConsistency{}
		v.Exemplars[0].TraceID, v.Exemplars[0].Root = evil, evil
		v.Exemplars[0].JaegerURL = "javascript:alert(4)"
		v.Exemplars[0].Spans[1].Service, v.Exemplars[0].Spans[1].Name, v.Exemplars[0].Spans[1].Note = evil, evil, evil
	}
	out := renderHTML(t, r)
	doc := parseHTML(t, out)
	walk(doc, func(n *html.Node) {
		if n.Data == "script" || n.Data == "img" {
			t.Errorf("hostile input produced a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(strings.ToLower(a.Val), "javascript:") {
				t.Errorf("hostile input produced <%s %s=%q>", n.Data, a.Key, a.Val)
			}
		}
	})
	if !strings.Contains(textOf(doc), evil) {
		t.Errorf("hostile text not shown verbatim as text")
	}
}

func TestHTMLDeterministic(t *testing.T) {
	a, b := renderHTML(t, sampleReport()), renderHTML(t, sampleReport())
	if !bytes.Equal(a, b) {
		t.Errorf("two renderings of the same report differ")
	}
}

// TestHTMLSparse renders reports with missing pieces: no timeseries, no
// faults, a testbed error, a variant with a second without requests.
func TestHTMLSparse(t *testing.T) {
	gappy := sampleReport()
	gappy.Variants[0].Timeseries[5].Requests = 0
	gappy.Variants[0].Timeseries[5].Successes = 0
	tests := map[string]*Report{
		"empty":   {Experiment: "empty"},
		"error":   {Experiment: "broken", Error: "start topology: boom", Variants: []Variant{{Name: "naive"}}},
		"no data": {Experiment: "idle", Passed: true, Variants: []Variant{{Name: "a", Passed: true}, {Name: "b", Passed: true}}},
		"gap":     gappy,
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			out := renderHTML(t, r)
			parseHTML(t, out)
			if name == "error" && !bytes.Contains(out, []byte("start topology: boom")) {
				t.Errorf("testbed error not shown")
			}
			if name == "error" && !bytes.Contains(out, []byte(`class="banner error"`)) {
				t.Errorf("testbed error banner missing")
			}
			if name == "gap" {
				// The p50 line of naive breaks at second 5: two segments.
				i := bytes.Index(out, []byte(`class="series p50"`))
				j := bytes.LastIndex(out[:i], []byte(`<path d="`))
				if segs := bytes.Count(out[j:i], []byte("M")); segs != 2 {
					t.Errorf("p50 line has %d segments, want 2 around the empty second", segs)
				}
			}
		})
	}
}

// TestFaultsOfEveryVariant: each variant applies and removes the
// schedule's faults itself, so when their times differ the faults table
// shows each variant's own, naming the variant, in text and HTML alike;
// when they read the same, it lists them once, with no variant column.
func TestFaultsOfEveryVariant(t *testing.T) {
	r := sampleReport()
	late := r.Variants[1].Faults[0]
	late.EndOffset = 23.5 // the resilient variant's removal came off late
	r.Variants[1].Faults = []Fault{late}

	var buf bytes.Buffer
	if err := Text(&buf, r); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{
		"naive      user-latency  latency  user  downstream  10s–20s",
		"resilient  user-latency  latency  user  downstream  10s–23.5s",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text faults table lacks %q:\n%s", want, text)
		}
	}

	rows := func(r *Report) [][]string {
		var out [][]string
		walk(parseHTML(t, renderHTML(t, r)), func(h *html.Node) {
			if id, _ := attr(h, "id"); h.Data != "h2" || id != "faults" {
				return
			}
			table := h.NextSibling
			for table != nil && table.Type != html.ElementNode {
				table = table.NextSibling
			}
			walk(table, func(tr *html.Node) {
				if tr.Data != "tr" {
					return
				}
				var cells []string
				for c := tr.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode {
						cells = append(cells, textOf(c))
					}
				}
				out = append(out, cells)
			})
		})
		return out
	}
	got := rows(r)
	if len(got) != 3 || got[0][0] != "variant" || got[1][0] != "naive" || got[2][0] != "resilient" {
		t.Fatalf("HTML faults table = %q, want a header and one row per variant, each naming it", got)
	}
	if !strings.Contains(strings.Join(got[2], " "), "23.5s") {
		t.Errorf("resilient row %q lacks its own end, 23.5s", got[2])
	}

	for _, same := range []*Report{sampleReport(), func() *Report { r := sampleReport(); r.Variants[1].Faults = nil; return r }()} {
		if got := rows(same); len(got) != 2 || got[0][0] != "name" {
			t.Errorf("faults the same in every variant: table = %q, want them once, no variant column", got)
		}
		buf.Reset()
		if err := Text(&buf, same); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "user-latency  latency"); n != 1 {
			t.Errorf("faults the same in every variant: the text lists them %d times, want once:\n%s", n, buf.String())
		}
	}
}
