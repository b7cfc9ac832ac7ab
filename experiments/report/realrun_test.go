package report_test

import (
	"bytes"
	"encoding/xml"
	"html"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/experiments/runner"
	"github.com/fallacies/fallacies/services/config"
)

// realRun runs testdata/real.yaml on the embedded topology and returns its
// report as read back from report.json (validated against the schema).
func realRun(t *testing.T) *report.Report {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real experiment: skipped with -short")
	}
	exp, err := definition.Load("testdata/real.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Run(t.Context(), exp, runner.Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	rep, err := report.Decode(bytes.NewReader(schematest.ValidateDir(t, res.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 2 {
		t.Fatalf("real run: %d variants, want 2 (error %q)", len(rep.Variants), rep.Error)
	}
	return rep
}

// TestRenderRealRun draws the report of a real short run with every
// renderer, and keeps the made-up sample the other tests draw in step
// with what the runner really writes: its metric keys, skip reasons, span
// names, knobs and observed values are of the kinds a run produces.
func TestRenderRealRun(t *testing.T) {
	rep := realRun(t)
	var hyps []report.Hypothesis
	var reasons, traceIDs []string
	metricKeys := map[string]bool{}
	spans := map[string]bool{} // service/name
	for _, v := range rep.Variants {
		hyps = append(hyps, v.Hypotheses...)
		for k := range v.Metrics {
			metricKeys[k] = true
		}
		for _, e := range v.Exemplars {
			traceIDs = append(traceIDs, e.TraceID)
			for _, s := range e.Spans {
				spans[s.Service+"/"+s.Name] = true
			}
		}
		for _, h := range v.Hypotheses {
			if h.Skipped {
				reasons = append(reasons, h.SkipReason)
			}
		}
	}
	c := rep.Count()
	if c.Passed == 0 || c.Failed == 0 || c.Skipped == 0 || len(metricKeys) == 0 || len(traceIDs) == 0 {
		var b strings.Builder
		report.Text(&b, rep)
		t.Fatalf("the real run lacks what the test draws: %+v, %d metrics, %d exemplars\n%s", c, len(metricKeys), len(traceIDs), b.String())
	}

	out := map[string]string{}
	for name, render := range report.Renderers {
		var buf bytes.Buffer
		if err := render(&buf, rep); err != nil {
			t.Fatalf("%s renderer: %v", name, err)
		}
		out[name] = buf.String()
	}
	for _, h := range hyps {
		if !strings.Contains(out["text"], h.Expr) {
			t.Errorf("text lacks the hypothesis %q", h.Expr)
		}
		if !strings.Contains(out["html"], html.EscapeString(h.Expr)) {
			t.Errorf("html lacks the hypothesis %q", h.Expr)
		}
	}
	for _, r := range reasons {
		if !strings.Contains(out["text"], r) || !strings.Contains(out["html"], html.EscapeString(r)) {
			t.Errorf("text or html lacks the skip reason %q", r)
		}
	}
	for k := range metricKeys {
		if !strings.Contains(out["html"], k) {
			t.Errorf("html lacks the metric %s", k)
		}
	}
	for _, id := range traceIDs {
		if !strings.Contains(out["html"], id) {
			t.Errorf("html lacks the exemplar trace %s", id)
		}
	}
	if want := "Verdict: FAIL"; !strings.Contains(out["text"], want) {
		t.Errorf("text lacks %q", want)
	}
	var ju struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Cases []struct {
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out["junit"]), &ju); err != nil {
		t.Fatalf("junit: %v", err)
	}
	if ju.Tests != c.Total || ju.Failures != c.Failed || ju.Skipped != c.Skipped {
		t.Errorf("junit: tests=%d failures=%d skipped=%d; the report has %+v", ju.Tests, ju.Failures, ju.Skipped, c)
	}
	var junitReasons []string
	for _, s := range ju.Suites {
		for _, cs := range s.Cases {
			if cs.Skipped != nil {
				junitReasons = append(junitReasons, cs.Skipped.Message)
			}
		}
	}
	if slices.Sort(junitReasons); !slices.Equal(junitReasons, slices.Sorted(slices.Values(reasons))) {
		t.Errorf("junit skip messages %q, want the report's %q", junitReasons, reasons)
	}

	// The sample speaks the runner's language.
	sample := report.SampleReport()
	for _, v := range sample.Variants {
		for _, k := range slices.Sorted(maps.Keys(v.Metrics)) {
			if !metricKeys[k] {
				t.Errorf("sample variant %s has metric %q, which a real run does not write", v.Name, k)
			}
		}
		for _, h := range v.Hypotheses {
			switch {
			case h.Skipped && !slices.ContainsFunc(reasons, func(r string) bool { return sameShape(r, h.SkipReason) }):
				t.Errorf("sample skip reason %q is not one a real run gives (%q)", h.SkipReason, reasons)
			case !h.Skipped && !strings.Contains(h.Observed, " = "):
				t.Errorf("sample observed %q is not of the form a real run writes (metric = value)", h.Observed)
			}
		}
		for _, k := range v.Knobs {
			if _, ok := config.Lookup(k.Name); !ok {
				t.Errorf("sample knob %q is not a knob", k.Name)
			}
		}
		for _, e := range v.Exemplars {
			for _, s := range e.Spans {
				if !spans[s.Service+"/"+s.Name] {
					t.Errorf("sample span %s/%s is not one a real run records (%v)", s.Service, s.Name, slices.Sorted(maps.Keys(spans)))
				}
			}
		}
	}
}

// sameShape reports whether two skip reasons are the same sentence up to
// the details a run fills in (from the first figure or parenthesis on, and
// the phase's name).
func sameShape(a, b string) bool {
	shape := func(s string) string {
		if i := strings.IndexAny(s, "(0123456789"); i >= 0 {
			s = s[:i]
		}
		for _, p := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter, "always"} {
			s = strings.ReplaceAll(s, " "+p+" ", " PHASE ")
		}
		return s
	}
	return shape(a) == shape(b)
}
