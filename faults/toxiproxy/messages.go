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

// messageLayers are the NATS layers an Injector interposed, by proxy: a
// layer runs in the Injector's process, is interposed with the first
// message-level fault on its proxy and taken off with the last, as the gRPC
// layers of the call-level faults (calls.go) are.
type messageLayers struct {
	mu       sync.Mutex // held across a whole apply or remove
	byProxy  map[string]*messageLayer
	counters map[string]map[string]uint64 // of the removed message-level faults, by fault name
}

type messageLayer struct {
	layer      *natslayer.Layer
	interposed faults.Applied
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
	rules := slices.DeleteFunc(ml.layer.Rules(), func(o natslayer.Rule) bool { return o.Name == r.Name })
	if err := ml.layer.SetRules(append(rules, r)); err != nil {
		if i.journal != nil {
			err = errors.Join(err, i.journal.Failed(e.ID, err))
		}
		return faults.Applied{}, errors.Join(i.errf("apply", f, err), i.dropMessageLayerIfIdle(ctx, f.Target))
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

// messageLayerOn returns the NATS layer on proxy, interposing one if it
// has none.
func (i *Injector) messageLayerOn(ctx context.Context, proxy string) (*messageLayer, error) {
	if ml, ok := i.messages.byProxy[proxy]; ok {
		return ml, nil
	}
	var layer *natslayer.Layer
	applied, err := i.Interpose(ctx, proxy, messageLayerName, LayerFunc(func(upstream string) (string, error) {
		// The embedded Toxiproxy dials the layer from this process.
		l, err := natslayer.Listen("127.0.0.1", upstream)
		if err != nil {
			return "", err
		}
		layer = l
		return l.Addr(), nil
	}))
	if err != nil {
		if layer != nil {
			layer.Close()
		}
		return nil, err
	}
	if i.messages.byProxy == nil {
		i.messages.byProxy = map[string]*messageLayer{}
	}
	ml := &messageLayer{layer: layer, interposed: applied}
	i.messages.byProxy[proxy] = ml
	return ml, nil
}

// dropMessageLayerIfIdle takes the NATS layer off proxy when it has no
// rule left: the proxy points back at its upstream, then the layer stops.
func (i *Injector) dropMessageLayerIfIdle(ctx context.Context, proxy string) error {
	ml, ok := i.messages.byProxy[proxy]
	if !ok || len(ml.layer.Rules()) > 0 {
		return nil
	}
	if err := i.Remove(ctx, ml.interposed); err != nil {
		return err // the layer stays, so the proxy still reaches its upstream
	}
	delete(i.messages.byProxy, proxy)
	return ml.layer.Close()
}

// undoMessage removes a message-level fault's rule from the layer on
// proxy, keeping its last counters. A layer this Injector does not hold
// (after a crash, or from another process) went with its process: nothing
// to do.
func (i *Injector) undoMessage(ctx context.Context, proxy, handle string) error {
	name := strings.TrimPrefix(handle, handleMessagePrefix)
	i.messages.mu.Lock()
	defer i.messages.mu.Unlock()
	ml, ok := i.messages.byProxy[proxy]
	if !ok {
		return nil
	}
	rules := ml.layer.Rules()
	if idx := slices.IndexFunc(rules, func(o natslayer.Rule) bool { return o.Name == name }); idx >= 0 {
		if c, ok := ml.layer.Counters()[name]; ok {
			if i.messages.counters == nil {
				i.messages.counters = map[string]map[string]uint64{}
			}
			i.messages.counters[name] = c.Map(rules[idx].Kind)
		}
	}
	rules = slices.DeleteFunc(rules, func(o natslayer.Rule) bool { return o.Name == name })
	if err := ml.layer.SetRules(rules); err != nil {
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
		for _, r := range ml.layer.Rules() {
			if r.Name == name {
				return ml.layer.Counters()[name].Map(r.Kind)
			}
		}
	}
	return maps.Clone(i.messages.counters[name])
}
