package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults"
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

// TestResetJournalOfEveryInjector reads one journal holding the faults of
// two injectors: a fault of an injector this binary does not know is
// refused (exit 2, nothing reset, nothing written); the journals of the
// older two-file layout (network faults in FILE, container faults in
// FILE.containers) are both reset, the container fault through the
// container injector (a project that is gone counts as reset).
func TestResetJournalOfEveryInjector(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.journal",
		`{"op":"apply","id":"A","injector":"toxiproxy","at":"http://127.0.0.1:1","fault":{"Name":"slow","Kind":"latency","Target":"user"},"handles":["toxic/slow"]}`,
		`{"op":"apply","id":"B","injector":"warp","at":"somewhere","fault":{"Name":"bent","Kind":"warp","Target":"user"}}`)
	r := cli(t, t.Context(), "reset", "--journal", unknown)
	if r.code != exitUsage || !strings.Contains(r.stderr, `injector "warp", which this fallacies does not know; nothing was reset`) {
		t.Errorf("unknown injector: exit %d, stderr %q; want exit 2 naming the injector", r.code, r.stderr)
	}
	oneLine(t, "stderr", r.stderr)
	if b, _ := os.ReadFile(unknown); strings.Count(string(b), "\n") != 2 {
		t.Errorf("a refused reset wrote to the journal:\n%s", b)
	}

	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no usable Docker engine: %v", err)
	}
	old := write("old.journal", `{"op":"apply","id":"N","api":"http://127.0.0.1:1","proxy":"user","handles":["toxic/slow"],"fault":{"Name":"slow","Kind":"latency","Target":"user"}}`, `{"op":"removed","id":"N"}`)
	write("old.journal.containers", `{"op":"apply","id":"C","project":"fallacies-reset-test-gone","fault":{"Name":"hold","Kind":"container-pause","Target":"payment"}}`)
	r = cli(t, t.Context(), "reset", "--journal", old)
	if r.code != exitOK || !strings.Contains(r.stdout, "lists no network fault still on") ||
		!strings.Contains(r.stdout, "reset containers: removed 1 container fault(s) listed in "+old+".containers") {
		t.Fatalf("old layout: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	recs, err := faults.ReadJournal(old + ".containers")
	if err != nil || len(faults.Outstanding(recs)) != 0 {
		t.Errorf("the old container journal after reset: %+v, %v; want nothing outstanding", recs, err)
	}
}
