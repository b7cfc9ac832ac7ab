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

	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/grpclayer"
)

// handleCallPrefix, followed by a rule name, is the handle of a call-level
// fault: a rule of the gRPC layer interposed on the fault's proxy.
const handleCallPrefix = "grpc/"

// callLayerName names the gRPC layer in the journal.
const callLayerName = "grpc-layer"

// callLayers are the gRPC layers an Injector interposed, by proxy. A layer
// runs on the layer host beside the proxies (Host: in the process of the
// testbed's Toxiproxy, the compose topology's toxiproxy container); it is
// interposed with the first call-level fault on its proxy and taken off
// with the last.
type callLayers struct {
	mu       sync.Mutex // held across a whole apply or remove
	byProxy  map[string]*callLayer
	counters map[string]map[string]uint64 // of the removed call-level faults, by fault name
}

type callLayer struct {
	layer      faults.HostedLayer
	rules      []grpclayer.Rule // what the layer was last set to
	interposed faults.Applied
	prepared   bool // interposed by PrepareCalls: stays without rules until CloseCalls
}

// callRule returns the gRPC layer rule of a call-level fault, false when
// the fault is not one.
func callRule(f faults.Fault) (grpclayer.Rule, bool, error) {
	ck, ok := faults.As[faults.CallKind](f.Kind)
	if !ok {
		return grpclayer.Rule{}, false, nil
	}
	a := ck.OnCall(f)
	r := grpclayer.Rule{Name: ruleName(f), Kind: grpclayer.Kind(f.Kind), Method: a.Method, Probability: a.Probability,
		Code: codes.Code(a.Code), Message: a.Message, Attempts: a.Attempts, Latency: a.Delay, Jitter: a.Jitter}
	if err := r.Check(); err != nil {
		return grpclayer.Rule{}, true, err
	}
	return r, true, nil
}

func ruleName(f faults.Fault) string {
	if f.Name != "" {
		return f.Name
	}
	return string(f.Kind)
}

// applyCall puts a call-level fault on its proxy: the gRPC layer is
// interposed if the proxy has none yet, then the fault's rule is added to
// it. The fault is journaled; its proxy is restored by the interposition's
// own journal entry, so Reset after a crash points it back.
func (i *Injector) applyCall(ctx context.Context, f faults.Fault, r grpclayer.Rule) (faults.Applied, error) {
	i.calls.mu.Lock()
	defer i.calls.mu.Unlock()
	cl, err := i.callLayerOn(ctx, f.Target)
	if err != nil {
		return faults.Applied{}, i.errf("apply", f, err)
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.api, Handles: []string{handleCallPrefix + r.Name}, Time: time.Now()}
	if i.journal != nil {
		if err := i.journal.Applying(e); err != nil {
			return faults.Applied{}, errors.Join(i.errf("apply", f, err), i.dropLayerIfIdle(ctx, f.Target))
		}
	}
	if err := cl.setRules(ctx, append(without(cl.rules, r.Name), r)); err != nil {
		if i.journal != nil {
			err = errors.Join(err, i.journal.Failed(e.ID, err))
		}
		return faults.Applied{}, errors.Join(i.errf("apply", f, err), i.dropLayerIfIdle(ctx, f.Target))
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

// without returns rules without the one named name.
func without(rules []grpclayer.Rule, name string) []grpclayer.Rule {
	return slices.DeleteFunc(slices.Clone(rules), func(o grpclayer.Rule) bool { return o.Name == name })
}

// setRules sets the layer's rules and remembers them.
func (cl *callLayer) setRules(ctx context.Context, rules []grpclayer.Rule) error {
	if err := cl.layer.SetRules(ctx, rules); err != nil {
		return err
	}
	cl.rules = rules
	return nil
}

// callLayerOn returns the gRPC layer on proxy, interposing one if it has
// none.
func (i *Injector) callLayerOn(ctx context.Context, proxy string) (*callLayer, error) {
	if cl, ok := i.calls.byProxy[proxy]; ok {
		return cl, nil
	}
	layer := i.Host(faults.LayerGRPC, 0)
	applied, err := i.Interpose(ctx, proxy, callLayerName, layer)
	if err != nil {
		return nil, err
	}
	if i.calls.byProxy == nil {
		i.calls.byProxy = map[string]*callLayer{}
	}
	cl := &callLayer{layer: layer, interposed: applied}
	i.calls.byProxy[proxy] = cl
	return cl, nil
}

// PrepareCalls interposes the gRPC layer, without rules, on every proxy
// that one of fs puts a call-level fault on, so that the faults later only
// set rules on a layer already carrying the link's connections.
// Interposing restarts the proxy, cutting its connections and leaving
// clients to reconnect: done at a fault's start and end in the middle of
// the load, that made the calls in flight and the reconnection part of the
// result, which then depended on the machine's load. Call it before the
// load, and CloseCalls after the faults are removed. Every call-level
// fault of fs is checked first: nothing is interposed if one is wrong.
func (i *Injector) PrepareCalls(ctx context.Context, fs []faults.Fault) error {
	var proxies []string
	for _, f := range fs {
		_, ok, err := callRule(f)
		if err != nil {
			return i.errf("prepare", f, err)
		}
		if ok && !slices.Contains(proxies, f.Target) {
			proxies = append(proxies, f.Target)
		}
	}
	i.calls.mu.Lock()
	defer i.calls.mu.Unlock()
	for _, proxy := range proxies {
		cl, err := i.callLayerOn(ctx, proxy)
		if err != nil {
			return fmt.Errorf("prepare the gRPC layer on proxy %q: %w", proxy, err)
		}
		cl.prepared = true
	}
	return nil
}

// CloseCalls takes off the layers PrepareCalls interposed, once their
// faults are removed (a rule still on goes with its layer; its counters
// are kept).
func (i *Injector) CloseCalls(ctx context.Context) error {
	i.calls.mu.Lock()
	defer i.calls.mu.Unlock()
	var errs []error
	for proxy, cl := range i.calls.byProxy {
		if !cl.prepared {
			continue
		}
		if all, err := cl.layer.Counters(ctx); err == nil {
			i.calls.counters = keepCounters(i.calls.counters, all)
		}
		if err := cl.setRules(ctx, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		cl.prepared = false
		errs = append(errs, i.dropLayerIfIdle(ctx, proxy))
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

// dropLayerIfIdle takes the gRPC layer off proxy when it has no rule left
// and was not prepared: the proxy points back at its upstream, then the
// layer stops.
func (i *Injector) dropLayerIfIdle(ctx context.Context, proxy string) error {
	cl, ok := i.calls.byProxy[proxy]
	if !ok || cl.prepared || len(cl.rules) > 0 {
		return nil
	}
	if err := i.Remove(ctx, cl.interposed); err != nil {
		return err // the layer stays, so the proxy still reaches its upstream
	}
	delete(i.calls.byProxy, proxy)
	return nil
}

// undoCall removes a call-level fault's rule from the layer on proxy,
// keeping its last counters. A layer this Injector does not hold (after a
// crash, or from another process) is stopped by its interposition's own
// journal entry: nothing to do here.
func (i *Injector) undoCall(ctx context.Context, proxy, handle string) error {
	name := strings.TrimPrefix(handle, handleCallPrefix)
	i.calls.mu.Lock()
	defer i.calls.mu.Unlock()
	cl, ok := i.calls.byProxy[proxy]
	if !ok {
		return nil
	}
	if all, err := cl.layer.Counters(ctx); err == nil {
		if c, ok := all[name]; ok {
			i.calls.counters = keepCounters(i.calls.counters, map[string]map[string]uint64{name: c})
		}
	}
	if err := cl.setRules(ctx, without(cl.rules, name)); err != nil {
		return fmt.Errorf("remove gRPC rule %s: %w", name, err)
	}
	return i.dropLayerIfIdle(ctx, proxy)
}

// Counters returns what the call-level or message-level fault named name
// saw, by counter name (calls, faulted; messages, faulted, overtaken): now
// while it is on, or as it was when it was removed. It returns nil for a
// fault that is neither.
func (i *Injector) Counters(name string) map[string]uint64 {
	if m := i.messageCounters(name); m != nil {
		return m
	}
	i.calls.mu.Lock()
	defer i.calls.mu.Unlock()
	for _, cl := range i.calls.byProxy {
		if !slices.ContainsFunc(cl.rules, func(r grpclayer.Rule) bool { return r.Name == name }) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		all, err := cl.layer.Counters(ctx)
		cancel()
		if c, ok := all[name]; err == nil && ok {
			return c
		}
	}
	return maps.Clone(i.calls.counters[name])
}
