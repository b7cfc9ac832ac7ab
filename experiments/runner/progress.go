package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// progress writes the live progress line: redrawn in place on a terminal,
// a plain line every few seconds otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	width  func() int // terminal columns; nil: 80
	every  time.Duration
	mu     sync.Mutex
	last   time.Time
	drawn  bool
	prefix string
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, every: 5 * time.Second}
}

// update shows one state of the run.
func (p *progress) update(elapsed, total time.Duration, phase string, rps, errRate float64, inFlight int, faults []string) {
	if p == nil || p.w == nil {
		return
	}
	f := "none"
	if len(faults) > 0 {
		f = strings.Join(faults, "; ")
	}
	clock := fmt.Sprintf("%.0fs/%.0fs", elapsed.Seconds(), total.Seconds())
	line := fmt.Sprintf("%s %-6s %9s %4.0f req/s  errors %4.1f%%  in flight %3d  faults: %s",
		p.prefix, phase, clock, rps, 100*errRate, inFlight, f)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		// Back to the line's start, the line cut to the terminal, then
		// clear what a longer line before left: no wrap, no leftovers.
		if n := p.columns(); utf8.RuneCountInString(line) > n {
			// Narrow: the numbers shortened so that the faults show.
			line = fmt.Sprintf("%s %s %s %.0f/s err %.1f%% · %s", p.prefix, phase, clock, rps, 100*errRate, f)
			line = fit(line, n)
		}
		fmt.Fprintf(p.w, "\r%s\033[K", line)
		p.drawn = true
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		fmt.Fprintln(p.w, line)
	}
}

// columns is the width a line drawn in place may take: one less than the
// terminal's, since writing the last column makes some terminals wrap.
func (p *progress) columns() int {
	w := 80
	if p.width != nil {
		if n := p.width(); n > 0 {
			w = n
		}
	}
	return max(w-1, 10)
}

// fit cuts line to at most n runes (terminal columns: the progress line is
// letters, digits and single-width symbols), ending a cut line with "…".
func fit(line string, n int) string {
	if utf8.RuneCountInString(line) <= n {
		return line
	}
	r := []rune(line)
	return strings.TrimRight(string(r[:n-1]), " ;,") + "…"
}

// say prints a line of its own, ending any line drawn in place.
func (p *progress) say(format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

// done ends a line drawn in place.
func (p *progress) done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
