package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report/schematest"
	"golang.org/x/net/html"
)

// A fault whose removal failed is loud in every renderer: on its fault in
// report.json (removal_error, rolled_back, within the schema), as REMOVAL
// FAILED on its variant in the text report, and on the variant's card in
// the HTML page, whichever variant it was in.
func TestFailedRemovalIsShown(t *testing.T) {
	for _, rolledBack := range []bool{true, false} {
		r := sampleReport()
		v := &r.Variants[1] // not the first: the faults table shows the first variant's
		v.Faults[0].RemovalError = "toxiproxy: delete toxic: 500 internal error"
		v.Faults[0].RolledBack = rolledBack
		if !rolledBack {
			v.Error = "remove faults: remove fault " + v.Faults[0].Name + ": 500 internal error (it may still be on)"
		}
		var js bytes.Buffer
		if err := JSON(&js, r); err != nil {
			t.Fatal(err)
		}
		if err := schematest.Check(js.Bytes()); err != nil {
			t.Errorf("rolledBack=%v: report.json breaks the schema: %v", rolledBack, err)
		}
		if !strings.Contains(js.String(), `"removal_error": "toxiproxy: delete toxic: 500 internal error"`) ||
			strings.Contains(js.String(), `"rolled_back": true`) != rolledBack {
			t.Errorf("rolledBack=%v: report.json does not carry the failed removal", rolledBack)
		}
		var text bytes.Buffer
		if err := Text(&text, r); err != nil {
			t.Fatal(err)
		}
		want := "REMOVAL FAILED: fault " + v.Faults[0].Name
		outcome := "the second attempt took it off"
		if !rolledBack {
			outcome = "it may still be on"
		}
		if !strings.Contains(text.String(), want) || !strings.Contains(text.String(), outcome) {
			t.Errorf("rolledBack=%v: text lacks %q and %q:\n%s", rolledBack, want, outcome, text.String())
		}
		if !rolledBack && r.ExitCode() != 3 {
			t.Errorf("exit code %d, want 3 for a fault that could not be taken off", r.ExitCode())
		}
		doc := parseHTML(t, renderHTML(t, r))
		found := false
		walk(doc, func(n *html.Node) {
			if label, _ := attr(n, "aria-label"); n.Data == "section" && label == "variant "+v.Name {
				walk(n, func(p *html.Node) {
					if hasClass(p, "removal") && strings.Contains(textOf(p), "Removal failed: fault "+v.Faults[0].Name) && strings.Contains(textOf(p), outcome) {
						found = true
					}
				})
			}
		})
		if !found {
			t.Errorf("rolledBack=%v: the HTML card of variant %s does not show the failed removal", rolledBack, v.Name)
		}
	}
	// rolled_back without removal_error is not a report.
	r := sampleReport()
	r.Variants[0].Faults[0].RolledBack = true
	var js bytes.Buffer
	if err := JSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if err := schematest.Check(js.Bytes()); err == nil {
		t.Errorf("the schema takes rolled_back without removal_error")
	}
}
