package runner

import (
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
)

// TestOnlyVariantsAndRateFactor: a soak's runner options run just the
// named variant, at a multiple of the file's rate (steps included).
func TestOnlyVariantsAndRateFactor(t *testing.T) {
	exp := mustParse(t, `
name: select
fallacy: latency-is-zero
description: two variants, one selected
load: { rate: 10/s, duration: 2s, steps: [ { at: 1s, rate: 20/s } ] }
variants:
  naive: {}
  resilient: { order.user.timeout: 1s }
hypotheses:
  - { when: always, check: "events.lost == 0" }
`)
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir(), OnlyVariants: []string{"resilient"}, RateFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Variants) != 1 || res.Report.Variants[0].Name != "resilient" {
		t.Fatalf("variants = %+v, want only resilient", res.Report.Variants)
	}
	// 1 s at 30/s then 1 s at 60/s: 90 arrivals, sent or dropped.
	v := res.Report.Variants[0]
	sent := requests(v) + total(v, func(p report.Phase) int64 { return p.Dropped })
	if sent < 85 || sent > 95 {
		t.Errorf("%d arrivals, want about 90 (3 × (10 + 20))", sent)
	}

	_, err = Run(t.Context(), exp, Options{ReportsDir: t.TempDir(), OnlyVariants: []string{"tuned"}})
	if err == nil || !strings.Contains(err.Error(), "no variant named tuned") {
		t.Errorf("err = %v, want no variant named tuned", err)
	}
}
