package console

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/waterfall"
	"github.com/fallacies/fallacies/tracing"
)

// The links of the graph that are not proxies.
const linkLoad = "load" // the load generator → order: order's own server spans

// liveState is what the spans of the last seconds say: each link's
// traffic over the last tick and the order traces of the last traceKeep.
type liveState struct {
	mu     sync.Mutex
	named  *waterfall.Links     // names the link of a client span
	links  map[string]linkStats // over the last tick
	traces map[string]*liveTrace
	spans  int // spans held in traces
	last   time.Time
}

// Bounds of what the console holds.
const (
	traceKeep = 30 * time.Second // how long a trace can be opened
	listKeep  = 10 * time.Second // how recent a listed trace is
	maxSpans  = 100_000          // spans held at most; the oldest traces go first
	listLen   = 8                // traces per list on the page
)

// linkStats is one link's traffic over the last tick.
type linkStats struct {
	Calls  int     `json:"calls"`
	RPS    float64 `json:"rps"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	ErrPct float64 `json:"error_pct"`
}

// liveTrace is the spans of one trace seen so far.
type liveTrace struct {
	spans []tracing.Span
	root  *tracing.Span // the order service's server span without parent, once ended
	last  time.Time     // when its latest span arrived
}

func newLiveState(proxies map[string]string) *liveState {
	return &liveState{named: waterfall.NewLinks(proxies), links: map[string]linkStats{}, traces: map[string]*liveTrace{}}
}

// setProxies names the links by a new system's proxies (the next variant
// of a run), and forgets what the spans of the one before said.
func (l *liveState) setProxies(proxies map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.named = waterfall.NewLinks(proxies)
	clear(l.links)
	clear(l.traces)
	l.spans = 0
}

// linkNames returns what names the link of a client span.
func (l *liveState) linkNames() *waterfall.Links {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.named
}

// add takes in the spans that ended since the last call.
func (l *liveState) add(spans []tracing.Span, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	period := time.Second
	if !l.last.IsZero() {
		period = max(now.Sub(l.last), time.Millisecond)
	}
	l.last = now
	lat := map[string][]time.Duration{}
	errs := map[string]int{}
	for _, s := range spans {
		if link := l.linkOf(s); link != "" {
			lat[link] = append(lat[link], s.Duration())
			if s.Error {
				errs[link]++
			}
		}
		t := l.traces[s.TraceID]
		if t == nil {
			t = &liveTrace{}
			l.traces[s.TraceID] = t
		}
		t.spans = append(t.spans, s)
		t.last = now
		l.spans++
		if isOrderRoot(s) {
			root := s
			t.root = &root
		}
	}
	clear(l.links)
	for link, ds := range lat {
		slices.Sort(ds)
		l.links[link] = linkStats{
			Calls: len(ds), RPS: float64(len(ds)) / period.Seconds(),
			P50: millis(quantile(ds, 0.50)), P99: millis(quantile(ds, 0.99)),
			ErrPct: 100 * float64(errs[link]) / float64(len(ds)),
		}
	}
	l.evict(now)
}

// evict forgets traces older than traceKeep, and the oldest beyond
// maxSpans. l.mu is held.
func (l *liveState) evict(now time.Time) {
	for id, t := range l.traces {
		if now.Sub(t.last) > traceKeep {
			l.spans -= len(t.spans)
			delete(l.traces, id)
		}
	}
	if l.spans <= maxSpans {
		return
	}
	type aged struct {
		id   string
		last time.Time
	}
	var all []aged
	for id, t := range l.traces {
		all = append(all, aged{id, t.last})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.last.Compare(b.last) })
	for _, a := range all {
		if l.spans <= maxSpans {
			break
		}
		l.spans -= len(l.traces[a.id].spans)
		delete(l.traces, a.id)
	}
}

// isOrderRoot reports a span that starts an order trace: order's server
// span without a parent.
func isOrderRoot(s tracing.Span) bool {
	return s.ParentID == "" && s.Service == "order" && s.Kind == tracing.KindServer
}

// linkOf names the graph link a span measures: the load link for an
// order trace's root, the link a client span called (waterfall.Links),
// the NATS proxy of a publish or of a consumer's delivery; "" for other
// spans. l.mu is held.
func (l *liveState) linkOf(s tracing.Span) string {
	switch {
	case isOrderRoot(s):
		return linkLoad
	case s.Kind == tracing.KindClient:
		return l.named.Of(s)
	case s.Kind == tracing.KindProducer:
		return "nats-" + s.Service
	case s.Kind == tracing.KindConsumer:
		return "nats-" + s.Service
	}
	return ""
}

// traceSummary is one order trace in a list of the page.
type traceSummary struct {
	ID     string    `json:"id"`
	Root   string    `json:"root"`
	Ms     float64   `json:"ms"`
	Error  bool      `json:"error"`
	Status string    `json:"status,omitempty"`
	At     time.Time `json:"at"` // when the root span started
}

// traceLists returns the slowest and the latest failed order traces of
// the last listKeep.
func (l *liveState) traceLists() (slowest, failed []traceSummary) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []traceSummary
	for id, t := range l.traces {
		if t.root == nil || l.last.Sub(t.root.End) > listKeep {
			continue
		}
		all = append(all, traceSummary{ID: id, Root: tracing.ShortName(*t.root), Ms: millis(t.root.Duration()),
			Error: t.root.Error, Status: t.root.StatusMsg, At: t.root.Start})
	}
	slices.SortFunc(all, func(a, b traceSummary) int { return cmp.Or(cmp.Compare(b.Ms, a.Ms), strings.Compare(a.ID, b.ID)) })
	slowest, failed = []traceSummary{}, []traceSummary{}
	for _, t := range all {
		if !t.Error && len(slowest) < listLen {
			slowest = append(slowest, t)
		}
	}
	slices.SortFunc(all, func(a, b traceSummary) int { return cmp.Or(b.At.Compare(a.At), strings.Compare(a.ID, b.ID)) })
	for _, t := range all {
		if t.Error && len(failed) < listLen {
			failed = append(failed, t)
		}
	}
	return slowest, failed
}

// trace returns the spans held of one trace.
func (l *liveState) trace(id string) (tracing.Trace, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.traces[id]
	if !ok || t.root == nil {
		return tracing.Trace{}, false
	}
	spans := slices.Clone(t.spans)
	slices.SortFunc(spans, func(a, b tracing.Span) int { return a.Start.Compare(b.Start) })
	return tracing.Trace{ID: id, Root: *t.root, Spans: spans}, true
}

// linkStatsCopy returns each link's traffic over the last tick.
func (l *liveState) linkStatsCopy() map[string]linkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]linkStats, len(l.links))
	for k, v := range l.links {
		out[k] = v
	}
	return out
}

// quantile returns the q quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
