// Package packet applies packet faults (packet-loss, packet-delay,
// packet-reorder, packet-duplicate, packet-corrupt, mtu-blackhole) to the
// links of the system. A link that an experiment puts a packet fault on
// gets a userspace segment (faults/segment) interposed between its
// Toxiproxy proxy and the proxy's upstream (a faults.Interposer: the
// journaled toxiproxy.Injector),
// before the load starts; a fault sets the segment's rules while it is on,
// and the segment's counters over its window become the fault's counters
// in the report. A link with no packet fault gets no segment.
package packet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/segment"
)

// Injector applies the packet fault kinds through segments it interposes
// on the proxies of a Toxiproxy. It is safe for concurrent use. Close it
// on every way out of a run: it points every proxy back at its upstream
// and stops the segments.
type Injector struct {
	proxies faults.Interposer
	seed    uint64

	mu       sync.Mutex
	links    map[string]*link             // by proxy
	applied  uint64                       // faults applied so far
	counters map[string]map[string]uint64 // of removed faults, by fault name
}

// link is a proxy with a segment on its upstream.
type link struct {
	seg        faults.HostedLayer // on the layer host beside the proxies
	interposed faults.Applied
	active     map[string]activeFault // by fault name
}

type activeFault struct {
	seq    uint64 // order of application: a later fault's rules win
	fault  faults.Fault
	rules  [2]segment.Rules  // to the server, to the client
	before map[string]uint64 // the segment's counters when it went on
}

var _ faults.Injector = (*Injector)(nil)

// NewInjector returns an Injector that interposes its segments on links
// through proxies (the run's journaled toxiproxy.Injector). seed makes the segments' random
// draws repeatable.
func NewInjector(proxies faults.Interposer, seed int64) *Injector {
	return &Injector{proxies: proxies, seed: uint64(seed), links: map[string]*link{}, counters: map[string]map[string]uint64{}}
}

// Applies reports whether kind k is a packet fault kind, applied by an
// Injector of this package.
func Applies(k faults.Kind) bool {
	_, ok := faults.As[faults.PacketKind](k)
	return ok
}

// Prepare interposes a segment on every proxy that one of fs puts a
// packet fault on, so that the faults later change rules on a segment
// already carrying the link's connections. Interposing restarts the proxy
// (open connections are cut once): call it before the load.
// Every packet fault is checked first: nothing is interposed for an
// experiment with a fault that could not be applied.
func (i *Injector) Prepare(ctx context.Context, fs []faults.Fault) error {
	var links []string
	for _, f := range fs {
		if !Applies(f.Kind) {
			continue
		}
		if _, err := rulesOf(f); err != nil {
			return fmt.Errorf("packet fault %s on proxy %q: %w", f.Name, f.Target, err)
		}
		links = append(links, f.Target)
	}
	for _, proxy := range links {
		if _, err := i.linkOf(ctx, proxy); err != nil {
			return err
		}
	}
	return nil
}

// linkOf returns the link of proxy, interposing its segment if it has
// none yet.
func (i *Injector) linkOf(ctx context.Context, proxy string) (*link, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if l, ok := i.links[proxy]; ok {
		return l, nil
	}
	// The segment runs where the proxy runs (the layer host of its
	// Toxiproxy), on every topology; removing the interposition stops it.
	l := &link{active: map[string]activeFault{}, seg: i.proxies.Host(faults.LayerSegment, i.seed+uint64(len(i.links))*2)}
	a, err := i.proxies.Interpose(ctx, proxy, "packet-segment", l.seg)
	if err != nil {
		return nil, fmt.Errorf("packet faults on %s: %w", proxy, err)
	}
	l.interposed = a
	i.links[proxy] = l
	return l, nil
}

// Apply puts a packet fault on its proxy's segment (interposing one if
// Prepare did not).
func (i *Injector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	rules, err := rulesOf(f)
	if err != nil {
		return faults.Applied{}, fmt.Errorf("apply %s on proxy %q: %w", f.Kind, f.Target, err)
	}
	l, err := i.linkOf(ctx, f.Target)
	if err != nil {
		return faults.Applied{}, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	before, err := l.counters(ctx)
	if err != nil {
		return faults.Applied{}, fmt.Errorf("apply %s on proxy %q: %w", f.Kind, f.Target, err)
	}
	i.applied++
	l.active[f.Name] = activeFault{seq: i.applied, fault: f, rules: rules, before: before}
	if err := l.apply(ctx); err != nil {
		delete(l.active, f.Name)
		l.apply(ctx)
		return faults.Applied{}, fmt.Errorf("apply %s on proxy %q: %w", f.Kind, f.Target, err)
	}
	return faults.Applied{Fault: f, Handles: []string{"segment/" + f.Target}, Start: time.Now()}, nil
}

// apply sets the segment's rules to those of the faults on, merged in the
// order they were applied.
func (l *link) apply(ctx context.Context) error {
	on := slices.SortedFunc(maps.Values(l.active), func(a, b activeFault) int { return cmp.Compare(a.seq, b.seq) })
	var toServer, toClient segment.Rules
	for _, a := range on {
		toServer = toServer.Merge(a.rules[0])
		toClient = toClient.Merge(a.rules[1])
	}
	return l.seg.SetRules(ctx, [2]segment.Rules{toServer, toClient})
}

// counters reads the segment's counters (segment.Counters.Map).
func (l *link) counters(ctx context.Context) (map[string]uint64, error) {
	all, err := l.seg.Counters(ctx)
	if err != nil {
		return nil, err
	}
	return all[""], nil
}

// since returns what l counted since a fault went on, before (nil when
// the segment could not be read).
func (l *link) since(ctx context.Context, before map[string]uint64) map[string]uint64 {
	now, err := l.counters(ctx)
	if err != nil {
		return nil
	}
	out := make(map[string]uint64, len(now))
	for k, v := range now {
		out[k] = v - before[k]
	}
	return out
}

// Remove takes a packet fault off its segment, which passes every packet
// untouched again from then on, and keeps the fault's counters.
func (i *Injector) Remove(ctx context.Context, a faults.Applied) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	l, ok := i.links[a.Fault.Target]
	if !ok {
		return nil
	}
	af, ok := l.active[a.Fault.Name]
	if !ok {
		return nil
	}
	delete(l.active, a.Fault.Name)
	i.counters[a.Fault.Name] = l.since(ctx, af.before)
	if err := l.apply(ctx); err != nil {
		return fmt.Errorf("remove %s on proxy %q: %w", a.Fault.Kind, a.Fault.Target, err)
	}
	return nil
}

// Counters returns what the segment did while the named fault was on:
// packets, dropped, delayed, reordered, duplicated, corrupted,
// retransmits and rto_timeouts (segment.Counters.Map); nil for a fault
// this Injector never applied.
func (i *Injector) Counters(fault string) map[string]uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.counters[fault]; ok {
		return maps.Clone(c)
	}
	for _, l := range i.links {
		if af, ok := l.active[fault]; ok {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return l.since(ctx, af.before)
		}
	}
	return nil
}

// Close points every proxy back at its upstream and stops the segments.
// It tries every link and returns the errors of those it could not
// restore; a proxy not restored stays in the journal for Reset.
func (i *Injector) Close(ctx context.Context) error {
	i.mu.Lock()
	links := i.links
	i.links = map[string]*link{}
	i.mu.Unlock()
	var errs []error
	for _, proxy := range slices.Sorted(maps.Keys(links)) {
		l := links[proxy]
		for name, af := range l.active {
			c := l.since(ctx, af.before)
			i.mu.Lock()
			i.counters[name] = c
			i.mu.Unlock()
		}
		// Points the proxy back, then stops the segment on its host (it
		// stops even when the proxy could not be pointed back: the proxy
		// then refuses connections rather than reaching a segment that
		// is gone, and the journal keeps the move for Reset).
		if err := i.proxies.Remove(ctx, l.interposed); err != nil {
			errs = append(errs, fmt.Errorf("packet faults on %s: %w", proxy, err))
		}
	}
	return errors.Join(errs...)
}

// rulesOf turns a packet fault into the rules of each direction.
func rulesOf(f faults.Fault) ([2]segment.Rules, error) {
	pk, ok := faults.As[faults.PacketKind](f.Kind)
	if !ok {
		return [2]segment.Rules{}, fmt.Errorf("%s is not a packet fault kind", f.Kind)
	}
	if f.Toxicity != 0 && f.Toxicity != 1 {
		return [2]segment.Rules{}, fmt.Errorf("toxicity %g: a packet fault applies to every connection of the link (its probability says how many packets)", f.Toxicity)
	}
	spec, _ := faults.Lookup(f.Kind)
	attrs := spec.WithDefaults(f.Attrs)
	if attr, err := spec.CheckAttrs(attrs); err != nil {
		return [2]segment.Rules{}, fmt.Errorf("%s: %w", attr, err)
	}
	a := pk.OnPacket(attrs)
	r := segment.Rules{
		Loss: ppm(a.LossPPM), LossCorrelation: ppm(a.LossCorrelationPPM),
		Latency: a.Delay, Jitter: a.Jitter,
		Reorder: ppm(a.ReorderPPM), ReorderDelay: a.ReorderDelay,
		Duplicate: ppm(a.DuplicatePPM),
		Corrupt:   ppm(a.CorruptPPM), FixChecksum: a.FixChecksum,
		MTU: int(a.MTU),
	}
	if err := r.Validate(); err != nil {
		return [2]segment.Rules{}, err
	}
	var out [2]segment.Rules
	switch f.Direction {
	case "", faults.Both:
		out = [2]segment.Rules{r, r}
	case faults.Upstream:
		out[0] = r
	case faults.Downstream:
		out[1] = r
	default:
		return out, fmt.Errorf("unknown direction %q (upstream, downstream or both)", f.Direction)
	}
	return out, nil
}

func ppm(v int64) float64 { return float64(v) / 1e6 }
