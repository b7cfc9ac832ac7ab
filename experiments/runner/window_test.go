package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/store"
	"github.com/fallacies/fallacies/topology"
)

// TestWindowOverflowIsNotJudged runs against a system whose services keep
// only their 40 most recent records. A run of about 100 orders outgrows
// the windows: the runner must fail as a testbed failure naming the
// windows and what they forgot, never report lost payments. A following
// run of 10 orders fits, though the windows had forgotten earlier runs'
// records before it: it must be judged, and nothing lost.
func TestWindowOverflowIsNotJudged(t *testing.T) {
	defer func(n int) { store.RetainRecords = n }(store.RetainRecords)
	store.RetainRecords = 40
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Stop(context.Background()) })
	ep := topo.Endpoints()
	run := func(rate, duration string) (report.Report, error) {
		t.Helper()
		src := `
name: window
fallacy: network-is-reliable
description: more orders than the services keep
load: { rate: ` + rate + `, duration: ` + duration + `, drain: 2s }
variants: { only: {} }
hypotheses:
  - { when: always, check: "payments.lost == 0" }
`
		res, err := Run(t.Context(), mustParse(t, src), Options{Target: &ep, ReportsDir: t.TempDir()})
		if res == nil {
			t.Fatalf("no result: %v", err)
		}
		return readReport(t, res.Dir), err
	}

	rep, err := run("40/s", "2500ms")
	if !errors.Is(err, ErrTestbed) {
		t.Fatalf("a run that outgrew the windows: error %v, want a testbed failure", err)
	}
	if rep.Passed || len(rep.Variants) != 1 {
		t.Fatalf("report passed %v with %d variants, want a failed one", rep.Passed, len(rep.Variants))
	}
	msg := rep.Variants[0].Error
	for _, want := range []string{"windows", "payment forgot", "ledger forgot", "notification forgot"} {
		if !strings.Contains(msg, want) {
			t.Errorf("variant error %q does not say %q", msg, want)
		}
	}
	for _, h := range rep.Variants[0].Hypotheses {
		if h.Passed {
			t.Errorf("hypothesis %s passed on records the services forgot", h.Expr)
		}
	}

	rep, err = run("10/s", "1s")
	if err != nil {
		t.Fatalf("a run that fits the windows after earlier ones overflowed them: %v", err)
	}
	c := rep.Variants[0].Consistency
	if !rep.Passed || c.Acknowledged == 0 || c.Lost != 0 || c.Payments.Lost != 0 {
		t.Errorf("a run that fits: passed %v, acknowledged %d, lost %d, payments lost %d; want passed and nothing lost",
			rep.Passed, c.Acknowledged, c.Lost, c.Payments.Lost)
	}
}
