// Package natslayer is a protocol-aware layer for one NATS link: it relays
// the bytes of each client connection to the real nats-server, reading the
// NATS client protocol's framing as they pass (INFO, CONNECT, PUB, HPUB,
// SUB, UNSUB, MSG, HMSG, PING, PONG, +OK, -ERR), and applies message-level
// faults per subject: drop (nats-drop), duplicate (nats-duplicate), delay
// drawn per message (nats-delay), hold back and release after later ones
// (nats-reorder), and a consumer's lost acknowledgements (nats-drop-ack),
// so that JetStream redelivers.
//
// A Toxiproxy toxic acts on the bytes of a connection, and a NATS client
// sends and receives every subject on one connection, so a toxic cannot
// drop one message in ten of one subject, nor lose an ack without losing
// what follows it. This layer sees the messages. It is put between a
// link's Toxiproxy proxy and nats-server only while an experiment has a
// message-level fault on that link (faults/toxiproxy's Injector), so a link
// without one pays nothing.
//
// # Why a byte-stream parser and not a NATS proxy
//
// A full proxy would be a NATS server to the client and a client to the
// server: it would have to answer CONNECT, keep its own subscriptions,
// translate subscription ids, and re-implement the JetStream flow it
// forwards (pull requests, heartbeats, flow control, acks on reply
// subjects). Every one of those is a place where the layer, not the fault,
// would change what the services see. The protocol is line-framed text
// with byte-counted payloads, so the layer can cut the stream into
// operations with a control line and a known length, act on whole
// operations, and pass everything else through byte for byte: the client
// talks to the real server, subscription ids and all. The cost is a parse
// of each control line, with no per-message allocation on the path a rule
// does not pick.
//
// # What it changes besides the faults
//
// The server's INFO may list other servers of a cluster (connect_urls,
// ws_connect_urls), which clients add to their server pool and would
// reconnect to directly, past the proxy and the layer: the layer removes
// them from every INFO. A connection that turns to TLS (INFO says
// tls_required, or the client speaks first, as with a TLS handshake first)
// cannot be read: the layer relays it untouched and counts it in Opaque,
// and no rule acts on it. So does a connection whose framing the layer
// cannot follow (an unknown operation, a payload without its CRLF).
//
// # Ordering
//
// A message is acted on by one rule at most: the rules are tried in the
// order given; a rule that matches the message's subject and flow counts
// it and draws; the first that picks it acts, and the rules after it do not
// see it. A held message (delay, reorder) is overtaken by what no delaying
// rule holds — control lines, other subjects — as if its publisher had sent
// it later; the messages one delay rule holds keep their order.
package natslayer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Layer relays the NATS connections of one link and applies its rules. It
// is safe for concurrent use.
type Layer struct {
	upstream string
	rules    atomic.Pointer[[]*rule] // replaced whole by SetRules
	opaque   atomic.Int64            // connections relayed without parsing

	mu     sync.Mutex // guards SetRules, ln, conns, closed
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Layer relaying to the nats-server at upstream (host:port).
// Each client connection gets its own connection to upstream; one that
// cannot be made closes the client's, as a proxy does.
func New(upstream string) *Layer {
	l := &Layer{upstream: upstream, conns: map[*conn]struct{}{}}
	l.rules.Store(&[]*rule{})
	return l
}

// Listen starts a Layer relaying to upstream on a new port of host (e.g.
// "127.0.0.1") and returns it serving: Addr is set at once.
func Listen(host, upstream string) (*Layer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("nats layer to %s: listen: %w", upstream, err)
	}
	l := New(upstream)
	l.ln = ln
	go l.Serve(ln)
	return l, nil
}

// Addr returns the address the layer listens on, "" before Serve.
func (l *Layer) Addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Upstream returns the address the layer relays to.
func (l *Layer) Upstream() string { return l.upstream }

// SetRules replaces the layer's rules, for the connections open and those
// to come; the counters of a rule whose name and settings stay are kept.
// It checks every rule first and changes nothing if one is wrong.
func (l *Layer) SetRules(rs []Rule) error {
	for _, r := range rs {
		if err := r.Check(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := map[string]*rule{}
	for _, r := range *l.rules.Load() {
		old[r.Name] = r
	}
	next := make([]*rule, len(rs))
	for i, r := range rs {
		if o, ok := old[r.Name]; ok && o.Rule == normalized(r) {
			next[i] = o
			continue
		}
		next[i] = newRule(r)
	}
	l.rules.Store(&next)
	return nil
}

// Rules returns the layer's rules, with defaults filled in.
func (l *Layer) Rules() []Rule {
	rs := *l.rules.Load()
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = r.Rule
	}
	return out
}

// Counters returns each rule's counters by rule name.
func (l *Layer) Counters() map[string]Counters {
	rs := *l.rules.Load()
	out := make(map[string]Counters, len(rs))
	for _, r := range rs {
		out[r.Name] = r.counters()
	}
	return out
}

// Opaque returns how many connections the layer relayed without reading
// them (TLS, or framing it could not follow): no rule acted on those.
func (l *Layer) Opaque() int64 { return l.opaque.Load() }

// Serve accepts client connections on ln until Close. It returns nil after
// Close.
func (l *Layer) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return nil
	}
	l.ln = ln
	l.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return nil
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // accept backoff, as net/http's
				continue
			}
			return fmt.Errorf("nats layer: accept: %w", err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.relay(c)
		}()
	}
}

// relay dials upstream for one client connection and runs it until either
// side closes.
func (l *Layer) relay(client net.Conn) {
	server, err := net.DialTimeout("tcp", l.upstream, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	c := newConn(l, client, server)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.close()
		return
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	c.run()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close stops the layer: the listener and every connection (messages held
// are lost with them). It waits for the connections' goroutines to end.
func (l *Layer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if l.ln != nil {
		l.ln.Close()
	}
	for c := range l.conns {
		c.close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

func (l *Layer) currentRules() []*rule { return *l.rules.Load() }
