package metrics

import (
	"testing"

	"github.com/fallacies/fallacies/experiments/check"
)

// TestFaultCounters reads every counter any fault's injector recorded,
// under the fault's name, as one whole-run figure; a fault that counted
// nothing has no counter metric.
func TestFaultCounters(t *testing.T) {
	r := &Run{Faults: []Fault{
		{Name: "lossy-payment", Target: "payment", Counters: map[string]uint64{"packets": 5000, "dropped": 50, "rto_timeouts": 3}},
		{Name: "charge-error", Target: "payment", Counters: map[string]uint64{"calls": 200, "faulted": 20}},
		{Name: "slow-user", Target: "user"},
		// A step schedule's second step: the injector's figures for the name.
		{Name: "charge-error", Target: "payment", Counters: map[string]uint64{"calls": 200, "faulted": 20}},
	}}
	v := NewValues(nil)
	faultsFamily.Compute(r, v)
	for name, want := range map[string]float64{
		"fault.lossy-payment.packets": 5000, "fault.lossy-payment.dropped": 50, "fault.lossy-payment.rto_timeouts": 3,
		"fault.charge-error.calls": 200, "fault.charge-error.faulted": 20,
	} {
		got, ok := v.Get(Always, name, "")
		if !ok || got.Num != want {
			t.Errorf("%s = %+v (%v), want %v", name, got, ok, want)
		}
		if info, ok := Lookup(name); !ok || info.Name != "fault.<fault>.<counter>" || !info.WholeRun || info.Type != check.TypeCount {
			t.Errorf("Lookup(%s) = %+v, %v", name, info, ok)
		}
		if _, ok := v.Get(During, name, ""); ok {
			t.Errorf("%s has a during value: it is one figure for the whole run", name)
		}
	}
	if names := v.Names(Always); len(names) != 5 {
		t.Errorf("metrics %v, want the five counters (slow-user counted nothing)", names)
	}
	// A counter any injector adds later is read the same way; a name not
	// written like a fault's is not a metric.
	if _, ok := Lookup("fault.nats-dup.redelivered"); !ok {
		t.Error("fault.nats-dup.redelivered: want a metric")
	}
	for _, bad := range []string{"fault.Lossy.dropped", "fault.lossy", "fault.lossy.dropped.x"} {
		if _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) found, want not found", bad)
		}
	}
	if _, err := check.ParseExpr("fault.lossy-payment.rto_timeouts > 0 and order.errors == 0", Vocabulary); err != nil {
		t.Fatal(err)
	}
}
