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
	"github.com/fallacies/fallacies/faults/natslayer"
)

// handleMessagePrefix, followed by a rule name, is the handle of a
// message-level fault: a rule of the NATS layer interposed on the fault's
// proxy.
const handleMessagePrefix = "nats/"

// messageLayerName names the NATS layer in the journal.
const messageLayerName = "nats-layer"

// messageLayers are the NATS layers an Injector interposed, by proxy. A
// layer runs on the layer host beside the proxies, as the gRPC layers of
// the call-level faults (calls.go) do; it is interposed by PrepareMessages
// before the load (or with the first message-level fault on its proxy) and
// taken off by CloseMessages (or with the last).
type messageLayers struct {
	mu       sync.Mutex // held across a whole apply or remove
	byProxy  map[string]*messageLayer
	counters map[string]map[string]uint64 // of the removed message-level faults, by fault name
}

type messageLayer struct {
	layer      faults.HostedLayer
	rules      []natslayer.Rule // what the layer was last set to
	interposed faults.Applied
	prepared   bool // interposed by PrepareMessages: stays without rules until CloseMessages
}

// messageRule returns the NATS layer rule of a message-level fault, false
// when the fault is not one.
func messageRule(f faults.Fault) (natslayer.Rule, bool, error) {
	mk, ok := faults.As[faults.MessageKind](f.Kind)
	if !ok {
		return natslayer.Rule{}, false, nil
	}
	a := mk.OnMessage(f)
	r := natslayer.Rule{Name: ruleName(f), Kind: natslayer.Kind(f.Kind), Subject: a.Subject, Flow: flowOf(a.Direction),
		Probability: a.Probability, Toxicity: a.Toxicity, Latency: a.Delay, Jitter: a.Jitter, Hold: a.Hold}
	if err := r.Check(); err != nil {
		return natslayer.Rule{}, true, err
	}
	return r, true, nil
}

// flowOf maps a Toxiproxy direction on the link to the NATS layer's flow:
// upstream is the client's stream to the server (its publishes),
// downstream the server's to the client (its deliveries).
func flowOf(d faults.Direction) natslayer.Flow {
	switch d {
	case faults.Upstream:
		return natslayer.ToServer
	case faults.Downstream:
		return natslayer.ToClient
	}
	return natslayer.BothFlows
}

// applyMessage puts a message-level fault on its proxy: the NATS layer is
// interposed if the proxy has none yet, then the fault's rule is added to
// it. The fault is journaled; its proxy is restored by the interposition's
// own journal entry, so Reset after a crash points it back.
func (i *Injector) applyMessage(ctx context.Context, f faults.Fault, r natslayer.Rule) (faults.Applied, error) {
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	ml, err := i.messageLayerOn(ctx, f.Target)
	if err != nil {
		return faults.Applied{}, i.errf("apply", f, err)
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.api, Handles: []string{handleMessagePrefix + r.Name}, Time: time.Now()}
	if i.journal != nil {
		if err := i.journal.Applying(e); err != nil {
			return faults.Applied{}, errors.Join(i.errf("apply", f, err), i.dropMessageLayerIfIdle(ctx, f.Target))
		}
	}
	if err := ml.setRules(ctx, append(withoutRule(ml.rules, r.Name), r)); err != nil {
		if i.journal != nil {
			err = errors.Join(err, i.journal.Failed(e.ID, err))
		}
		return faults.Applied{}, errors.Join(i.errf("apply", f, err), i.dropMessageLayerIfIdle(ctx, f.Target))
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

// withoutRule returns rules without the one named name.
func withoutRule(rules []natslayer.Rule, name string) []natslayer.Rule {
	return slices.DeleteFunc(slices.Clone(rules), func(o natslayer.Rule) bool { return o.Name == name })
}

// setRules sets the layer's rules and remembers them.
func (ml *messageLayer) setRules(ctx context.Context, rules []natslayer.Rule) error {
	if err := ml.layer.SetRules(ctx, rules); err != nil {
		return err
	}
	ml.rules = rules
	return nil
}

// messageLayerOn returns the NATS layer on proxy, interposing one if it
// has none.
func (i *Injector) messageLayerOn(ctx context.Context, proxy string) (*messageLayer, error) {
	if ml, ok := i.messages.byProxy[proxy]; ok {
		return ml, nil
	}
	layer := i.Host(faults.LayerNATS, 0)
	applied, err := i.Interpose(ctx, proxy, messageLayerName, layer)
	if err != nil {
		return nil, err
	}
	if i.messages.byProxy == nil {
		i.messages.byProxy = map[string]*messageLayer{}
	}
	ml := &messageLayer{layer: layer, interposed: applied}
	i.messages.byProxy[proxy] = ml
	return ml, nil
}

// PrepareMessages interposes the NATS layer, without rules, on every proxy
// that one of fs puts a message-level fault on, for the reason PrepareCalls
// does the gRPC layer's: interposing restarts the proxy and cuts the NATS
// connections on it, which in the middle of the load made the result
// depend on the reconnection. Call it before the load, and CloseMessages
// after the faults are removed. Every message-level fault of fs is checked
// first: nothing is interposed if one is wrong.
func (i *Injector) PrepareMessages(ctx context.Context, fs []faults.Fault) error {
	var proxies []string
	for _, f := range fs {
		_, ok, err := messageRule(f)
		if err != nil {
			return i.errf("prepare", f, err)
		}
		if ok && !slices.Contains(proxies, f.Target) {
			proxies = append(proxies, f.Target)
		}
	}
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	for _, proxy := range proxies {
		ml, err := i.messageLayerOn(ctx, proxy)
		if err != nil {
			return fmt.Errorf("prepare the NATS layer on proxy %q: %w", proxy, err)
		}
		ml.prepared = true
	}
	return nil
}

// CloseMessages takes off the layers PrepareMessages interposed, once their
// faults are removed (a rule still on goes with its layer; its counters
// are kept).
func (i *Injector) CloseMessages(ctx context.Context) error {
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	var errs []error
	for proxy, ml := range i.messages.byProxy {
		if !ml.prepared {
			continue
		}
		if all, err := ml.layer.Counters(ctx); err == nil {
			i.messages.counters = keepCounters(i.messages.counters, all)
		}
		if err := ml.setRules(ctx, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		ml.prepared = false
		errs = append(errs, i.dropMessageLayerIfIdle(ctx, proxy))
	}
	return errors.Join(errs...)
}

// dropMessageLayerIfIdle takes the NATS layer off proxy when it has no
// rule left and was not prepared: the proxy points back at its upstream,
// then the layer stops.
func (i *Injector) dropMessageLayerIfIdle(ctx context.Context, proxy string) error {
	ml, ok := i.messages.byProxy[proxy]
	if !ok || ml.prepared || len(ml.rules) > 0 {
		return nil
	}
	if err := i.Remove(ctx, ml.interposed); err != nil {
		return err // the layer stays, so the proxy still reaches its upstream
	}
	delete(i.messages.byProxy, proxy)
	return nil
}

// undoMessage removes a message-level fault's rule from the layer on
// proxy, keeping its last counters. A layer this Injector does not hold
// (after a crash, or from another process) is stopped by its
// interposition's own journal entry: nothing to do here.
func (i *Injector) undoMessage(ctx context.Context, proxy, handle string) error {
	name := strings.TrimPrefix(handle, handleMessagePrefix)
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	ml, ok := i.messages.byProxy[proxy]
	if !ok {
		return nil
	}
	if all, err := ml.layer.Counters(ctx); err == nil {
		if c, ok := all[name]; ok {
			i.messages.counters = keepCounters(i.messages.counters, map[string]map[string]uint64{name: c})
		}
	}
	if err := ml.setRules(ctx, withoutRule(ml.rules, name)); err != nil {
		return fmt.Errorf("remove NATS rule %s: %w", name, err)
	}
	return i.dropMessageLayerIfIdle(ctx, proxy)
}

// messageCounters returns what the message-level fault named name saw
// (messages, faulted; overtaken for a reorder): now while it is on, or as
// it was when it was removed; nil for a fault that is not one.
func (i *Injector) messageCounters(name string) map[string]uint64 {
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	for _, ml := range i.messages.byProxy {
		if !slices.ContainsFunc(ml.rules, func(r natslayer.Rule) bool { return r.Name == name }) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		all, err := ml.layer.Counters(ctx)
		cancel()
		if c, ok := all[name]; err == nil && ok {
			return c
		}
	}
	return maps.Clone(i.messages.counters[name])
}
