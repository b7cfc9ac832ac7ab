package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, sampleReport()); err != nil {
		t.Fatalf("Text: %v", err)
	}
	out := buf.String()
	for _, want := range []string{
		"Experiment latency (latency-is-zero)",
		"Variant naive  PASS",
		"Variant resilient  FAIL",
		"knobs: order.user.timeout=100ms order.user.fallback=cached-profile order.user.breaker=on",
		"user-latency  latency  user  downstream  10s–20s  jitter=50 latency=300",
		"Load: achieved 49.9/s of 50.0/s (-0.20%) · sent 1500 · dropped 0 · send lag p50 0.45ms p99 1.13ms max 2.40ms",
		"Consistency: acknowledged 1473 · lost 0 · duplicated 0 · ghost 2 · recovered 27 · unexpected 0",
		"notification: applied 1473 · lost 0 · duplicated 1 · unexpected 0",
		"payments: lost 0 · duplicated 0 · ghost 2",
		"order.user: closed→open at 11.2s, open→half-open at 16.2s",
		"b7ad6b7169203331b7ad6b7169203331",
		"UNAVAILABLE 19, DEADLINE_EXCEEDED 6 (+1 more)",
		"Verdict: FAIL — 1 of 7 checks failed: 6 hypotheses × the variants they apply to (exit 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return l
			}
		}
		t.Errorf("no line starting with %q", prefix)
		return ""
	}
	if l := find("FAIL  during"); !strings.Contains(l, "the fix held: order.latency.p99 < 100ms") ||
		!strings.HasSuffix(l, "observed order.latency.p99 = 142ms, expected order.latency.p99 < 100ms") {
		t.Errorf("failed hypothesis line = %q", l)
	}
	if l := find("SKIP  after"); !strings.HasSuffix(l, "skipped: not checked: the run was stopped at 12.4s by the abort hypothesis order.success_rate >= 99%") {
		t.Errorf("skipped hypothesis line = %q", l)
	}
	if l := find("during  500       94.6%"); !strings.Contains(l, "142ms") {
		t.Errorf("phase row = %q", l)
	}
	// The phase table is aligned: the REQUESTS column starts at the same
	// offset in the header and in every row.
	header := find("PHASE")
	col := strings.Index(header, "REQUESTS")
	for _, p := range []string{"before  ", "during  ", "after   "} {
		if l := find(p + " "); len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q not aligned with header %q", l, header)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("plain text has ANSI escapes")
	}
}

func TestTextColor(t *testing.T) {
	var buf bytes.Buffer
	if err := TextWith(&buf, sampleReport(), TextOptions{Color: true}); err != nil {
		t.Fatalf("TextWith: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, ansiRed+"FAIL"+ansiReset) || !strings.Contains(out, ansiGreen+"PASS"+ansiReset) || !strings.Contains(out, ansiYellow+"SKIP"+ansiReset) {
		t.Errorf("coloured text lacks coloured statuses:\n%q", out)
	}
}

func TestTextVerdicts(t *testing.T) {
	pass := &Report{Experiment: "ok", Passed: true, Variants: []Variant{{Name: "a", Passed: true, Hypotheses: []Hypothesis{
		{Expr: "x", Phase: PhaseBefore, Passed: true}, {Expr: "y", Phase: PhaseAfter, Skipped: true}}}}}
	broken := &Report{Experiment: "bad", Variants: []Variant{{Name: "a", Error: "inject fault cut: refused"}}}
	tests := []struct {
		name string
		r    *Report
		want string
		code int
	}{
		{"pass", pass, "Verdict: PASS — all 1 hypotheses held (1 skipped) (exit 0)", 0},
		{"fail", sampleReport(), "Verdict: FAIL — 1 of 7 checks failed: 6 hypotheses × the variants they apply to (exit 1)", 1},
		{"error", broken, "Verdict: ERROR — the testbed failed: variant a: inject fault cut: refused (exit 3)", 3},
		{"not passed without failures", &Report{Experiment: "odd"}, "Verdict: FAIL — the run did not pass (exit 1)", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.ExitCode(); got != tt.code {
				t.Errorf("ExitCode = %d, want %d", got, tt.code)
			}
			var buf bytes.Buffer
			if err := Text(&buf, tt.r); err != nil {
				t.Fatalf("Text: %v", err)
			}
			if !strings.Contains(buf.String(), tt.want) {
				t.Errorf("text lacks %q:\n%s", tt.want, buf.String())
			}
		})
	}
}

func TestSuiteText(t *testing.T) {
	ok := &Report{Experiment: "bandwidth", Passed: true, DurationSeconds: 12}
	s := &Suite{Name: "ci", Reports: []*Report{sampleReport(), ok}, DurationSeconds: 44}
	var buf bytes.Buffer
	if err := SuiteText(&buf, s); err != nil {
		t.Fatalf("SuiteText: %v", err)
	}
	out := buf.String()
	for _, want := range []string{"Experiment latency", "Experiment bandwidth", "Suite ci: 2 experiments in 44s", "FAIL  latency", "PASS  bandwidth", "FAIL 1 of 2 experiments did not pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("suite text lacks %q:\n%s", want, out)
		}
	}
}

// failWriter fails every write after the first n bytes.
type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

func TestRenderers(t *testing.T) {
	var names []string
	for name := range Renderers {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"html", "json", "junit", "text"}) {
		t.Fatalf("renderers = %v", names)
	}
	for name, render := range Renderers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render(&buf, sampleReport()); err != nil || buf.Len() < 500 {
				t.Errorf("render: %v, %d bytes", err, buf.Len())
			}
			if err := render(&failWriter{n: 100}, sampleReport()); !errors.Is(err, errDiskFull) {
				t.Errorf("render to a failing writer: %v, want %v", err, errDiskFull)
			}
		})
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports", "latency-20260314T092653")
	if err := WriteDir(dir, sampleReport()); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{FileJUnit, FileHTML, FileJSON}) {
		t.Errorf("files = %v, want exactly report.html, report.json, junit.xml", names)
	}
	f, err := os.Open(filepath.Join(dir, FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Decode(f)
	if err != nil || r.Experiment != "latency" || len(r.Variants) != 2 {
		t.Errorf("report.json reads back as %+v, %v", r, err)
	}
	x, err := os.ReadFile(filepath.Join(dir, FileJUnit))
	if err != nil {
		t.Fatal(err)
	}
	if doc := parseJUnit(t, x); doc.Tests != 8 {
		t.Errorf("junit.xml has %d tests, want 8", doc.Tests)
	}
	h, err := os.ReadFile(filepath.Join(dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(h, []byte("<svg")) {
		t.Errorf("report.html has no chart")
	}
}

func TestWriteDirError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(filepath.Join(file, "sub"), sampleReport())
	if err == nil || !strings.Contains(err.Error(), "create report dir") {
		t.Errorf("WriteDir under a file: %v, want a create report dir error", err)
	}
}

var _ io.Writer = (*failWriter)(nil)

func TestTextMechanisms(t *testing.T) {
	ran := Consistency{Acknowledged: 10}
	for _, tt := range []struct {
		name string
		v    Variant
		want string // "" means no Mechanisms line
	}{
		{"acted", Variant{Name: "r", Passed: true, Consistency: ran, Mechanisms: []Mechanism{
			{Kind: MechanismFallback, Where: "order.user", Count: 494},
			{Kind: MechanismDuplicateSkipped, Where: "ledger", Count: 3},
		}}, "  Mechanisms: 494 fallbacks served on order.user · 3 duplicates skipped by ledger\n"},
		{"by phase", Variant{Name: "r", Passed: true, Consistency: ran, Mechanisms: []Mechanism{
			{Kind: MechanismFallback, Where: "order.user", Count: 494, Phases: map[string]int64{"before": 0, "during": 494, "after": 0}},
			{Kind: MechanismRetry, Where: "order.payment", Count: 7, Phases: map[string]int64{"before": 2, "during": 5}},
		}}, "  Mechanisms: 494 fallbacks served on order.user, all during the fault · 7 retries sent on order.payment (before 2 · during 5)\n"},
		{"none acted", Variant{Name: "n", Passed: true, Consistency: ran}, "  Mechanisms: none acted"},
		{"never read (aborted before the services were read)", Variant{Name: "a"}, ""},
		{"testbed error", Variant{Name: "e", Error: "boom", Consistency: ran}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Text(&buf, &Report{Experiment: "x", Variants: []Variant{tt.v}}); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if tt.want == "" && strings.Contains(got, "Mechanisms:") {
				t.Errorf("a variant whose mechanisms were never read shows a Mechanisms line:\n%s", got)
			}
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("want %q in:\n%s", tt.want, got)
			}
		})
	}
}
