package faults

import "context"

// Layer is something put on a link between its proxy and the proxy's
// upstream: a packet segment (faults/segment), a protocol-aware call layer
// (faults/grpclayer). Start is given the upstream, starts the layer
// forwarding to it, and returns the address the proxy must send to
// instead.
type Layer interface {
	Start(upstream string) (addr string, err error)
}

// LayerFunc adapts a function to Layer.
type LayerFunc func(upstream string) (addr string, err error)

// Start implements Layer.
func (f LayerFunc) Start(upstream string) (string, error) { return f(upstream) }

// Layer types a layer host runs (Interposer.Host), by the name its
// control API knows them by.
const (
	LayerSegment = "segment" // a packet segment (faults/segment); rules: [2]segment.Rules, to the server then to the client
	LayerGRPC    = "grpc"    // a gRPC call layer (faults/grpclayer); rules: []grpclayer.Rule
	LayerNATS    = "nats"    // a NATS message layer (faults/natslayer); rules: []natslayer.Rule
)

// HostedLayer is a Layer that runs on the layer host beside the link's
// proxies (where the proxies run: the process of the testbed's Toxiproxy,
// the compose topology's toxiproxy container), so that every topology can
// have one. Its Ref is known before it starts: interposing it journals
// the Ref first, so that removing the interposition, and `fallacies
// reset` after a crash, stop it on its host.
type HostedLayer interface {
	Layer
	// Ref names the layer on its host: its type, a slash, an id.
	Ref() string
	// SetRules replaces the layer's rules with rules, the rules value of
	// its type (see the Layer* constants), sent as JSON.
	SetRules(ctx context.Context, rules any) error
	// Counters reads what the layer counted, by rule name; a layer whose
	// counters are the whole layer's (a segment) has them under "".
	Counters(ctx context.Context) (map[string]map[string]uint64, error)
}

// Interposer puts a Layer on a link and takes it off again: the Applied
// it returns is removed with Remove, which points the link back at its
// upstream (and stops a HostedLayer). faults/toxiproxy's Injector is one,
// journaled.
type Interposer interface {
	Interpose(ctx context.Context, proxy, name string, layer Layer) (Applied, error)
	Remove(ctx context.Context, a Applied) error
	// Host returns a layer of type typ (LayerSegment, LayerGRPC, LayerNATS) to run
	// on the layer host beside the proxies, not started: Interpose starts
	// it. seed makes its random draws repeatable.
	Host(typ string, seed uint64) HostedLayer
}
