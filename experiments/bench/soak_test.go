package bench

import (
	"os"
	"strconv"
	"testing"
)

// TestLoadAverage checks that the soak's load column is the 1-minute load
// average where the machine has one.
func TestLoadAverage(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		if got := loadAverage(); got != "" {
			t.Errorf("no /proc/loadavg: loadAverage() = %q, want empty", got)
		}
		return
	}
	got := loadAverage()
	if v, err := strconv.ParseFloat(got, 64); err != nil || v < 0 {
		t.Errorf("loadAverage() = %q, want a non-negative number", got)
	}
}
