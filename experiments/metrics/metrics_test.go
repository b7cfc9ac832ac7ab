package metrics

import (
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
)

// TestScalars: report.json gets each value in the unit of its type:
// durations in milliseconds, booleans as 0 or 1, no strings; a metric
// computed from traces is left out of a phase without an order trace.
func TestScalars(t *testing.T) {
	v := NewValues(nil)
	v.Set(During, "order.latency.p99", check.DurationValue(250*time.Millisecond))
	v.Set(During, "order.success_rate", check.NumberValue(0.5))
	v.SetRun("sniffer.payment.plaintext", check.BoolValue(true))
	v.Set(During, "trace.count", check.NumberValue(3))
	v.Set(During, "trace.error_origin", check.StringValue("payment"))
	got := v.Scalars()
	want := map[string]float64{"during.order.latency.p99": 250, "during.order.success_rate": 0.5, "always.sniffer.payment.plaintext": 1}
	if len(got) != len(want) {
		t.Errorf("scalars = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
}

func TestCountBehind(t *testing.T) {
	for metric, want := range map[string]string{
		"retry.payment.amplification": "retries.payment",
		"retry.user.amplification":    "retries.user",
		"retries.payment":             "",
		"retry.payment.attempts":      "",
		"order.latency.p99":           "",
	} {
		got, ok := CountBehind(metric)
		if got != want || ok != (want != "") {
			t.Errorf("CountBehind(%q) = %q, %v; want %q", metric, got, ok, want)
		}
	}
}
