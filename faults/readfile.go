package faults

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError says a file is not a regular file of the size allowed;
// Msg names the file, what it is and what it should have been. It
// matches fs.ErrInvalid.
type NotRegularError struct{ Msg string }

func (e *NotRegularError) Error() string        { return e.Msg }
func (e *NotRegularError) Is(target error) bool { return target == fs.ErrInvalid }

// ReadRegularFile is the one reader of the small files the testbed reads:
// experiment files, fault journals, endpoints files, service
// configurations. It reads the file at path when it is a regular file of
// at most limit bytes. Anything else (a folder, a FIFO, a device such as
// /dev/zero, a socket, a larger file) is refused at once, without reading
// from it, by a *NotRegularError naming the file, what it is and what it
// should have been (what, e.g. "an endpoints file"). The path is stat'ed
// first (a socket cannot even be opened), then opened non-blocking (a FIFO
// with no writer does not hang the open) and what was opened is checked
// again, since the path may have changed in between. A missing file is an
// error matching fs.ErrNotExist.
func ReadRegularFile(path string, limit int64, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi, limit, what); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(path, fi, limit, what); err != nil {
		return nil, err
	}
	// The size can change between the stat and the read: read one byte
	// past the limit to know.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, int64(len(data)), limit, what)
	}
	return data, nil
}

// regular refuses a file that is not a regular file or is too large.
func regular(path string, fi fs.FileInfo, limit int64, what string) error {
	if !fi.Mode().IsRegular() {
		return &NotRegularError{fmt.Sprintf("%s: is %s, not a regular file: not %s", path, fileKind(fi.Mode()), what)}
	}
	if fi.Size() > limit {
		return tooLarge(path, fi.Size(), limit, what)
	}
	return nil
}

func tooLarge(path string, size, limit int64, what string) error {
	return &NotRegularError{fmt.Sprintf("%s: %d bytes is more than the limit of %d bytes (%s) for %s", path, size, limit, sizeText(limit), what)}
}

// sizeText writes a size limit in MiB or KiB.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// fileKind names what a file that is not a regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file (" + m.Type().String() + ")"
}
