package definition

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in an experiment file.
type Error struct {
	File      string
	Line, Col int    // 1-based
	Path      string // field path, e.g. faults[0].latency; "" for the whole document
	Msg       string
	Hint      string // what to write instead; may be ""
}

// Error formats the problem as FILE:LINE:COL: field.path: message (hint),
// leaving out the path and the hint when they are empty.
func (e Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Col)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Errors is every problem of a file, sorted by position.
type Errors []Error

// Error formats one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
