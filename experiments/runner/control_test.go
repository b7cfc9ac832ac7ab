package runner

import (
	"encoding/json"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
)

// A control run follows the faults' schedule and injects nothing: the
// during phase and the fault's window are there, orders are as fast as
// before (a 1 s fault on every answer of user would hold each order 1 s),
// the hypothesis the fault makes true fails, and the report says it was
// a control, with no fault effect.
func TestControlRunInjectsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 4-second variant")
	}
	exp := mustParse(t, `
name: control
fallacy: latency-is-zero
description: a 1 s fault on order→user, not injected
load: { rate: 40/s, duration: 4s }
variants:
  naive: { order.user.timeout: off }
faults:
  - { name: slow-user, at: 1s, for: 2s, target: user, kind: latency, latency: 1s, direction: downstream }
hypotheses:
  - { when: during, variant: naive, check: "order.latency.p50 >= 500ms", name: the fault bit }
`)
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir(), Control: true})
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(schematest.ValidateDir(t, res.Dir), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Control || rep.FaultEffect != nil || len(rep.Variants) != 1 {
		t.Fatalf("control %v, fault effect %+v, %d variants", rep.Control, rep.FaultEffect, len(rep.Variants))
	}
	v := rep.Variants[0]
	if len(v.Faults) != 1 || v.Faults[0].Name != "slow-user" || v.Faults[0].EndOffset-v.Faults[0].StartOffset < 1.5 {
		t.Errorf("faults %+v: want slow-user's 2 s window, as scheduled", v.Faults)
	}
	p50, ok := v.Metrics["during.order.latency.p50"]
	if !ok || p50 >= 500 {
		t.Errorf("during p50 %v ms (present %v): want the orders of a system without the 1 s fault", p50, ok)
	}
	if _, ok := v.Metrics["always.while.user.order.latency.p50"]; !ok {
		t.Errorf("no while.user phase in a control: %v", v.Metrics)
	}
	if h := v.Hypotheses[0]; h.Passed || h.Verdict != report.VerdictFail {
		t.Errorf("the fault bit held without the fault: %+v", h)
	}
}
