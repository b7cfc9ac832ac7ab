package runner

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
)

// jaegerFile is the part of a Jaeger JSON file the tests read.
type jaegerFile struct {
	Data []struct {
		TraceID string `json:"traceID"`
	} `json:"data"`
}

func readJaeger(t *testing.T, b []byte) jaegerFile {
	t.Helper()
	var f jaegerFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("trace file is not Jaeger JSON: %v", err)
	}
	return f
}

// TestReportExplainsItself runs a short latency experiment for real and
// checks that the report says why the variants differ (the mechanisms
// that acted), marks the fault inside the exemplar trace, charts each
// consumer second by second, and keeps only the exemplars' traces unless
// the full export is asked for.
func TestReportExplainsItself(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 5-second variants")
	}
	const latencyMs = 150
	exp := mustParse(t, `
name: explain
fallacy: latency-is-zero
description: 150 ms on order→user
load: { rate: 30/s, duration: 5s }
variants:
  naive: { order.user.timeout: off }
  resilient: { order.user.timeout: 50ms, order.user.fallback: cached-profile }
faults:
  - { name: slow-user, at: 1500ms, for: 2s, target: user, kind: latency, latency: 150ms, direction: downstream }
hypotheses:
  - { when: always, check: "events.lost == 0" }
`)
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir(), FullTraces: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, report.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 2 {
		t.Fatalf("variants = %d, error %q", len(rep.Variants), rep.Error)
	}
	naive, resilient := rep.Variants[0], rep.Variants[1]
	html, err := os.ReadFile(filepath.Join(res.Dir, report.FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := report.Text(&text, &rep); err != nil {
		t.Fatal(err)
	}

	t.Run("mechanisms", func(t *testing.T) {
		find := func(v report.Variant, kind, where string) report.Mechanism {
			for _, m := range v.Mechanisms {
				if m.Kind == kind && m.Where == where {
					return m
				}
			}
			return report.Mechanism{}
		}
		count := func(v report.Variant, kind, where string) int64 { return find(v, kind, where).Count }
		fb, dl := count(resilient, report.MechanismFallback, "order.user"), count(resilient, report.MechanismDeadline, "order.user")
		t.Logf("resilient: %d fallbacks, %d deadlines; naive mechanisms %v", fb, dl, naive.Mechanisms)
		during := resilient.Phases[report.PhaseDuring].Requests
		if fb == 0 || dl < fb || fb > during+5 {
			t.Errorf("resilient: %d fallbacks and %d deadlines on order.user for %d requests during the fault: want fallbacks > 0, deadlines >= fallbacks", fb, dl, during)
		}
		if len(naive.Mechanisms) != 0 {
			t.Errorf("naive mechanisms = %v, want none", naive.Mechanisms)
		}
		m := find(resilient, report.MechanismFallback, "order.user")
		if p := m.Phases; p["during"] == 0 || p["before"]+p["during"]+p["after"] != m.Count {
			t.Errorf("fallbacks by phase %v do not add up to %d, or none during the fault", p, m.Count)
		}
		line := fmtMechanismForTest(m)
		if !strings.Contains(text.String(), "Mechanisms: "+line) || !strings.Contains(string(html), line) {
			t.Errorf("%q is missing from the terminal summary or report.html:\n%s", line, text.String())
		}
		if !strings.Contains(text.String(), "Mechanisms: none acted") || !strings.Contains(string(html), "none acted") {
			t.Errorf("the naive variant does not say that no mechanism acted")
		}
	})

	t.Run("fault inside the trace", func(t *testing.T) {
		var marked, markedBefore int
		for _, ex := range naive.Exemplars {
			for _, sp := range ex.Spans {
				if sp.Fault == "" {
					continue
				}
				if ex.Phase == report.PhaseBefore {
					markedBefore++
				}
				held := 0.0
				for _, h := range sp.Held {
					held += h.DurationMs
				}
				t.Logf("%s %s: %s %s, %.1fms, %.1fms held by %s", ex.Phase, ex.Kind, sp.Service, sp.Name, sp.DurationMs, held, sp.Fault)
				if sp.Fault != "slow-user" || sp.Name != "user.GetUser" || sp.Service != "order" {
					t.Errorf("%s: fault %q marked on %s %s, want slow-user on order's user.GetUser call", ex.Phase, sp.Fault, sp.Service, sp.Name)
				}
				if held > sp.DurationMs+0.01 {
					t.Errorf("held %.1fms of a %.1fms call, want at most the call", held, sp.DurationMs)
				}
				// Inside the fault's window the toxic delays the answer by
				// its latency: at least that long the call was outside the
				// server span. (A call of the after phase may have begun
				// just before the fault came off: only that overlap counts.)
				if ex.Phase == report.PhaseDuring && held < latencyMs*0.95 {
					t.Errorf("held %.1fms of a %.1fms call during the fault, want at least the toxic's %dms", held, sp.DurationMs, latencyMs)
				}
				if ex.Phase == report.PhaseDuring {
					marked++
				}
			}
		}
		if marked == 0 || markedBefore != 0 {
			t.Errorf("fault marked in %d during-phase exemplar spans and %d before-phase ones, want some and none", marked, markedBefore)
		}
		if !strings.Contains(string(html), `class="held"`) || !strings.Contains(string(html), "held by fault slow-user") {
			t.Error("report.html does not draw the held time in a waterfall")
		}
	})

	t.Run("consumer lag", func(t *testing.T) {
		for _, v := range rep.Variants {
			if len(v.Consumers) != 2 {
				t.Fatalf("%s: consumer series %v, want ledger and notification", v.Name, v.Consumers)
			}
			for _, c := range v.Consumers {
				var pub, app int64
				for _, s := range c.Seconds {
					pub += s.Published
					app += s.Applied
					if s.LagEvents < 0 || (s.LagEvents == 0) != (s.LagMs == 0) {
						t.Errorf("%s %s second %d: lag %d events, %.1fms", v.Name, c.Consumer, s.T, s.LagEvents, s.LagMs)
					}
				}
				acked := int64(v.Consistency.Acknowledged)
				t.Logf("%s %s: %d seconds, %d published, %d applied, %d acknowledged", v.Name, c.Consumer, len(c.Seconds), pub, app, acked)
				if pub < acked || app != int64(v.Consistency.Consumers[c.Consumer].Applied) || app < acked {
					t.Errorf("%s %s: %d published, %d applied, consistency says %d applied of %d acknowledged", v.Name, c.Consumer, pub, app, v.Consistency.Consumers[c.Consumer].Applied, acked)
				}
				if last := c.Seconds[len(c.Seconds)-1]; last.LagEvents != 0 {
					t.Errorf("%s %s: %d events behind at the end, after the drain", v.Name, c.Consumer, last.LagEvents)
				}
			}
		}
		for _, id := range []string{`id="chart-consumer-ledger"`, `id="chart-consumer-notification"`} {
			if !strings.Contains(string(html), id) {
				t.Errorf("report.html has no %s", id)
			}
		}
	})

	t.Run("trace files", func(t *testing.T) {
		small, err := os.ReadFile(filepath.Join(res.Dir, FileTraces))
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, tr := range readJaeger(t, small).Data {
			ids[tr.TraceID] = true
		}
		for _, v := range rep.Variants {
			for _, ex := range v.Exemplars {
				if !ids[ex.TraceID] {
					t.Errorf("exemplar %s is not in %s", ex.TraceID, FileTraces)
				}
			}
		}
		f, err := os.Open(filepath.Join(res.Dir, FileFullTraces))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var full bytes.Buffer
		if _, err := full.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		all := readJaeger(t, full.Bytes()).Data
		acked := naive.Consistency.Acknowledged + resilient.Consistency.Acknowledged
		t.Logf("%s: %d traces, %d bytes; %s: %d traces, %d bytes JSON", FileTraces, len(ids), len(small), FileFullTraces, len(all), full.Len())
		// Every order is a trace, and each consumer's work another.
		if len(all) < acked || len(ids) >= len(all)/10 {
			t.Errorf("%d traces in the full export for %d acknowledged orders, %d in %s", len(all), acked, len(ids), FileTraces)
		}
	})
}

// fmtMechanismForTest is how the renderers phrase a mechanism.
func fmtMechanismForTest(m report.Mechanism) string {
	var b bytes.Buffer
	r := report.Report{Variants: []report.Variant{{Name: "x", Mechanisms: []report.Mechanism{m}, Consistency: report.Consistency{Acknowledged: 1}}}}
	report.Text(&b, &r)
	for _, l := range strings.Split(b.String(), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "Mechanisms: "); ok {
			return s
		}
	}
	return "?"
}
