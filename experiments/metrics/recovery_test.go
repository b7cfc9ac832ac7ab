package metrics

import (
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
)

func TestRecoveryTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int, ok bool, latMs int) check.Attempt {
		o := check.OutcomeFailed
		if ok {
			o = check.OutcomeAcknowledged
		}
		return check.Attempt{Intended: t0.Add(time.Duration(ms) * time.Millisecond), Outcome: o, Latency: time.Duration(latMs) * time.Millisecond}
	}
	from, end := t0.Add(time.Second), t0.Add(10*time.Second)
	tests := []struct {
		name    string
		history []check.Attempt
		want    time.Duration
	}{
		{"nothing failed", []check.Attempt{at(500, true, 1), at(1500, true, 1)}, 0},
		{"failures before the fault do not count", []check.Attempt{at(500, false, 1), at(1500, true, 1)}, 0},
		{"outage, then back", []check.Attempt{at(900, true, 1), at(1100, false, 1), at(1200, false, 1), at(1300, true, 5), at(1400, true, 1)}, 305 * time.Millisecond},
		{"never back: the rest of the run", []check.Attempt{at(1100, false, 1), at(5000, false, 1)}, 9 * time.Second},
		{"a slow success sent earlier does not hide a faster one", []check.Attempt{at(1100, false, 1), at(1200, true, 900), at(1300, true, 10)}, 310 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RecoveryTime(tt.history, from, end); got != tt.want {
				t.Fatalf("RecoveryTime = %v, want %v", got, tt.want)
			}
		})
	}
}
