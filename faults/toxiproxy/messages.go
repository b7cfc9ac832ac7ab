package toxiproxy

import (
	"context"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/natslayer"
)

// handleMessagePrefix, followed by a rule name, is the handle of a
// message-level fault: a rule of the NATS layer interposed on the fault's
// proxy.
const handleMessagePrefix = "nats/"

// newMessageLayers returns the NATS layers of the message-level faults
// (rulelayers.go); each is named "nats-layer" in the journal.
func newMessageLayers() *ruleLayers[natslayer.Rule] {
	return newRuleLayers(faults.LayerNATS, "nats-layer", handleMessagePrefix, "NATS", func(r natslayer.Rule) string { return r.Name })
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

// PrepareMessages interposes the NATS layer, without rules, on every proxy
// that one of fs puts a message-level fault on, for the reason PrepareCalls
// does the gRPC layer's. Call it before the load, and CloseMessages after
// the faults are removed. Every message-level fault of fs is checked
// first: nothing is interposed if one is wrong.
func (i *Injector) PrepareMessages(ctx context.Context, fs []faults.Fault) error {
	proxies, err := proxiesOf(i, fs, messageRule)
	if err != nil {
		return err
	}
	return i.messages.prepare(ctx, i, proxies)
}

// CloseMessages takes off the layers PrepareMessages interposed, once their
// faults are removed (a rule still on goes with its layer; its counters
// are kept).
func (i *Injector) CloseMessages(ctx context.Context) error { return i.messages.close(ctx, i) }
