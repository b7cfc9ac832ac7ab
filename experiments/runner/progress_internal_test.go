package runner

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestProgressFitsTheTerminal draws the progress line in place at 80
// columns with a long fault description and checks every redraw: it goes
// back to the line's start, fits in 79 columns (the 80th makes some
// terminals wrap), and clears what a longer line before it left.
func TestProgressFitsTheTerminal(t *testing.T) {
	var buf bytes.Buffer
	width := 80
	p := newProgress(&buf, true)
	p.width = func() int { return width }
	p.prefix = "duplicate-delivery [resilient 2/2]"
	long := []string{"latency on user downstream latency=300ms jitter=50ms", "partition on nats-order both"}
	p.update(17*time.Second, 30*time.Second, "during", 49.7, 0.012, 15, long)
	p.update(23*time.Second, 30*time.Second, "after", 50, 0, 0, nil)
	width = 200 // the window grew: the next line is drawn whole
	p.update(24*time.Second, 30*time.Second, "during", 50, 0, 3, long)
	p.done()

	out := buf.String()
	draws := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if len(draws) != 3 {
		t.Fatalf("want 3 redraws, got %d: %q", len(draws), out)
	}
	for i, d := range draws {
		if !strings.HasSuffix(d, "\033[K") {
			t.Errorf("redraw %d does not clear to the end of the line: %q", i, d)
		}
		line := strings.TrimSuffix(d, "\033[K")
		limit := 79
		if i == 2 {
			limit = 199
		}
		if n := utf8.RuneCountInString(line); n > limit {
			t.Errorf("redraw %d is %d columns, want at most %d: %q", i, n, limit, line)
		}
		if strings.ContainsAny(line, "\n\r") {
			t.Errorf("redraw %d breaks the line: %q", i, line)
		}
	}
	if first := strings.TrimSuffix(draws[0], "\033[K"); !strings.HasSuffix(first, "…") || !strings.HasPrefix(first, "duplicate-delivery [resilient 2/2] during 17s/30s 50/s err 1.2% · latency on") {
		t.Errorf("at 80 columns the line is shortened to show the faults, and cut with …: %q", first)
	}
	if whole := draws[2]; !strings.Contains(whole, "partition on nats-order both") {
		t.Errorf("at 200 columns the line is whole: %q", whole)
	}
}

func TestFit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"faults: a; b; c", 10, "faults: a…"},
		{"faults: a; b; c", 11, "faults: a…"},
		{"order → user → payment", 9, "order →…"},
	} {
		if got := fit(tt.in, tt.n); got != tt.want || utf8.RuneCountInString(got) > tt.n {
			t.Errorf("fit(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
