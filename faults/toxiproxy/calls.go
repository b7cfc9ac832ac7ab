package toxiproxy

import (
	"context"

	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/grpclayer"
)

// handleCallPrefix, followed by a rule name, is the handle of a call-level
// fault: a rule of the gRPC layer interposed on the fault's proxy.
const handleCallPrefix = "grpc/"

// newCallLayers returns the gRPC layers of the call-level faults
// (rulelayers.go); each is named "grpc-layer" in the journal.
func newCallLayers() *ruleLayers[grpclayer.Rule] {
	return newRuleLayers(faults.LayerGRPC, "grpc-layer", handleCallPrefix, "gRPC", func(r grpclayer.Rule) string { return r.Name })
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

// PrepareCalls interposes the gRPC layer, without rules, on every proxy
// that one of fs puts a call-level fault on, so that the faults later only
// set rules on a layer already carrying the link's connections (why:
// ruleLayers.prepare). Call it before the load, and CloseCalls after the
// faults are removed. Every call-level fault of fs is checked first:
// nothing is interposed if one is wrong.
func (i *Injector) PrepareCalls(ctx context.Context, fs []faults.Fault) error {
	proxies, err := proxiesOf(i, fs, callRule)
	if err != nil {
		return err
	}
	return i.calls.prepare(ctx, i, proxies)
}

// CloseCalls takes off the layers PrepareCalls interposed, once their
// faults are removed (a rule still on goes with its layer; its counters
// are kept).
func (i *Injector) CloseCalls(ctx context.Context) error { return i.calls.close(ctx, i) }

// Counters returns what the call-level or message-level fault named name
// saw, by counter name (calls, faulted; messages, faulted, overtaken): now
// while it is on, or as it was when it was removed. It returns nil for a
// fault that is neither.
func (i *Injector) Counters(name string) map[string]uint64 {
	if m := i.messages.counter(name); m != nil {
		return m
	}
	return i.calls.counter(name)
}
