package container

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
	opApply   = "apply"   // about to apply (written again once the handles are known)
	opRemoved = "removed" // off again
	opFailed  = "failed"  // the apply failed and nothing of it is on
)

// Entry is a container fault the journal says was applied: enough to undo
// it with the docker CLI alone.
type Entry struct {
	ID      string       `json:"id"`
	Fault   faults.Fault `json:"fault"`
	Project string       `json:"project"`
	Handles []string     `json:"handles,omitempty"`
	Time    time.Time    `json:"time"`
}

type record struct {
	Op string `json:"op"`
	Entry
	Error string `json:"error,omitempty"`
}

// Journal is an append-only JSON-lines file of the container faults applied
// and removed; every record is fsynced before the write returns. It is safe
// for concurrent use.
type Journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenJournal opens the journal at path, creating it if needed. An
// existing file that is not a journal (see faults.ReadJournal) is refused,
// matching faults.ErrNotJournal, and never written to.
func OpenJournal(path string) (*Journal, error) {
	if _, err := faults.ReadJournal(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open container journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open container journal %s: %w", path, err)
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
		return fmt.Errorf("close container journal %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) write(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode journal record %s: %w", r.ID, err)
	}
	// A leading newline ends a line torn by a crash; empty lines are skipped.
	line = append(append([]byte{'\n'}, line...), '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("write container journal %s: %w", j.path, os.ErrClosed)
	}
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("write container journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync container journal %s: %w", j.path, err)
	}
	return nil
}

// Outstanding lists the faults applied and not removed, oldest first; a
// later apply record of the same id (with the handles) replaces the first.
func (j *Journal) Outstanding() ([]Entry, error) {
	j.mu.Lock()
	lines, err := faults.ReadJournal(j.path)
	j.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var order []string
	open := map[string]Entry{}
	for _, line := range lines {
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("decode container journal record: %w", err)
		}
		switch rec.Op {
		case opApply:
			if _, seen := open[rec.ID]; !seen {
				order = append(order, rec.ID)
			}
			open[rec.ID] = rec.Entry
		case opRemoved, opFailed:
			delete(open, rec.ID)
		}
	}
	var out []Entry
	for _, id := range order {
		if e, ok := open[id]; ok {
			out = append(out, e)
			delete(open, id)
		}
	}
	return out, nil
}

func newID() string { return rand.Text() }
