// Package grpclayer is a protocol-aware relay for one gRPC link. It does
// not terminate HTTP/2: it relays the frames of each client connection to
// its own connection to the real upstream (golang.org/x/net/http2's
// Framer on both sides), decodes every header block to learn each call's
// method (its :path) and encodes it again with its own HPACK encoder for
// the other peer, and writes every other frame (DATA, WINDOW_UPDATE,
// SETTINGS, PING, GOAWAY, RST_STREAM, PRIORITY) on as it came. Because
// each peer's decoder follows the layer's encoder, not the other peer's,
// the layer can hold, swallow or make up one stream's headers without
// spoiling the HPACK state of the connection's other calls.
//
// It applies call-level faults per method: an error status instead of
// the call (grpc-error, a Trailers-Only response; the server never sees
// the call), a delay drawn once per call that holds the response
// (grpc-delay), a response swallowed although the server executed the
// call (grpc-drop-response), a stream reset in the middle of the response
// (grpc-abort). Flow control stays right: DATA the layer swallows is given
// back to its sender with WINDOW_UPDATE. A call no rule matches costs the
// parsing of its frames and the re-encoding of its headers (fallacies
// bench --only grpc-layer, BENCHMARKS.md).
//
// A Toxiproxy toxic acts on a connection, and gRPC multiplexes every call
// of a client on one connection, so it cannot fail one call in ten; this
// layer sees the calls. It is put between a link's Toxiproxy proxy and the
// service only while an experiment has a call-level fault on that link
// (faults/toxiproxy's Server.Interpose), so a link without one pays nothing.
package grpclayer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Layer relays the gRPC calls of one link and applies its rules. It is safe
// for concurrent use.
type Layer struct {
	upstream string

	mu     sync.Mutex
	rules  []*rule // in the order given; read under mu, replaced whole
	ln     net.Listener
	relays map[*relay]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Layer relaying to the gRPC server at upstream (host:port,
// plaintext HTTP/2). It dials once per client connection: an upstream that
// is down ends that connection, and its calls fail with UNAVAILABLE, as
// they would without the layer.
func New(upstream string) (*Layer, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("grpc layer to %s: %w", upstream, err)
	}
	return &Layer{upstream: upstream, relays: map[*relay]struct{}{}}, nil
}

// Listen starts a Layer relaying to upstream on a new port of host (e.g.
// "127.0.0.1") and returns it serving: Addr is set at once.
func Listen(host, upstream string) (*Layer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("grpc layer to %s: listen: %w", upstream, err)
	}
	l, err := New(upstream)
	if err != nil {
		ln.Close()
		return nil, err
	}
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

// SetRules replaces the layer's rules; the counters of a rule whose name
// stays are kept. It checks every rule first and changes nothing if one is
// wrong.
func (l *Layer) SetRules(rs []Rule) error {
	for _, r := range rs {
		if err := r.Check(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := map[string]*rule{}
	for _, r := range l.rules {
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
	l.rules = next
	return nil
}

func normalized(r Rule) Rule { return newRule(r).Rule }

// Rules returns the layer's rules.
func (l *Layer) Rules() []Rule {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Rule, len(l.rules))
	for i, r := range l.rules {
		out[i] = r.Rule
	}
	return out
}

// Counters returns each rule's counters by rule name.
func (l *Layer) Counters() map[string]Counters {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Counters, len(l.rules))
	for _, r := range l.rules {
		out[r.Name] = r.counters()
	}
	return out
}

func (l *Layer) currentRules() []*rule {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rules
}

// Serve accepts HTTP/2 (prior knowledge, plaintext) connections on ln until
// Close, relaying each to a connection of its own to the upstream. It
// returns nil after Close.
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return fmt.Errorf("grpc layer: accept: %w", err)
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil
		}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serveConn(c)
	}
}

// track adds r to the relays Close ends (or removes it); it says false if
// the layer is closed already.
func (l *Layer) track(r *relay, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !add {
		delete(l.relays, r)
		return true
	}
	if l.closed {
		return false
	}
	l.relays[r] = struct{}{}
	return true
}

// Close stops the layer: the listener and every connection, both sides
// (calls in flight end). It waits for the connections' goroutines to end.
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
	for r := range l.relays {
		r.close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// pick applies rs to a call of method whose first request message is
// first (nil when no rule needs it): every rule matching the method counts
// the call and draws; it returns the first rule other than grpc-delay that
// fires, nil if none does, and the hold of the grpc-delay rules that fire.
func pick(rs []*rule, method string, first []byte) (*rule, time.Duration) {
	var act *rule
	var hold time.Duration
	for _, r := range rs {
		if !r.matches(method) || !r.fires(method, first) {
			continue
		}
		if r.Kind == Delay {
			hold += r.hold()
			continue
		}
		if act == nil {
			act = r
		}
	}
	return act, hold
}
