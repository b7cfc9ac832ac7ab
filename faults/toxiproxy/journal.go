package toxiproxy

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// Journal operations, one per line of the journal file.
const (
	opApply   = "apply"   // about to apply; written and fsynced first
	opRemoved = "removed" // removed after a successful removal
	opFailed  = "failed"  // the apply failed and nothing of it is left on
)

// Entry is a fault the journal says was applied: enough to remove it from
// the Toxiproxy at API without anything else.
type Entry struct {
	ID      string       `json:"id"`
	Fault   faults.Fault `json:"fault"`
	API     string       `json:"api"`
	Proxy   string       `json:"proxy"`
	Handles []string     `json:"handles"`
	Time    time.Time    `json:"time"`
}

// record is one line of the journal file.
type record struct {
	Op string `json:"op"`
	Entry
	Error string `json:"error,omitempty"`
}

// Journal is an append-only JSON-lines file of the faults applied and
// removed. Every record is fsynced before the write returns, so an apply
// record is on disk before the fault is. A Journal is safe for concurrent
// use, and several processes may append to the same file.
type Journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenJournal opens the journal at path, creating it if needed. The
// directory must exist. An existing file that is not a journal (see
// faults.ReadJournal) is refused, matching faults.ErrNotJournal, and
// never written to.
func OpenJournal(path string) (*Journal, error) {
	if _, err := faults.ReadJournal(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	// A crash in the middle of a write leaves a torn last line: end it, so
	// the next record starts on a line of its own.
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

func (j *Journal) write(r record) error {
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

// applying records e as about to be applied.
func (j *Journal) applying(e Entry) error { return j.write(record{Op: opApply, Entry: e}) }

// removed records that the fault with the given entry id is off.
func (j *Journal) removed(id string) error {
	return j.write(record{Op: opRemoved, Entry: Entry{ID: id, Time: time.Now()}})
}

// failed records that applying the entry failed and nothing of it is on.
func (j *Journal) failed(id string, cause error) error {
	return j.write(record{Op: opFailed, Entry: Entry{ID: id, Time: time.Now()}, Error: cause.Error()})
}

// Outstanding lists the faults applied and not removed, oldest first. A
// line torn by a crash is skipped: its fault was never applied, since
// applying waits for the record to be on disk.
func (j *Journal) Outstanding() ([]Entry, error) {
	j.mu.Lock()
	lines, err := faults.ReadJournal(j.path)
	j.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return outstanding(lines)
}

// outstanding lists the faults that the records of a journal (as
// faults.ReadJournal returns them) say are applied and not removed, oldest
// first.
func outstanding(lines [][]byte) ([]Entry, error) {
	var order []string
	open := map[string]Entry{}
	for _, line := range lines {
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("decode journal record: %w", err)
		}
		switch rec.Op {
		case opApply:
			if _, dup := open[rec.ID]; !dup {
				order = append(order, rec.ID)
			}
			open[rec.ID] = rec.Entry
		case opRemoved, opFailed:
			delete(open, rec.ID)
		}
	}
	out := make([]Entry, 0, len(open))
	for _, id := range order {
		if e, ok := open[id]; ok {
			out = append(out, e)
			delete(open, id)
		}
	}
	return out, nil
}

// newID returns a random entry id.
func newID() string { return rand.Text() }
