package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
)

// runCatalogue runs the catalogue experiment name as its file says and
// returns its report.json, checked against the report schema.
func runCatalogue(t *testing.T, name string) report.Report {
	t.Helper()
	exp, err := definition.Load(filepath.Join("..", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 2 || rep.Variants[0].Name != "naive" || rep.Variants[1].Name != "resilient" {
		t.Fatalf("variants %+v, error %q", rep.Variants, rep.Error)
	}
	for _, v := range rep.Variants {
		for _, h := range v.Hypotheses {
			if !h.Passed {
				t.Errorf("%s: hypothesis %q failed: %s", v.Name, h.Name, h.Observed)
			}
		}
	}
	return rep
}

// TestRetryStormEndToEnd: 30% of Charge calls fail on the link; without a
// budget order sends each failed call again (amplification near
// 1/(1-0.3)), with one it stays at most 1.3.
func TestRetryStormEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 16-second variants")
	}
	rep := runCatalogue(t, "retry-storm")
	naive, resilient := rep.Variants[0].Metrics, rep.Variants[1].Metrics
	if a := naive["during.retry.payment.amplification"]; a < 1.3 || a > 1.7 {
		t.Errorf("naive amplification %.3f, want about 1.43", a)
	}
	if a := resilient["during.retry.payment.amplification"]; a > 1.3 || a <= 1 {
		t.Errorf("resilient amplification %.3f, want above 1 and at most 1.3", a)
	}
	// The budget grants 0.2 retries per order and a burst of 10, each
	// succeeding 7 times in 10: about 85% succeed, 1.8 points of standard
	// deviation over 400 orders. The client's 5 s deadline and the layer
	// put on before the load keep the machine's load out of it.
	if s := resilient["during.order.success_rate"]; s >= 0.99 || s < 0.75 {
		t.Errorf("resilient success during the fault %.3f: want most orders, not all (the budget lets some failures through)", s)
	}
	// The fault as applied: on the payment link, from its file.
	for _, v := range rep.Variants {
		if len(v.Faults) != 1 || v.Faults[0].Kind != "grpc-error" || v.Faults[0].Target != "payment" {
			t.Fatalf("%s: faults %+v", v.Name, v.Faults)
		}
	}
}

// TestLostResponseEndToEnd: a quarter of Charge answers are lost after
// payment charged; a key per attempt charges again, the order id as the
// key does not.
func TestLostResponseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 16-second variants")
	}
	rep := runCatalogue(t, "lost-response")
	naive, resilient := rep.Variants[0], rep.Variants[1]
	if d := naive.Consistency.Payments.Duplicated; d < 20 {
		t.Errorf("naive: %d orders charged twice, want at least 20", d)
	}
	// An order whose every attempt lost its answer failed for the client
	// but was charged (once): a ghost, at most one per failed order.
	if p := resilient.Consistency.Payments; p.Duplicated != 0 || p.Lost != 0 || p.Ghost > int(resilient.Metrics["always.order.errors"]) {
		t.Errorf("resilient payments %+v (%v failed orders), want no order charged twice", p, resilient.Metrics["always.order.errors"])
	}
	if r := resilient.Metrics["during.retries.payment"]; r < 20 {
		t.Errorf("resilient sent %v retries, want the lost answers retried", r)
	}
}
