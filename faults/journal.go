package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxJournalSize bounds a fault journal file: a record is a few hundred
// bytes, so this is tens of thousands of faults.
const MaxJournalSize = 16 << 20

// ErrNotJournal is matched (errors.Is) by the errors of ReadJournal that
// say the file is not a fault journal: not a regular file, too large, or
// not journal records. Nothing is ever written to such a file.
var ErrNotJournal = errors.New("not a fault journal")

// notJournalError says why a file is not a journal; it matches
// ErrNotJournal.
type notJournalError struct{ msg string }

func (e *notJournalError) Error() string        { return e.msg }
func (e *notJournalError) Is(target error) bool { return target == ErrNotJournal }

// recordPrefix starts every journal record: the injectors' records encode
// their "op" field first.
var recordPrefix = []byte(`{"op":"`)

// ReadJournal reads the fault journal at path and returns its records, one
// JSON object per line: "op" apply, removed or failed, and an "id". It
// reads only a regular file of at most MaxJournalSize bytes; a FIFO, a
// device, a folder or a larger file is refused at once (a FIFO is opened
// without waiting for a writer). A line torn by a crash (the beginning of
// a record) is skipped: its fault was never applied, since applying waits
// for the record to be on disk. Any other line means the file is not a
// journal. A missing file is an error matching fs.ErrNotExist.
func ReadJournal(path string) ([][]byte, error) {
	data, err := ReadRegularFile(path, MaxJournalSize, "a fault journal")
	if err != nil {
		var nr *NotRegularError
		if errors.As(err, &nr) {
			return nil, &notJournalError{nr.Msg}
		}
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	return journalRecords(path, data)
}

// journalRecords splits data into its record lines, checking each.
func journalRecords(path string, data []byte) ([][]byte, error) {
	var out [][]byte
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec struct {
			Op string `json:"op"`
			ID string `json:"id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			if bytes.HasPrefix(line, recordPrefix) || bytes.HasPrefix(recordPrefix, line) {
				continue // torn by a crash
			}
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: the line is not a journal record (JSON with \"op\" and \"id\")", path, n+1)}
		}
		switch {
		case rec.Op != "apply" && rec.Op != "removed" && rec.Op != "failed":
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: \"op\" is %q, want apply, removed or failed", path, n+1, rec.Op)}
		case rec.ID == "":
			return nil, &notJournalError{fmt.Sprintf("%s:%d: not a fault journal: the record has no \"id\"", path, n+1)}
		}
		out = append(out, line)
	}
	return out, nil
}
