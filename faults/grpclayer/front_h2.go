package grpclayer

import (
	"context"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServeHTTP is the HTTP/2 front (used while a grpc-abort rule is on): it
// relays one gRPC call, applying the rules that match its method.
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

	act, err := pick(ctx, l.currentRules(), method, first, true)
	if err != nil {
		finish(w, statusOf(err))
		return
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
		finish(w, status.Convert(errDropped))
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
