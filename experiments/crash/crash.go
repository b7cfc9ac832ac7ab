// Package crash turns a panic of the runner into an error that carries
// its stack, so that a crash ends the run as a testbed failure (exit code
// 3) with one line on stderr and the stack in a file of the report
// folder, instead of killing the process with the Go runtime's exit code
// 2 (which means "invalid input" to a caller of fallacies).
//
//	defer func() {
//		if p := recover(); p != nil {
//			err = crash.New(p)
//		}
//	}()
package crash

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// FileName is the name of the file the stack is written to.
const FileName = "crash.txt"

// Panic is a recovered panic: its value and the stack of the goroutine
// that panicked.
type Panic struct {
	Value any
	Stack []byte
}

// New returns the Panic of value p, with the current goroutine's stack;
// call it in the deferred function that recovered p.
func New(p any) *Panic {
	return &Panic{Value: p, Stack: debug.Stack()}
}

// Error is one line: "panic: " and the panic's value.
func (p *Panic) Error() string {
	msg := fmt.Sprint(p.Value)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " …"
	}
	return "panic: " + msg
}

// Find returns the Panic err wraps, if any.
func Find(err error) (*Panic, bool) {
	var p *Panic
	ok := errors.As(err, &p)
	return p, ok
}

// WriteFile writes p's value and stack to dir/crash.txt and returns the
// file's path.
func WriteFile(dir string, p *Panic) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write crash file: %w", err)
	}
	path := filepath.Join(dir, FileName)
	body := fmt.Sprintf("panic: %v\n\n%s", p.Value, p.Stack)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("write crash file: %w", err)
	}
	return path, nil
}
