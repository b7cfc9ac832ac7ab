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

// Interposer puts a Layer on a link and takes it off again: the Applied
// it returns is removed with Remove, which points the link back at its
// upstream. faults/toxiproxy's Injector is one, journaled.
type Interposer interface {
	Interpose(ctx context.Context, proxy, name string, layer Layer) (Applied, error)
	Remove(ctx context.Context, a Applied) error
}
