// Package store keeps a service's records in an append-only file, so that a
// service killed and started again (the processes topology's kill and
// restart faults) comes back with what it had recorded, as a real service
// with a database would.
//
// Each record is one line of protojson. Appends are written to the file
// without fsync: they survive the process being killed (the kernel holds
// the data), not the machine losing power, which is what the testbed needs.
// A torn last line, left by a kill in the middle of a write, is skipped.
package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Log is an append-only file of records of type T. The zero value and a
// nil *Log keep nothing; methods are safe for concurrent use.
type Log[T proto.Message] struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens (or creates) the log at path and returns the records already
// in it, in the order they were appended. An empty path returns a nil log.
func Open[T proto.Message](path string, newRecord func() T) (*Log[T], []T, error) {
	if path == "" {
		return nil, nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read store %s: %w", path, err)
	}
	var recs []T
	good := 0 // bytes of whole records
	for good < len(data) {
		end := bytes.IndexByte(data[good:], '\n')
		if end < 0 {
			break // a torn last line: the write was cut by a kill
		}
		line := data[good : good+end]
		if len(bytes.TrimSpace(line)) > 0 {
			r := newRecord()
			if err := protojson.Unmarshal(line, r); err != nil {
				return nil, nil, fmt.Errorf("read store %s: byte %d: %w", path, good, err)
			}
			recs = append(recs, r)
		}
		good += end + 1
	}
	if good < len(data) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, nil, fmt.Errorf("repair store %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Log[T]{f: f}, recs, nil
}

// Append writes one record.
func (l *Log[T]) Append(rec T) error {
	if l == nil {
		return nil
	}
	b, err := protojson.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("store is closed")
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append to %s: %w", l.f.Name(), err)
	}
	return nil
}

// Close closes the file. Later appends fail.
func (l *Log[T]) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
