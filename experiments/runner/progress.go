package runner

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress writes the live progress line: redrawn in place on a terminal,
// a plain line every few seconds otherwise.
type progress struct {
	w      io.Writer
	tty    bool
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
	line := fmt.Sprintf("%s %-6s %4.0fs/%-4.0fs %6.0f req/s  errors %5.1f%%  in flight %4d  faults: %s",
		p.prefix, phase, elapsed.Seconds(), total.Seconds(), rps, 100*errRate, inFlight, f)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		fmt.Fprintln(p.w, line)
	}
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
