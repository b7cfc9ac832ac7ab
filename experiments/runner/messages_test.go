package runner

import "testing"

// TestOutOfOrderEndToEnd: on the ledger's link four events in ten are held
// back 1.5 s and two in ten of the others delivered twice. Applied in
// arrival order, late old states set accounts back and the ledger ends
// with accounts behind; applied by version, every account ends at its
// newest state. The faults' counters in report.json show what the NATS
// layer did.
func TestOutOfOrderEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 16-second variants")
	}
	rep := runCatalogue(t, "out-of-order")
	naive, resilient := rep.Variants[0].Metrics, rep.Variants[1].Metrics
	if naive["always.ledger.stale_applied"] < 10 || naive["always.ledger.keys_behind"] < 1 {
		t.Errorf("naive: stale applied %v, accounts behind %v: want late events applied and the ledger ending wrong",
			naive["always.ledger.stale_applied"], naive["always.ledger.keys_behind"])
	}
	if resilient["always.ledger.stale_applied"] != 0 || resilient["always.ledger.keys_behind"] != 0 || resilient["always.ledger.stale_skipped"] < 10 {
		t.Errorf("resilient: stale applied %v, skipped %v, accounts behind %v: want every late event skipped and no account behind",
			resilient["always.ledger.stale_applied"], resilient["always.ledger.stale_skipped"], resilient["always.ledger.keys_behind"])
	}
	for _, v := range rep.Variants {
		if len(v.Faults) != 2 {
			t.Fatalf("%s: faults %+v", v.Name, v.Faults)
		}
		for _, f := range v.Faults {
			c := f.Counters
			if f.Target != "nats-ledger" || c["messages"] < 100 || c["faulted"] == 0 || c["faulted"] >= c["messages"] {
				t.Errorf("%s: fault %s (%s on %s) counters %v: want some of the ledger's deliveries faulted", v.Name, f.Name, f.Kind, f.Target, c)
			}
			if f.Kind == "nats-reorder" && c["overtaken"] == 0 {
				t.Errorf("%s: no event overtook a held one: %v", v.Name, c)
			}
		}
		if d := v.Consistency.Consumers["ledger"].Duplicated; (v.Name == "naive") != (d > 0) {
			t.Errorf("%s: the ledger applied %d orders twice", v.Name, d)
		}
	}
}
