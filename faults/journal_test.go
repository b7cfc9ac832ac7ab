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

// TestJournalOutstanding checks the one journal's bookkeeping over the
// records of several injectors: applied and not removed is outstanding, a
// later apply record of the same id replaces the first, a torn line is
// skipped and ended on open so the next record has a line of its own, and
// the records of the older per-injector journals ("api", "project") are
// read as entries of the toxiproxy and container injectors.
func TestJournalOutstanding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	lines := []string{
		`{"op":"apply","id":"a","injector":"container","fault":{"Kind":"container-kill","Target":"user"},"at":"p","time":"2026-01-01T00:00:00Z"}`,
		`{"op":"apply","id":"b","injector":"container","fault":{"Kind":"container-disconnect","Target":"payment"},"at":"p","time":"2026-01-01T00:00:01Z"}`,
		`{"op":"apply","id":"n","injector":"toxiproxy","fault":{"Kind":"latency","Target":"user"},"at":"http://127.0.0.1:1","handles":["toxic/x"],"time":"2026-01-01T00:00:01Z"}`,
		`{"op":"apply","id":"b","injector":"container","fault":{"Kind":"container-disconnect","Target":"payment"},"at":"p","handles":["network/p_fallacies=payment"],"time":"2026-01-01T00:00:01Z"}`,
		`{"op":"apply","id":"c","injector":"container","fault":{"Kind":"container-pause","Target":"nats"},"at":"p","time":"2026-01-01T00:00:02Z"}`,
		`{"op":"apply","id":"old-net","fault":{"name":"slow","kind":"latency","target":"order"},"api":"http://127.0.0.1:2","proxy":"order","handles":["toxic/y"]}`,
		`{"op":"apply","id":"old-box","fault":{"Kind":"container-pause","Target":"ledger"},"project":"q"}`,
		`{"op":"removed","id":"a"}`,
		`{"op":"failed","id":"c","error":"boom"}`,
		`{"op":"apply","id":"d","fau`, // torn by a crash
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	out, err := j.Outstanding()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range out {
		got = append(got, e.ID+"@"+e.Injector+":"+e.At+"/"+e.Fault.Target+strings.Join(e.Handles, ","))
	}
	want := []string{
		"b@container:p/paymentnetwork/p_fallacies=payment",
		"n@toxiproxy:http://127.0.0.1:1/usertoxic/x",
		"old-net@toxiproxy:http://127.0.0.1:2/ordertoxic/y",
		"old-box@container:q/ledger",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("outstanding = %q\nwant          %q", got, want)
	}
	if net, err := j.OutstandingOf("toxiproxy"); err != nil || len(net) != 2 || net[0].ID != "n" || net[1].ID != "old-net" {
		t.Fatalf("OutstandingOf(toxiproxy) = %+v, %v", net, err)
	}

	// The torn line was ended on open: a new record is read whole.
	if err := j.Removed("b"); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Op != OpRemoved || last.ID != "b" {
		t.Fatalf("last record = %+v, want removed b", last)
	}
	if out, _ := j.Outstanding(); len(out) != 3 {
		t.Fatalf("outstanding after removing b = %+v", out)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Applying(Entry{ID: "late"}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Applying after Close: %v, want os.ErrClosed", err)
	}
}

// TestOpenJournalRefusesWhatIsNotOne: a file that is not a journal is
// refused by OpenJournal and left as it was.
func TestOpenJournalRefusesWhatIsNotOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes")
	if err := os.WriteFile(path, []byte("my notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(path); !errors.Is(err, ErrNotJournal) {
		t.Fatalf("OpenJournal(notes) = %v, want ErrNotJournal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "my notes" {
		t.Fatalf("the file was changed: %q", b)
	}
}
