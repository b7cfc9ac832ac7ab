package report

import (
	"bytes"
	"strings"
	"testing"
)

// An inconclusive hypothesis is neither a pass nor a failure: exit 4,
// INCONCLUSIVE in the text, skipped with its reason in JUnit; a fault
// without effect is said in capitals.
func TestInconclusiveAndNoEffect(t *testing.T) {
	r := inconclusiveOnlyReport(false)
	h := &r.Variants[1].Hypotheses[0]
	h.Observed = "order.latency.p99 = 243.7ms [220ms, 266ms] < 250ms"
	h.Trials = []HypothesisTrial{{1, true, "a"}, {2, true, "b"}, {3, false, "c"}}
	r.FaultEffect = &FaultEffect{Variant: "naive", Alpha: 0.05, Effects: []Effect{{Metric: "order.latency.p50", Compare: "during vs before", Unit: "ms", Base: 3, Value: 3.1, P: 0.6, Method: "rank-sum over seconds"}}}

	if c := r.Count(); c.Inconclusive != 1 || c.Failed != 0 {
		t.Fatalf("counts %+v", c)
	}
	if r.ExitCode() != ExitCodeInconclusive || r.Verdict() != "INCONCLUSIVE" {
		t.Errorf("exit %d, verdict %s", r.ExitCode(), r.Verdict())
	}
	var text bytes.Buffer
	if err := Text(&text, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INCONCLUSIVE", "the interval straddles the bound (held in 2 of 3 trials)", "3 trials per variant", "NO EFFECT THE FAULT HAD NO MEASURABLE EFFECT on variant naive", "Verdict: INCONCLUSIVE", "(exit 4)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var junit bytes.Buffer
	if err := JUnit(&junit, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `<skipped message="inconclusive over 3 trials (held in 2 of 3 trials): order.latency.p99 = 243.7ms [220ms, 266ms] &lt; 250ms straddles the bound`) {
		t.Errorf("junit.xml:\n%s", junit.String())
	}
	// A report of an older version reads with verdicts from passed/skipped.
	old := sampleReport()
	old.Trials = 0
	n := Normalize(old)
	if n.Trials != 1 || n.Variants[0].Hypotheses[0].Verdict == "" {
		t.Errorf("old report normalized: trials %d, verdict %q", n.Trials, n.Variants[0].Hypotheses[0].Verdict)
	}
}

// A control's text and HTML reports say that no fault was injected;
// another's do not.
func TestTextSaysControl(t *testing.T) {
	for _, control := range []bool{false, true} {
		r := sampleReport()
		r.Control = control
		var text bytes.Buffer
		if err := Text(&text, r); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(text.String(), "CONTROL: the faults' schedule followed, no fault injected"); got != control {
			t.Errorf("control %v: the text says so %v:\n%s", control, got, text.String())
		}
		var html bytes.Buffer
		if err := HTML(&html, r); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(html.String(), "<strong>Control:</strong>"); got != control {
			t.Errorf("control %v: the HTML says so %v", control, got)
		}
	}
}
