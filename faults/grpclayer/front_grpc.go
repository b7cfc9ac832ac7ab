package grpclayer

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// grpcFront is a grpc.Server serving the client side of the connections
// handed to it, every call going to Layer.handle.
type grpcFront struct {
	srv *grpc.Server
	lis *handedListener
}

// newGRPCFront starts a grpc.Server front; l.mu is held.
func (l *Layer) newGRPCFront() *grpcFront {
	f := &grpcFront{
		srv: grpc.NewServer(
			grpc.ForceServerCodecV2(rawCodec{}),
			grpc.UnknownServiceHandler(l.handle),
			grpc.MaxRecvMsgSize(maxMessage),
			// Calls run on reused goroutines, whose stacks have grown
			// already, and with a fixed window no BDP ping goes out with
			// the data (each is a write and a read more per call).
			grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
			grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window)),
		lis: &handedListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: l.ln.Addr()},
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f.srv.Serve(f.lis)
	}()
	return f
}

// take hands the front a connection accepted by the layer.
func (f *grpcFront) take(c net.Conn) {
	select {
	case f.lis.conns <- c:
	case <-f.lis.done:
		c.Close() // the front is draining: the client reconnects
	}
}

// drainFront stops f gracefully in the background: its clients get a
// GOAWAY and reconnect once their calls in flight end; l.mu is held.
func (l *Layer) drainFront(f *grpcFront) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f.srv.GracefulStop()
		l.mu.Lock()
		delete(l.fronts, f)
		l.mu.Unlock()
	}()
}

// handedListener is the listener of a grpc.Server front: it accepts the
// connections the layer hands it.
type handedListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (h *handedListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handedListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handedListener) Addr() net.Addr { return h.addr }

// handle relays one call of a grpc.Server front, applying the rules that
// match its method but grpc-abort. A call no rule matches is relayed
// message by message without a look at its first message.
func (l *Layer) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	ctx := ss.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	// The client transport leaves out the reserved headers (:authority,
	// content-type, grpc-timeout, ...); the deadline goes with ctx.
	out := metadata.NewOutgoingContext(ctx, md)
	rules := l.currentRules()
	faulty := matchesAny(rules, method, false)
	isUnary := unary(method)
	if !faulty && !isUnary {
		return l.pass(out, ss, method, nil, false, false)
	}
	var first []byte
	err := ss.RecvMsg(&first)
	hasFirst := err == nil
	if err != nil && err != io.EOF {
		return err
	}
	drop := false
	if faulty {
		act, err := pick(ctx, rules, method, first, false)
		if err != nil {
			return statusOf(err).Err()
		}
		if act != nil && act.Kind == Error {
			return status.Error(act.Code, act.Message)
		}
		drop = act != nil // DropResponse: the only other kind here
	}
	if isUnary && hasFirst {
		return l.passUnary(out, ss, method, first, drop)
	}
	return l.pass(out, ss, method, &first, hasFirst, drop)
}

// passUnary relays a unary call: its one request message is first. With
// drop the answer is read and never given, as in pass.
func (l *Layer) passUnary(ctx context.Context, ss grpc.ServerStream, method string, first []byte, drop bool) error {
	var reply []byte
	var hdr, trailer metadata.MD
	err := l.conn.Invoke(ctx, method, &first, &reply, grpc.Header(&hdr), grpc.Trailer(&trailer))
	if drop {
		return l.dropped(ctx)
	}
	// Sent with the message or the status, in one write.
	ss.SetHeader(hdr)
	ss.SetTrailer(trailer)
	if err != nil {
		return err
	}
	return ss.SendMsg(&reply)
}

// dropped holds a call whose answer the layer drops until its client
// gives up (or the layer closes).
func (l *Layer) dropped(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-l.ctx.Done():
	}
	return errDropped
}

// unaryMethods caches unary's answers by method.
var unaryMethods sync.Map

// unary says whether method ("/package.Service/Method") is known to take
// one request message and give one answer: its service's descriptor is
// linked into the program (every service of the testbed is). Such a call
// is relayed with one Invoke, cheaper than a stream and its goroutine; any
// other is relayed as a stream.
func unary(method string) bool {
	if v, ok := unaryMethods.Load(method); ok {
		return v.(bool)
	}
	is := false
	svc, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc)); ok && err == nil {
		if sd, ok := d.(protoreflect.ServiceDescriptor); ok {
			m := sd.Methods().ByName(protoreflect.Name(name))
			is = m != nil && !m.IsStreamingClient() && !m.IsStreamingServer()
		}
	}
	unaryMethods.Store(method, is)
	return is
}

// pass relays a call upstream and its answer back. first points at the
// call's first request message when the handler read it (hasFirst false:
// the client sent none), nil when it did not. With drop the answer is read
// and never given: the call ends when its client gives up (or the layer
// closes).
func (l *Layer) pass(ctx context.Context, ss grpc.ServerStream, method string, first *[]byte, hasFirst, drop bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := l.conn.NewStream(ctx, relayDesc, method)
	if err != nil {
		return err
	}
	go func() {
		if first != nil {
			if hasFirst && cs.SendMsg(first) != nil {
				return // the error comes out of RecvMsg
			}
			if !hasFirst {
				cs.CloseSend()
				return
			}
		}
		for {
			var msg []byte
			if err := ss.RecvMsg(&msg); err != nil {
				if err == io.EOF {
					cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if cs.SendMsg(&msg) != nil {
				return
			}
		}
	}()

	if drop {
		for {
			var msg []byte
			if cs.RecvMsg(&msg) != nil {
				break
			}
		}
		// The server has answered; the client never hears of it.
		return l.dropped(ctx)
	}
	hdr, err := cs.Header()
	if err != nil {
		return err
	}
	// Sent with the first message or the status, in one write.
	ss.SetHeader(hdr)
	for {
		var msg []byte
		err := cs.RecvMsg(&msg)
		if err == io.EOF {
			ss.SetTrailer(cs.Trailer())
			return nil
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			return err
		}
		if err := ss.SendMsg(&msg); err != nil {
			return err
		}
	}
}
