package definition

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source is the text of a file with an index of its lines, to turn byte
// offsets into lines and columns (1-based, columns in characters) and
// back, each in time logarithmic in the file's size.
type source struct {
	data  []byte
	lines []int       // byte offset of the start of each line
	runes map[int]int // characters of a line, counted when first asked (within)
}

func newSource(data []byte) *source {
	s := &source{data: data, lines: []int{0}}
	for i := 0; i < len(data); {
		if n := breakLen(data[i:]); n > 0 {
			i += n
			s.lines = append(s.lines, i)
			continue
		}
		i++
	}
	return s
}

// breakLen is the length of the line break at the start of b, or 0. YAML
// breaks lines at LF, CR LF and a lone CR, and yaml.v3 also at NEL, LS
// and PS; its line numbers count them all.
func breakLen(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\n':
		return 1
	case b[0] == '\r':
		if len(b) > 1 && b[1] == '\n' {
			return 2
		}
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")):
		return 2
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return 3
	}
	return 0
}

// pos returns the line and column of a byte offset.
func (s *source) pos(off int) (line, col int) {
	off = max(0, min(off, len(s.data)))
	i := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off }) - 1
	return i + 1, utf8.RuneCount(s.data[s.lines[i]:off]) + 1
}

// offset returns the byte offset of a line and column, or -1.
func (s *source) offset(line, col int) int {
	if line < 1 || line > len(s.lines) {
		return -1
	}
	off := s.lines[line-1]
	for c := 1; c < col && off < len(s.data) && breakLen(s.data[off:]) == 0; c++ {
		_, n := utf8.DecodeRune(s.data[off:])
		off += n
	}
	return off
}

// within keeps a position inside the file: yaml.v3 can place a node one
// line past the last (a document of "---" alone is at line 2), and a
// syntax error past the end of its line. Such a position becomes the end
// of the last line, or of its own line. Each line's length is counted
// once, so thousands of errors on one long line stay linear.
func (s *source) within(line, col int) (int, int) {
	if line > len(s.lines) {
		line, col = len(s.lines), math.MaxInt
	}
	line = max(line, 1)
	if col > 1 {
		if s.runes == nil {
			s.runes = map[int]int{}
		}
		n, ok := s.runes[line]
		if !ok {
			n = utf8.RuneCountInString(s.line(line))
			s.runes[line] = n
		}
		col = min(col, n+1)
	}
	return line, max(col, 1)
}

// line returns the text of a line, without its newline.
func (s *source) line(line int) string {
	if line < 1 || line > len(s.lines) {
		return ""
	}
	start, end := s.lines[line-1], len(s.data)
	if line < len(s.lines) {
		end = s.lines[line]
		for i := start; i < end; i++ {
			if breakLen(s.data[i:end]) == end-i {
				end = i
				break
			}
		}
	}
	return string(s.data[start:end])
}

// badChar finds the first byte YAML does not allow: one that is not
// UTF-8, or a control character other than tab, newline and carriage
// return. It returns -1 and "" when there is none.
func badChar(data []byte) (off int, what string) {
	for off := 0; off < len(data); {
		r, n := utf8.DecodeRune(data[off:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return off, fmt.Sprintf("byte 0x%02X is not UTF-8", data[off])
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7F, r >= 0x80 && r <= 0x9F && r != 0x85, r == 0xFFFE, r == 0xFFFF:
			name := fmt.Sprintf("U+%04X", r)
			if r == 0 {
				name = "a NUL byte (0x00)"
			} else {
				name = "the control character " + name
			}
			return off, name + " is not allowed in YAML"
		}
		off += n
	}
	return -1, ""
}

var (
	yamlLineErr  = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAlias = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)
)

// countingReader hands the YAML decoder one byte at a time, so that at a
// syntax error n is how far its scanner read: the problem is in the last
// bytes read.
type countingReader struct {
	data []byte
	n    int
}

func (r *countingReader) Read(b []byte) (int, error) {
	if r.n >= len(r.data) {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	b[0] = r.data[r.n]
	r.n++
	return 1, nil
}

// syntaxPos finds where a YAML syntax error is. yaml.v3 reports the line
// where the enclosing block or flow collection starts, not where the
// problem is, and no column; reading the file again one byte at a time
// shows where its scanner stopped, which is the problem's line.
func (s *source) syntaxPos(err error) (line, col int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	reported := 0
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscan(m[1], &reported)
		msg = m[2]
	}
	// An undefined alias: point at it.
	if m := unknownAlias.FindStringSubmatch(msg); m != nil {
		re := regexp.MustCompile(`\*` + regexp.QuoteMeta(m[1]) + `(?:[\s,\]\}]|$)`)
		if loc := re.FindIndex(s.data); loc != nil {
			line, col = s.pos(loc[0])
			return line, col, msg
		}
	}
	// A quoted scalar that never ends: yaml.v3 reports the line of its
	// opening quote; point at the quote.
	if strings.Contains(msg, "end of stream") && reported > 0 {
		text := s.line(reported)
		if i := strings.IndexAny(text, `"'`); i >= 0 {
			return reported, utf8.RuneCountInString(text[:i]) + 1, msg
		}
		return reported, 1, msg
	}
	r := &countingReader{data: s.data}
	var n yaml.Node
	func() {
		defer func() { _ = recover() }()
		_ = yaml.NewDecoder(r).Decode(&n)
	}()
	// The last byte read that is not white space.
	end := r.n - 1
	for end > 0 && end < len(s.data) && (s.data[end] == ' ' || s.data[end] == '\n' || s.data[end] == '\r' || s.data[end] == '\t' && !strings.Contains(msg, "cannot start any token")) {
		end--
	}
	if end < 0 {
		return max(reported, 1), 1, msg
	}
	line, col = s.pos(end)
	text := s.line(line)
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		// A colon where no key can be: the last one read.
		upto := string([]rune(text)[:min(col, utf8.RuneCountInString(text))])
		if i := strings.LastIndex(upto, ":"); i >= 0 {
			col = utf8.RuneCountInString(text[:i]) + 1
		}
	case strings.Contains(msg, "did not find expected '-' indicator"), strings.Contains(msg, "did not find expected key"):
		// A line indented wrong: point at its first character.
		if i := strings.IndexFunc(text, func(r rune) bool { return r != ' ' && r != '\t' }); i >= 0 {
			col = utf8.RuneCountInString(text[:i]) + 1
		}
	}
	if strings.Contains(msg, "cannot start any token") {
		// A tab in the indentation, or a reserved character: the first
		// one on the line.
		if i := strings.IndexAny(text, "\t@`"); i >= 0 {
			col = utf8.RuneCountInString(text[:i]) + 1
		}
	}
	return line, col, msg
}

// valuePos returns the position in the file of the character at rune
// offset off of a scalar's value. A quoted, folded or block scalar can
// span lines, and its value differs from its text (escapes, folded line
// breaks, indentation removed): the value is walked along the text,
// skipping white space and decoding escapes, until off.
func (s *source) valuePos(n *yaml.Node, off int) (line, col int) {
	start := s.offset(n.Line, n.Column)
	if start < 0 {
		return n.Line, n.Column
	}
	j := start
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		j++ // the opening quote
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The value starts on the line after the | or > header.
		if i := bytes.IndexByte(s.data[j:], '\n'); i >= 0 {
			j += i + 1
		} else {
			return n.Line, n.Column
		}
	}
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	space := func(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
	i := 0
	for _, r := range n.Value {
		if j >= len(s.data) {
			break
		}
		if space(byte(r)) && r < utf8.RuneSelf {
			if i == off {
				break
			}
			if space(s.data[j]) {
				j++
			}
			i++
			continue
		}
		for j < len(s.data) && space(s.data[j]) {
			j++
		}
		if i == off || j >= len(s.data) {
			break
		}
		switch {
		case dq && s.data[j] == '\\':
			j += escapeLen(s.data[j:])
		case sq && r == '\'' && bytes.HasPrefix(s.data[j:], []byte("''")):
			j += 2
		default:
			_, w := utf8.DecodeRune(s.data[j:])
			j += w
		}
		i++
	}
	for j < len(s.data) && space(s.data[j]) && i == off && off < utf8.RuneCountInString(n.Value) {
		j++
	}
	return s.pos(j)
}

// escapeLen is the length of the escape sequence at the start of b, a
// backslash in a double-quoted scalar.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return len(b)
	}
	switch b[1] {
	case 'x':
		return min(len(b), 4)
	case 'u':
		return min(len(b), 6)
	case 'U':
		return min(len(b), 10)
	}
	_, w := utf8.DecodeRune(b[1:])
	return 1 + w
}
