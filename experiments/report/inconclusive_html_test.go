package report

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// inconclusiveOnlyReport is the sample report with every hypothesis held
// except one of variant resilient, which is inconclusive: with trials
// its interval straddles the bound, else it was not judged after a late
// removal. No hypothesis failed: the run's exit code is 4.
func inconclusiveOnlyReport(notJudged bool) *Report {
	r := sampleReport()
	r.Trials = 3
	for i := range r.Variants {
		v := &r.Variants[i]
		v.Passed = true
		for j := range v.Hypotheses {
			h := &v.Hypotheses[j]
			if !h.Skipped {
				h.Passed, h.Verdict = true, VerdictPass
			}
		}
	}
	h := &r.Variants[1].Hypotheses[0]
	h.Passed, h.Skipped, h.Verdict = false, false, VerdictInconclusive
	if notJudged {
		r.Trials = 1
		h.SkipReason = "the after phase kept 2s of its 10s after a late fault removal"
	}
	r.Variants[1].Passed, r.Passed = false, false
	return r
}

// The HTML page says INCONCLUSIVE wherever the text report does, for a
// variant whose hypotheses held or were inconclusive (none failed): its
// card, its badges and the banner, never FAIL.
func TestHTMLInconclusiveVariantBadge(t *testing.T) {
	for _, notJudged := range []bool{false, true} {
		r := inconclusiveOnlyReport(notJudged)
		if r.ExitCode() != ExitCodeInconclusive {
			t.Fatalf("exit code %d, want %d", r.ExitCode(), ExitCodeInconclusive)
		}
		var text bytes.Buffer
		if err := Text(&text, r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "Variant resilient  INCONCLUSIVE") {
			t.Fatalf("text report does not call variant resilient INCONCLUSIVE:\n%s", text.String())
		}
		doc := parseHTML(t, renderHTML(t, r))
		var card *html.Node
		var badges []string
		walk(doc, func(n *html.Node) {
			if label, _ := attr(n, "aria-label"); n.Data == "section" && label == "variant resilient" {
				card = n
			}
		})
		if card == nil {
			t.Fatal("no card for variant resilient")
		}
		if !hasClass(card, "inconclusive") || hasClass(card, "fail") {
			v, _ := attr(card, "class")
			t.Errorf("notJudged=%v: card class %q, want inconclusive", notJudged, v)
		}
		walk(card, func(n *html.Node) {
			if hasClass(n, "badge") {
				badges = append(badges, textOf(n))
				if !hasClass(n, "inconclusive") {
					v, _ := attr(n, "class")
					t.Errorf("notJudged=%v: variant badge class %q, want inconclusive", notJudged, v)
				}
			}
		})
		if len(badges) != 1 || badges[0] != "INCONCLUSIVE" {
			t.Errorf("notJudged=%v: variant badges %q, want [INCONCLUSIVE]", notJudged, badges)
		}
		// The charts' captions carry the variant's badge too.
		walk(doc, func(n *html.Node) {
			if n.Data != "figcaption" || !strings.Contains(textOf(n), "resilient") {
				return
			}
			if got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(textOf(n)), "resilient")); got != "INCONCLUSIVE" {
				t.Errorf("notJudged=%v: chart caption badge %q, want INCONCLUSIVE", notJudged, got)
			}
		})
		var banner *html.Node
		walk(doc, func(n *html.Node) {
			if n.Data == "header" && hasClass(n, "banner") {
				banner = n
			}
		})
		if banner == nil || !hasClass(banner, "inconclusive") {
			t.Errorf("notJudged=%v: banner is not inconclusive", notJudged)
		}
		if out := string(renderHTML(t, r)); !strings.Contains(out, "1 inconclusive") {
			t.Errorf("notJudged=%v: the counts do not say 1 inconclusive", notJudged)
		}
	}
}

// A suite whose reports held or were inconclusive (exit 4, none failed)
// is INCONCLUSIVE in its summary line, not FAIL; one failed report makes
// it FAIL.
func TestSuiteTextInconclusive(t *testing.T) {
	passed := sampleReport()
	for i := range passed.Variants {
		v := &passed.Variants[i]
		v.Passed = true
		for j := range v.Hypotheses {
			if h := &v.Hypotheses[j]; !h.Skipped {
				h.Passed, h.Verdict = true, VerdictPass
			}
		}
	}
	passed.Passed = true
	s := &Suite{Name: "s", Reports: []*Report{passed, inconclusiveOnlyReport(false)}}
	var out bytes.Buffer
	if err := SuiteText(&out, s); err != nil {
		t.Fatal(err)
	}
	last := lastLine(out.String())
	if !strings.HasPrefix(last, "INCONCLUSIVE ") || strings.Contains(last, "FAIL") {
		t.Errorf("suite line %q, want INCONCLUSIVE", last)
	}
	s.Reports = append(s.Reports, sampleReport()) // a hypothesis failed
	out.Reset()
	if err := SuiteText(&out, s); err != nil {
		t.Fatal(err)
	}
	if last := lastLine(out.String()); !strings.HasPrefix(last, "FAIL ") {
		t.Errorf("suite line %q, want FAIL", last)
	}
}

// A suite where one experiment's testbed failed with no report at all
// (Suite.Error) and another was inconclusive is ERROR in its summary
// line, as its exit code 3: a testbed failure wins over inconclusive and
// over a failed hypothesis.
func TestSuiteTextTestbedFailureWins(t *testing.T) {
	s := &Suite{Name: "s", Reports: []*Report{inconclusiveOnlyReport(false)}, Error: "topology: start embedded: listen tcp: address in use"}
	var out bytes.Buffer
	if err := SuiteText(&out, s); err != nil {
		t.Fatal(err)
	}
	if last := lastLine(out.String()); !strings.HasPrefix(last, "ERROR ") || !strings.Contains(last, "address in use") {
		t.Errorf("suite line %q, want ERROR naming the testbed failure", last)
	}
	s.Reports = append(s.Reports, sampleReport()) // a hypothesis failed
	out.Reset()
	if err := SuiteText(&out, s); err != nil {
		t.Fatal(err)
	}
	if last := lastLine(out.String()); !strings.HasPrefix(last, "ERROR ") {
		t.Errorf("suite line %q, want ERROR", last)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
