// Package grpclayer is a protocol-aware relay for one gRPC link: it
// terminates HTTP/2 from the client, relays every call to the real upstream
// over its own gRPC connection without decoding the messages (a pass-through
// codec), and applies call-level faults per method: an error status instead
// of the call (grpc-error), a delay drawn once per call (grpc-delay), a
// response that never comes although the server executed the call
// (grpc-drop-response), a stream reset in the middle of the response
// (grpc-abort).
//
// A Toxiproxy toxic acts on a connection, and gRPC multiplexes every call
// of a client on one connection, so it cannot fail one call in ten; this
// layer sees the calls. It is put between a link's Toxiproxy proxy and the
// service only while an experiment has a call-level fault on that link
// (faults/toxiproxy's Server.Interpose), so a link without one pays nothing.
//
// The client side has two fronts, chosen per connection when it is
// accepted. A grpc.Server (with an unknown-service handler and a
// pass-through codec, front_grpc.go) serves every connection while no
// grpc-abort rule is on: it batches a call's headers, message and status
// into one write, which x/net/http2 does not (the cost on a link is in
// BENCHMARKS.md, fallacies bench --only grpc-layer). A grpc.Server cannot reset one stream
// (RST_STREAM) without closing the connection the other calls share, so
// while a grpc-abort rule is on, new connections are served by
// golang.org/x/net/http2 (front_h2.go), whose handler can; the grpc.Server
// front's connections are then drained with a GOAWAY, so their clients
// reconnect to the HTTP/2 front once their calls in flight end.
package grpclayer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fallacies/fallacies/internal/sleep"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Layer relays the gRPC calls of one link and applies its rules. It is safe
// for concurrent use.
type Layer struct {
	upstream string
	conn     *grpc.ClientConn
	h2       *http2.Server
	ctx      context.Context // canceled by Close: ends held calls
	cancel   context.CancelFunc

	mu     sync.Mutex
	rules  []*rule // in the order given; read under mu, replaced whole
	ln     net.Listener
	conns  map[net.Conn]struct{}   // the HTTP/2 front's
	front  *grpcFront              // the grpc.Server front taking new connections; nil: none yet, or a grpc-abort rule is on
	fronts map[*grpcFront]struct{} // every grpc.Server front not stopped yet, draining ones included
	closed bool
	wg     sync.WaitGroup
}

// New returns a Layer relaying to the gRPC server at upstream (host:port,
// plaintext). It dials lazily: an upstream that is down fails the calls
// relayed to it with UNAVAILABLE, as it would without the layer.
func New(upstream string) (*Layer, error) {
	conn, err := grpc.NewClient("passthrough:///"+upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(maxMessage)),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window))
	if err != nil {
		return nil, fmt.Errorf("grpc layer to %s: %w", upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Layer{upstream: upstream, conn: conn, h2: &http2.Server{}, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, fronts: map[*grpcFront]struct{}{}}, nil
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
	if l.front != nil && hasAbort(next) {
		// New connections go to the HTTP/2 front; the grpc.Server front's
		// clients are told to reconnect.
		l.drainFront(l.front)
		l.front = nil
	}
	return nil
}

// hasAbort says whether rs hold a grpc-abort rule: only the HTTP/2 front
// can apply one.
func hasAbort(rs []*rule) bool {
	for _, r := range rs {
		if r.Kind == Abort {
			return true
		}
	}
	return false
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
// Close. It returns nil after Close.
func (l *Layer) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return nil
	}
	l.ln = ln
	l.mu.Unlock()
	base := &http.Server{Handler: l}
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
		if !hasAbort(l.rules) {
			if l.front == nil {
				l.front = l.newGRPCFront()
				l.fronts[l.front] = struct{}{}
			}
			f := l.front
			l.mu.Unlock()
			f.take(c)
			continue
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			l.h2.ServeConn(c, &http2.ServeConnOpts{Context: l.ctx, BaseConfig: base, Handler: l})
			c.Close()
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Close stops the layer: the listener, every client connection (calls in
// flight end), the upstream connection. It waits for the connections'
// goroutines to end.
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
		c.Close()
	}
	fronts := l.fronts
	l.fronts = nil
	l.mu.Unlock()
	l.cancel()
	for f := range fronts {
		f.srv.Stop()
	}
	l.wg.Wait()
	return l.conn.Close()
}

// matchesAny says whether a rule of rs matches method: a call no rule
// matches is relayed without the layer looking at its messages.
func matchesAny(rs []*rule, method string, canAbort bool) bool {
	for _, r := range rs {
		if r.matches(method) && (canAbort || r.Kind != Abort) {
			return true
		}
	}
	return false
}

// pick applies rs to a call of method whose first request message is
// first: it holds the call for every grpc-delay rule that fires, then
// returns the first other rule that fires, nil if none does. A front that
// cannot reset a stream (canAbort false) skips grpc-abort rules: they are
// not counted there.
func pick(ctx context.Context, rs []*rule, method string, first []byte, canAbort bool) (*rule, error) {
	var act *rule
	for _, r := range rs {
		if !r.matches(method) || (!canAbort && r.Kind == Abort) || !r.fires(method, first) {
			continue
		}
		if r.Kind == Delay {
			if err := sleep.For(ctx, r.hold()); err != nil {
				return nil, err
			}
			continue
		}
		if act == nil {
			act = r
		}
	}
	return act, nil
}

// errDropped is the status a call whose response was dropped ends with,
// if its client is still there to hear it.
var errDropped = status.Error(codes.DeadlineExceeded, "fallacies grpc layer: response dropped")
