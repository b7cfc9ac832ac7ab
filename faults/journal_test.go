package faults

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadJournalRefusesWhatIsNotOne reads every kind of file a hostile
// --journal can name: only a regular file of journal records is read, and
// every refusal names the file and what it is, at once (a FIFO with no
// writer would block an ordinary open forever).
func TestReadJournalRefusesWhatIsNotOne(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if f, err := os.Create(big); err != nil {
		t.Fatal(err)
	} else {
		f.Truncate(MaxJournalSize + 1) // sparse: no disk used
		f.Close()
	}
	apply := `{"op":"apply","id":"A","fault":{"name":"slow"}}`
	cases := []struct {
		name, path string
		want       string // "" when it is a journal
		records    int
	}{
		{"dev zero", "/dev/zero", "/dev/zero: is a character device, not a regular file", 0},
		{"fifo", fifo, fifo + ": is a named pipe (FIFO), not a regular file", 0},
		{"folder", dir, dir + ": is a folder, not a regular file", 0},
		{"too large", big, "more than the limit of 16777216 bytes (16 MiB)", 0},
		{"text", write("text", "hello\n"), "text:1: not a fault journal", 0},
		{"other json", write("json", apply+"\n"+`{"name":"x"}`+"\n"), `json:2: not a fault journal: "op" is ""`, 0},
		{"no id", write("noid", `{"op":"removed"}`+"\n"), "noid:1: not a fault journal: the record has no \"id\"", 0},
		{"empty", write("empty", ""), "", 0},
		{"records", write("ok", apply+"\n\n"+`{"op":"removed","id":"A"}`+"\n"), "", 2},
		{"torn by a crash", write("torn", apply+"\n"+`{"op":"app`+"\n"+`{"op":"failed","id":"A"}`), "", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			recs, err := ReadJournal(c.path)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v: it waited on the file", took)
			}
			if c.want == "" {
				if err != nil || len(recs) != c.records {
					t.Fatalf("ReadJournal = %d records, %v; want %d, no error", len(recs), err, c.records)
				}
				return
			}
			if !errors.Is(err, ErrNotJournal) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ReadJournal error %v; want ErrNotJournal saying %q", err, c.want)
			}
		})
	}
	if _, err := ReadJournal(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
