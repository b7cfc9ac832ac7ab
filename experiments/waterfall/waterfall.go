// Package waterfall lays a trace out as the report's waterfall
// (report.WaterfallSpan), the one layout of both the report's exemplar
// traces (experiments/runner) and the live console's traces of the moment
// (console): spans depth first, parents before children, siblings by
// start time, offsets from the root's start; a client span that ran while
// a fault was on its link names the fault and is marked for the time the
// fault held it (the part of the call outside its server span that the
// fault's window covers).
package waterfall

import (
	"net"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/internal/semconv"
	"github.com/fallacies/fallacies/tracing"
)

// MaxSpans is the most spans a waterfall draws; deeper or later spans of
// a bigger trace are left out.
const MaxSpans = 200

// Window is a stretch of time a fault was on a link.
type Window struct {
	Name   string    // the fault's name
	Target string    // the link: a proxy name
	Start  time.Time // when it went on
	End    time.Time // when it came off; zero while it is still on
}

// covers reports whether the window overlaps [from, to).
func (w Window) covers(from, to time.Time) bool {
	return w.Start.Before(to) && (w.End.IsZero() || w.End.After(from))
}

// Links names the link a client span called, from the proxies' listen
// addresses.
type Links struct {
	proxy map[string]string // listen address (host:port) → proxy name
}

// NewLinks indexes the proxies of every endpoint set given (proxy name →
// listen address); a process fault can move a proxy, so a run may have
// used more than one.
func NewLinks(proxies ...map[string]string) *Links {
	l := &Links{proxy: map[string]string{}}
	for _, ps := range proxies {
		for name, addr := range ps {
			l.proxy[addr] = name
		}
	}
	return l
}

// Of names the link a client span called: the proxy its server address
// is, else its fallacies.link attribute (order's resilience layer), else
// its callee.
func (l *Links) Of(s tracing.Span) string {
	if addr := s.Attrs["server.address"]; addr != "" && l != nil {
		if name, ok := l.proxy[net.JoinHostPort(addr, s.Attrs["server.port"])]; ok {
			return name
		}
	}
	if link := s.Attrs[semconv.Link]; link != "" {
		return link
	}
	return tracing.Callee(s)
}

// Layout lays t out as a waterfall. links names the link of a client
// span and windows are the faults that were on (either may be nil: no
// fault is marked). A span's note is its status message and the
// resilience events it carries (retry, fallback, breaker or bulkhead
// rejection).
func Layout(t tracing.Trace, links *Links, windows []Window) []report.WaterfallSpan {
	children := map[string][]tracing.Span{}
	for _, s := range t.Spans {
		if s.SpanID != t.Root.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	at := func(tm time.Time) float64 { return ms(tm.Sub(t.Root.Start)) }
	var out []report.WaterfallSpan
	var walk func(s tracing.Span, depth int)
	walk = func(s tracing.Span, depth int) {
		if len(out) >= MaxSpans {
			return
		}
		ws := report.WaterfallSpan{
			Service: s.Service, Name: tracing.ShortName(s), StartMs: at(s.Start),
			DurationMs: ms(s.Duration()), Depth: depth, Error: s.Error, Note: note(s),
		}
		if s.Kind == tracing.KindClient && len(windows) > 0 {
			if w, ok := faultOn(links.Of(s), s, windows); ok {
				ws.Fault = w.Name
				before, after, _ := tracing.OutsideServer(t, s)
				for _, out := range [][2]time.Time{{s.Start, s.Start.Add(before)}, {s.End.Add(-after), s.End}} {
					// Only the part of the time outside the server span
					// that the fault's window covers was held by it.
					from, to := later(out[0], w.Start), out[1]
					if !w.End.IsZero() {
						to = earlier(to, w.End)
					}
					if to.After(from) {
						ws.Held = append(ws.Held, report.Interval{StartMs: at(from), DurationMs: ms(to.Sub(from))})
					}
				}
			}
		}
		out = append(out, ws)
		kids := children[s.SpanID]
		slices.SortFunc(kids, func(a, b tracing.Span) int { return a.Start.Compare(b.Start) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(t.Root, 0)
	return out
}

// faultOn returns the first window on link that overlaps s.
func faultOn(link string, s tracing.Span, windows []Window) (Window, bool) {
	if link == "" {
		return Window{}, false
	}
	for _, w := range windows {
		if w.Target == link && w.covers(s.Start, s.End) {
			return w, true
		}
	}
	return Window{}, false
}

// note is a span's status message and the resilience events it carries.
func note(s tracing.Span) string {
	n := s.StatusMsg
	for _, e := range s.Events {
		switch e.Name {
		case semconv.EventRetry, semconv.EventFallback, semconv.EventBreakerRejected, semconv.EventBulkheadRejected:
			if n != "" {
				n += "; "
			}
			n += e.Name
		}
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
