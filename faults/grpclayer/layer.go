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
// The client side is served by golang.org/x/net/http2 rather than a
// grpc.Server because only a raw HTTP/2 handler can reset one stream
// (RST_STREAM) without closing the connection the other calls share.
package grpclayer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fallacies/fallacies/internal/sleep"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
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
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Layer relaying to the gRPC server at upstream (host:port,
// plaintext). It dials lazily: an upstream that is down fails the calls
// relayed to it with UNAVAILABLE, as it would without the layer.
func New(upstream string) (*Layer, error) {
	conn, err := grpc.NewClient("passthrough:///"+upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("grpc layer to %s: %w", upstream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Layer{upstream: upstream, conn: conn, h2: &http2.Server{}, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}}, nil
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
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	return l.conn.Close()
}

// ServeHTTP relays one gRPC call, applying the rules that match its method.
func (l *Layer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 || r.Method != http.MethodPost || !isGRPC(r.Header.Get("Content-Type")) {
		http.Error(w, "fallacies grpc layer: gRPC over HTTP/2 only", http.StatusUnsupportedMediaType)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	ctx := r.Context()
	if t := r.Header.Get("Grpc-Timeout"); t != "" {
		d, err := parseTimeout(t)
		if err != nil {
			finish(w, status.New(codes.Internal, "fallacies grpc layer: "+err.Error()))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	md, err := requestMetadata(r.Header)
	if err != nil {
		finish(w, statusOf(err))
		return
	}
	method := r.URL.Path
	first, err := readMessage(r.Body)
	hasFirst := err == nil
	if err != nil && err != io.EOF {
		finish(w, statusOf(err))
		return
	}

	var act *rule
	for _, ru := range l.currentRules() {
		if !ru.matches(method) || !ru.fires(method, first) {
			continue
		}
		if ru.Kind == Delay {
			if err := sleep.For(ctx, ru.hold()); err != nil {
				finish(w, statusOf(err))
				return
			}
			continue
		}
		if act == nil {
			act = ru
		}
	}
	if act != nil && act.Kind == Error {
		finish(w, status.New(act.Code, act.Message))
		return
	}
	var kind Kind
	if act != nil {
		kind = act.Kind
	}
	l.relay(metadata.NewOutgoingContext(ctx, md), w, r.Body, method, first, hasFirst, kind)
}

func isGRPC(ct string) bool {
	return ct == "application/grpc" || len(ct) > len("application/grpc") &&
		ct[:len("application/grpc")] == "application/grpc" && (ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// finish ends the call with st and no message.
func finish(w http.ResponseWriter, st *status.Status) {
	w.WriteHeader(http.StatusOK)
	writeStatus(w.Header(), st)
}

// relayDesc lets one relay serve unary and streaming calls alike.
var relayDesc = &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}

// relay forwards the call upstream and its answer back; kind is
// DropResponse or Abort to spoil the answer, "" to pass it on.
func (l *Layer) relay(ctx context.Context, w http.ResponseWriter, body io.Reader, method string, first []byte, hasFirst bool, kind Kind) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := l.conn.NewStream(ctx, relayDesc, method)
	if err != nil {
		finish(w, statusOf(err))
		return
	}
	go func() {
		msg, ok := first, hasFirst
		for ok {
			if cs.SendMsg(&msg) != nil {
				return // the error comes out of RecvMsg
			}
			var err error
			if msg, err = readMessage(body); err != nil {
				if err != io.EOF {
					cancel()
					return
				}
				break
			}
		}
		cs.CloseSend()
	}()

	if kind == DropResponse {
		for {
			var msg []byte
			if cs.RecvMsg(&msg) != nil {
				break
			}
		}
		// The server has answered; the client never hears of it.
		select {
		case <-ctx.Done():
		case <-l.ctx.Done():
		}
		finish(w, status.New(codes.DeadlineExceeded, "fallacies grpc layer: response dropped"))
		return
	}

	hdr, err := cs.Header()
	if err != nil {
		finish(w, statusOf(err))
		return
	}
	writeMetadata(w.Header(), "", hdr)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for {
		var msg []byte
		err := cs.RecvMsg(&msg)
		if err != nil && kind == Abort {
			// No message to cut: reset right after the headers.
			if flusher != nil {
				flusher.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		if err == io.EOF {
			writeMetadata(w.Header(), http.TrailerPrefix, cs.Trailer())
			writeStatus(w.Header(), status.New(codes.OK, ""))
			return
		}
		if err != nil {
			writeMetadata(w.Header(), http.TrailerPrefix, cs.Trailer())
			writeStatus(w.Header(), statusOf(err))
			return
		}
		f := frame(msg)
		if kind == Abort {
			// Half of the first message, then RST_STREAM on this stream
			// only: net/http's HTTP/2 server resets the stream of a
			// handler that panics with ErrAbortHandler.
			w.Write(f[:len(f)/2])
			if flusher != nil {
				flusher.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(f); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
