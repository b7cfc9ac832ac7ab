package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestInterruptedAndStoppedReports renders a report interrupted by
// SIGTERM and one whose variant an abort hypothesis stopped: the verdict,
// the exit code and every renderer say so.
func TestInterruptedAndStoppedReports(t *testing.T) {
	r := sampleReport()
	r.Passed = false
	r.Interrupted = &Interruption{Reason: "interrupted by SIGTERM", At: r.StartedAt.Add(12 * time.Second), ExitCode: 143}
	for i := range r.Variants {
		for j := range r.Variants[i].Hypotheses {
			h := &r.Variants[i].Hypotheses[j]
			h.Passed, h.Skipped, h.SkipReason = false, true, "not judged: the run was interrupted"
		}
		r.Variants[i].Passed = false
	}
	if got := r.ExitCode(); got != 143 {
		t.Errorf("exit code %d, want 143", got)
	}
	if got := r.Verdict(); got != "INTERRUPTED" {
		t.Errorf("verdict %s, want INTERRUPTED", got)
	}
	var text, html bytes.Buffer
	if err := Text(&text, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "Verdict: INTERRUPTED — interrupted by SIGTERM") || !strings.Contains(text.String(), "(exit 143)") {
		t.Errorf("text verdict does not say interrupted by SIGTERM, exit 143:\n%s", text.String())
	}
	if !strings.Contains(html.String(), `class="banner interrupted"`) || !strings.Contains(html.String(), "<strong>Interrupted:</strong> interrupted by SIGTERM") {
		t.Error("the HTML report does not show the interruption")
	}
	// A variant whose hypotheses were not judged did not fail.
	if !strings.Contains(text.String(), "Variant naive  INTERRUPTED") || strings.Contains(text.String(), "Variant naive  FAIL") {
		t.Errorf("text names the interrupted variant otherwise than INTERRUPTED:\n%s", text.String())
	}
	if !strings.Contains(html.String(), `<span class="badge interrupted">INTERRUPTED</span>`) || strings.Contains(html.String(), `<span class="badge fail">FAIL</span>`) {
		t.Error("the HTML report badges the interrupted variant otherwise than INTERRUPTED")
	}

	s := sampleReport()
	s.Interrupted = nil
	s.Variants[0].Stopped = &Stop{Hypothesis: "order.error_rate < 50%", Phase: "during", Observed: "order.error_rate = 80%", BreachedOffset: 11.2, StoppedOffset: 11.25}
	text.Reset()
	html.Reset()
	if err := Text(&text, s); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "stopped: abort hypothesis order.error_rate < 50% breached at 11.2s (during phase, observed order.error_rate = 80%); load stopped at 11.3s") {
		t.Errorf("text does not say when and why the variant stopped:\n%s", text.String())
	}
	if !strings.Contains(html.String(), "<strong>Stopped:</strong> abort hypothesis <code>order.error_rate &lt; 50%</code> breached at 11.2s") {
		t.Error("the HTML report does not say when and why the variant stopped")
	}
}
