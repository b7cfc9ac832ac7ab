package runner

import (
	"path/filepath"
	"testing"
	"time"
)

// TestNewReportDirNeverReusesAFolder starts three runs of one experiment
// in the same second: each gets a folder of its own.
func TestNewReportDirNeverReusesAFolder(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "reports")
	at := time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC)
	want := []string{"latency-20261130-073005", "latency-20261130-073005-2", "latency-20261130-073005-3"}
	for _, w := range want {
		dir, err := newReportDir(parent, "latency", at)
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(dir); got != w {
			t.Errorf("folder %s, want %s", got, w)
		}
	}
}
