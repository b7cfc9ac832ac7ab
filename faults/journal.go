package faults

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// MaxJournalSize bounds a fault journal file: a record is a few hundred
// bytes, so this is tens of thousands of faults.
const MaxJournalSize = 16 << 20

// Journal operations, the "op" of each record.
const (
	OpApply   = "apply"   // about to apply; on disk before the fault is (written again when the handles are known later)
	OpRemoved = "removed" // off again
	OpFailed  = "failed"  // the apply failed and nothing of it is on
)

// Entry is a fault the journal says was applied: enough for the injector
// that applied it to take it off again with nothing else, after a crash,
// from another process (`fallacies reset`).
type Entry struct {
	ID       string    `json:"id"`
	Injector string    `json:"injector"` // which injector applied it, e.g. "toxiproxy", "container"
	Fault    Fault     `json:"fault"`
	At       string    `json:"at"`                // where it was applied: a Toxiproxy API URL, a compose project
	Handles  []string  `json:"handles,omitempty"` // what the injector made, as it names it
	Time     time.Time `json:"time"`
}

// Record is one line of a journal.
type Record struct {
	Op string `json:"op"`
	Entry
	Error string `json:"error,omitempty"` // why a failed apply failed
}

// ErrNotJournal is matched (errors.Is) by the errors of ReadJournal that
// say the file is not a fault journal: not a regular file, too large, or
// not journal records. Nothing is ever written to such a file.
var ErrNotJournal = errors.New("not a fault journal")

// notJournalError says why a file is not a journal; it matches
// ErrNotJournal.
type notJournalError struct{ msg string }

func (e *notJournalError) Error() string        { return e.msg }
func (e *notJournalError) Is(target error) bool { return target == ErrNotJournal }

// recordPrefix starts every journal record: Record encodes "op" first.
var recordPrefix = []byte(`{"op":"`)

// Journal is the one fault journal of a run: an append-only file of JSON
// lines (Record) that every injector writes to. An apply record is fsynced
// before the fault is applied, so after a crash (SIGKILL, power loss) the
// journal lists every fault that may still be on, and Outstanding says
// which. A Journal is safe for concurrent use, and several processes may
// append to the same file: each record is one write of one whole line.
type Journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenJournal opens the journal at path, creating it if needed; the
// folder must exist. An existing file that is not a journal (see
// ReadJournal) is refused, matching ErrNotJournal, and never written to. A
// last line torn by a crash is ended, so the next record starts on a line
// of its own.
func OpenJournal(path string) (*Journal, error) {
	if _, err := ReadJournal(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				f.Close()
				return nil, fmt.Errorf("repair journal %s: %w", path, err)
			}
		}
	}
	return &Journal{path: path, f: f}, nil
}

// NewEntryID returns a random id for a journal entry.
func NewEntryID() string { return rand.Text() }

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Close closes the journal file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if err != nil {
		return fmt.Errorf("close journal %s: %w", j.path, err)
	}
	return nil
}

// Applying records e as about to be applied; it returns once the record
// is on disk. Writing it again with the same id (the handles known only
// once applied) replaces the first.
func (j *Journal) Applying(e Entry) error { return j.write(Record{Op: OpApply, Entry: e}) }

// Removed records that the fault of the entry with the given id is off.
func (j *Journal) Removed(id string) error {
	return j.write(Record{Op: OpRemoved, Entry: Entry{ID: id, Time: time.Now()}})
}

// Failed records that applying the entry with the given id failed and
// nothing of it is on.
func (j *Journal) Failed(id string, cause error) error {
	return j.write(Record{Op: OpFailed, Entry: Entry{ID: id, Time: time.Now()}, Error: cause.Error()})
}

func (j *Journal) write(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode journal record %s: %w", r.ID, err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("write journal %s: %w", j.path, os.ErrClosed)
	}
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("write journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	return nil
}

// Outstanding lists the faults applied and not removed, oldest first, of
// every injector.
func (j *Journal) Outstanding() ([]Entry, error) {
	j.mu.Lock()
	recs, err := ReadJournal(j.path)
	j.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return Outstanding(recs), nil
}

// OutstandingOf lists the faults applied by the named injector and not
// removed, oldest first.
func (j *Journal) OutstandingOf(injector string) ([]Entry, error) {
	all, err := j.Outstanding()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range all {
		if e.Injector == injector {
			out = append(out, e)
		}
	}
	return out, nil
}

// Outstanding lists the entries that records say are applied and not
// removed, oldest first; a later apply record of an id replaces the
// earlier one.
func Outstanding(recs []Record) []Entry {
	var order []string
	open := map[string]Entry{}
	for _, r := range recs {
		switch r.Op {
		case OpApply:
			if _, seen := open[r.ID]; !seen {
				order = append(order, r.ID)
			}
			open[r.ID] = r.Entry
		case OpRemoved, OpFailed:
			delete(open, r.ID)
		}
	}
	out := make([]Entry, 0, len(open))
	for _, id := range order {
		if e, ok := open[id]; ok {
			out = append(out, e)
			delete(open, id)
		}
	}
	return out
}

// ReadJournal reads the fault journal at path and returns its records. It
// reads only a regular file of at most MaxJournalSize bytes; a FIFO, a
// device, a folder or a larger file is refused at once (a FIFO is opened
// without waiting for a writer). A line torn by a crash (the beginning of
// a record) is skipped: its fault was never applied, since applying waits
// for the record to be on disk. Any other line means the file is not a
// journal. A missing file is an error matching fs.ErrNotExist.
//
// Records of the journals written before there was one journal per run
// (a network fault's "api", a container fault's "project", each in its
// own file) are read as entries of the toxiproxy and container injectors.
func ReadJournal(path string) ([]Record, error) {
	data, err := ReadRegularFile(path, MaxJournalSize, "a fault journal")
	if err != nil {
		if nr, ok := errors.AsType[*NotRegularError](err); ok {
			return nil, &notJournalError{nr.Msg}
		}
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	return journalRecords(path, data)
}

// legacyRecord is a record with the fields of the two journals before one:
// "api" and "proxy" of a network fault, "project" of a container fault.
type legacyRecord struct {
	Record
	API     string `json:"api"`
	Project string `json:"project"`
}

// journalRecords decodes data into its records, checking each line.
func journalRecords(path string, data []byte) ([]Record, error) {
	var out []Record
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec legacyRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			if bytes.HasPrefix(line, recordPrefix) || bytes.HasPrefix(recordPrefix, line) {
				continue // torn by a crash
			}
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: the line is not a journal record (JSON with \"op\" and \"id\")", path, n+1)}
		}
		switch {
		case rec.Op != OpApply && rec.Op != OpRemoved && rec.Op != OpFailed:
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: \"op\" is %q, want apply, removed or failed", path, n+1, rec.Op)}
		case rec.ID == "":
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: the record has no \"id\"", path, n+1)}
		}
		r := rec.Record
		if r.Op == OpApply && r.Injector == "" {
			switch {
			case rec.API != "":
				r.Injector, r.At = "toxiproxy", rec.API
			case rec.Project != "":
				r.Injector, r.At = "container", rec.Project
			}
		}
		out = append(out, r)
	}
	return out, nil
}
