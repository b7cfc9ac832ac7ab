package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestResetTrustsNoJournal names hostile files as reset's journal: each is
// refused at once with exit 2, the file named with what it is, and nothing
// written to it or created; an API that never answers is exit 3 saying
// nothing was removed, never "removed 0 fault(s)".
func TestResetTrustsNoJournal(t *testing.T) {
	dir := t.TempDir()
	api := closedPort(t) // nothing listens: a reset that reached it would say so
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "notes.txt")
	const notes = "my notes, not a journal\n"
	if err := os.WriteFile(garbage, []byte(notes), 0o600); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "run.journal")
	if err := os.WriteFile(journal, []byte(`{"op":"apply","id":"A","api":"http://`+api+`","proxy":"user","handles":["toxic/slow"],"fault":{"name":"slow","kind":"latency"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.journal")

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"dev zero", []string{"--journal", "/dev/zero"}, exitUsage, []string{"/dev/zero", "character device"}},
		{"fifo", []string{"--journal", fifo}, exitUsage, []string{fifo, "FIFO"}},
		{"folder", []string{"--journal", dir}, exitUsage, []string{dir, "folder"}},
		{"not a journal", []string{"--journal", garbage, "--all"}, exitUsage, []string{garbage + ":1", "not a fault journal", "nothing was written"}},
		{"api unreachable, --all", []string{"--all"}, exitTestbed, []string{api, "not reachable", "nothing was removed"}},
		{"api unreachable, missing journal, --all", []string{"--all", "--journal", missing}, exitTestbed, []string{api, "not reachable", "nothing was removed"}},
		{"api unreachable, journal", []string{"--journal", journal}, exitTestbed, []string{api, "not reachable", "still lists 1 fault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, t.Context(), append([]string{"reset", "--toxiproxy-api", api}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", r.code, tt.code, r.stdout, r.stderr)
			}
			oneLine(t, "stderr", r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stdout, "removed") {
				t.Errorf("stdout %q claims a removal", r.stdout)
			}
			if r.took > 5*time.Second {
				t.Errorf("took %v: a refusal should return at once", r.took)
			}
		})
	}
	if b, err := os.ReadFile(garbage); err != nil || string(b) != notes {
		t.Errorf("the file that is not a journal was changed: %q, %v", b, err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("reset created a journal at %s", missing)
	}
	if b, _ := os.ReadFile(journal); strings.Count(string(b), "\n") != 1 {
		t.Errorf("a reset that reached nothing wrote to the journal:\n%s", b)
	}
}
