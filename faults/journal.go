package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
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
		var nr *notRegularError
		if errors.As(err, &nr) {
			return nil, &notJournalError{nr.msg}
		}
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	return journalRecords(path, data)
}

// notRegularError says a file is not a regular file of the size allowed.
type notRegularError struct{ msg string }

func (e *notRegularError) Error() string { return e.msg }

// ReadRegularFile reads the file at path when it is a regular file of at
// most limit bytes. Anything else (a FIFO, a device, a folder, a larger
// file) is refused at once with an error naming the file, what it is, and
// what it should have been (what, e.g. "an endpoints file"); a FIFO is
// opened without waiting for a writer and never read. A missing file is
// an error matching fs.ErrNotExist.
func ReadRegularFile(path string, limit int64, what string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if kind := fileKind(fi.Mode()); kind != "" {
		return nil, &notRegularError{fmt.Sprintf("%s: %s, not a regular file: not %s", path, kind, what)}
	}
	if fi.Size() > limit {
		return nil, &notRegularError{fmt.Sprintf("%s: %d bytes, larger than %s, the size limit of %s", path, fi.Size(), sizeText(limit), what)}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &notRegularError{fmt.Sprintf("%s: larger than %s, the size limit of %s", path, sizeText(limit), what)}
	}
	return data, nil
}

// sizeText writes a size limit in MiB or KiB.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// fileKind names what a file that is not a regular file is ("" for a
// regular file).
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return ""
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
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
