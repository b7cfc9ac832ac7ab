package main

import (
	"os"
	"testing"
)

func TestTerminalWidth(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "not-a-terminal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv("COLUMNS", "")
	if got := terminalWidth(f); got != 80 {
		t.Errorf("a file, no COLUMNS: width %d, want 80", got)
	}
	t.Setenv("COLUMNS", "132")
	if got := terminalWidth(f); got != 132 {
		t.Errorf("COLUMNS=132: width %d, want 132", got)
	}
	t.Setenv("COLUMNS", "wide")
	if got := terminalWidth(f); got != 80 {
		t.Errorf("COLUMNS=wide: width %d, want 80", got)
	}
	if got := windowColumns(f); got != 0 {
		t.Errorf("a file has no window: %d columns", got)
	}
}
