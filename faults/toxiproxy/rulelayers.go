package toxiproxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// ruleLayers are the layers of one type that an Injector interposed for
// faults that set rules (R) on a link layer, by proxy: the gRPC layers of
// the call-level faults (calls.go) and the NATS layers of the
// message-level faults (messages.go). A layer runs on the layer host
// beside the proxies (Host: in the process of the testbed's Toxiproxy, the
// compose topology's toxiproxy container); it is interposed by prepare
// before the load (or with the first such fault on its proxy) and taken
// off by close (or with the last).
type ruleLayers[R any] struct {
	typ     string // the layer type on the host: faults.LayerGRPC, faults.LayerNATS
	journal string // names the layer in the journal
	prefix  string // followed by a rule name, the handle of a fault
	what    string // "gRPC", "NATS": the layer in errors
	name    func(R) string

	mu       sync.Mutex // held across a whole apply or remove
	byProxy  map[string]*ruleLayer[R]
	counters map[string]map[string]uint64 // of the removed faults, by fault name
}

// ruleLayer is one interposed layer.
type ruleLayer[R any] struct {
	layer      faults.HostedLayer
	rules      []R // what the layer was last set to
	interposed faults.Applied
	prepared   bool // interposed by prepare: stays without rules until close
}

func newRuleLayers[R any](typ, journal, prefix, what string, name func(R) string) *ruleLayers[R] {
	return &ruleLayers[R]{typ: typ, journal: journal, prefix: prefix, what: what, name: name, byProxy: map[string]*ruleLayer[R]{}}
}

// apply puts a fault on its proxy: the layer is interposed if the proxy
// has none yet, then the fault's rule r is added to it. The fault is
// journaled; its proxy is restored by the interposition's own journal
// entry, so Reset after a crash points it back.
func (ls *ruleLayers[R]) apply(ctx context.Context, i *Injector, f faults.Fault, r R) (faults.Applied, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, err := ls.on(ctx, i, f.Target)
	if err != nil {
		return faults.Applied{}, i.errf("apply", f, err)
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.api, Handles: []string{ls.prefix + ls.name(r)}, Time: time.Now()}
	if i.journal != nil {
		if err := i.journal.Applying(e); err != nil {
			return faults.Applied{}, errors.Join(i.errf("apply", f, err), ls.dropIfIdle(ctx, i, f.Target))
		}
	}
	if err := ls.set(ctx, l, append(ls.without(l.rules, ls.name(r)), r)); err != nil {
		if i.journal != nil {
			err = errors.Join(err, i.journal.Failed(e.ID, err))
		}
		return faults.Applied{}, errors.Join(i.errf("apply", f, err), ls.dropIfIdle(ctx, i, f.Target))
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

// without returns rules without the one named name.
func (ls *ruleLayers[R]) without(rules []R, name string) []R {
	return slices.DeleteFunc(slices.Clone(rules), func(o R) bool { return ls.name(o) == name })
}

// set sets l's rules and remembers them.
func (ls *ruleLayers[R]) set(ctx context.Context, l *ruleLayer[R], rules []R) error {
	if err := l.layer.SetRules(ctx, rules); err != nil {
		return err
	}
	l.rules = rules
	return nil
}

// on returns the layer on proxy, interposing one if it has none; ls.mu is
// held.
func (ls *ruleLayers[R]) on(ctx context.Context, i *Injector, proxy string) (*ruleLayer[R], error) {
	if l, ok := ls.byProxy[proxy]; ok {
		return l, nil
	}
	layer := i.Host(ls.typ, 0)
	applied, err := i.Interpose(ctx, proxy, ls.journal, layer)
	if err != nil {
		return nil, err
	}
	l := &ruleLayer[R]{layer: layer, interposed: applied}
	ls.byProxy[proxy] = l
	return l, nil
}

// prepare interposes the layer, without rules, on every one of proxies,
// so that the faults later only set rules on a layer already carrying the
// link's connections. Interposing restarts the proxy, cutting its
// connections and leaving clients to reconnect: done at a fault's start
// and end in the middle of the load, that made the calls in flight and the
// reconnection part of the result, which then depended on the machine's
// load.
func (ls *ruleLayers[R]) prepare(ctx context.Context, i *Injector, proxies []string) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, proxy := range proxies {
		l, err := ls.on(ctx, i, proxy)
		if err != nil {
			return fmt.Errorf("prepare the %s layer on proxy %q: %w", ls.what, proxy, err)
		}
		l.prepared = true
	}
	return nil
}

// close takes off the layers prepare interposed, once their faults are
// removed (a rule still on goes with its layer; its counters are kept).
func (ls *ruleLayers[R]) close(ctx context.Context, i *Injector) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var errs []error
	for proxy, l := range ls.byProxy {
		if !l.prepared {
			continue
		}
		if all, err := l.layer.Counters(ctx); err == nil {
			ls.counters = keepCounters(ls.counters, all)
		}
		if err := ls.set(ctx, l, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		l.prepared = false
		errs = append(errs, ls.dropIfIdle(ctx, i, proxy))
	}
	return errors.Join(errs...)
}

// keepCounters records the counters of rules taken off a layer, by rule
// name, in kept (made when nil), and returns it.
func keepCounters(kept, taken map[string]map[string]uint64) map[string]map[string]uint64 {
	if kept == nil {
		kept = map[string]map[string]uint64{}
	}
	maps.Copy(kept, taken)
	return kept
}

// dropIfIdle takes the layer off proxy when it has no rule left and was
// not prepared: the proxy points back at its upstream, then the layer
// stops; ls.mu is held.
func (ls *ruleLayers[R]) dropIfIdle(ctx context.Context, i *Injector, proxy string) error {
	l, ok := ls.byProxy[proxy]
	if !ok || l.prepared || len(l.rules) > 0 {
		return nil
	}
	if err := i.Remove(ctx, l.interposed); err != nil {
		return err // the layer stays, so the proxy still reaches its upstream
	}
	delete(ls.byProxy, proxy)
	return nil
}

// undo removes a fault's rule (by its handle) from the layer on proxy,
// keeping its last counters. A layer this Injector does not hold (after a
// crash, or from another process) is stopped by its interposition's own
// journal entry: nothing to do here.
func (ls *ruleLayers[R]) undo(ctx context.Context, i *Injector, proxy, handle string) error {
	name := strings.TrimPrefix(handle, ls.prefix)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.byProxy[proxy]
	if !ok {
		return nil
	}
	if all, err := l.layer.Counters(ctx); err == nil {
		if c, ok := all[name]; ok {
			ls.counters = keepCounters(ls.counters, map[string]map[string]uint64{name: c})
		}
	}
	if err := ls.set(ctx, l, ls.without(l.rules, name)); err != nil {
		return fmt.Errorf("remove %s rule %s: %w", ls.what, name, err)
	}
	return ls.dropIfIdle(ctx, i, proxy)
}

// counter returns what the fault named name saw, by counter name: now
// while it is on, or as it was when it was removed; nil for a fault none
// of these layers had.
func (ls *ruleLayers[R]) counter(name string) map[string]uint64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.byProxy {
		if !slices.ContainsFunc(l.rules, func(r R) bool { return ls.name(r) == name }) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		all, err := l.layer.Counters(ctx)
		cancel()
		if c, ok := all[name]; err == nil && ok {
			return c
		}
	}
	return maps.Clone(ls.counters[name])
}

// proxiesOf returns the proxies the faults of fs that rule says are its
// kind's target, once each; it checks each such fault's rule first and
// returns the first wrong one's error.
func proxiesOf[R any](i *Injector, fs []faults.Fault, rule func(faults.Fault) (R, bool, error)) ([]string, error) {
	var proxies []string
	for _, f := range fs {
		_, ok, err := rule(f)
		if err != nil {
			return nil, i.errf("prepare", f, err)
		}
		if ok && !slices.Contains(proxies, f.Target) {
			proxies = append(proxies, f.Target)
		}
	}
	return proxies, nil
}
