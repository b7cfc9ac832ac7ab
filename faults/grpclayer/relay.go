package grpclayer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// relay carries one client connection to the upstream frame by frame. Two
// pumps read frames, one per direction, and write them to the other peer;
// header blocks are decoded (to learn each call's method) and encoded
// again with the layer's own encoder for that peer, every other frame is
// written as it came. A call a rule matches gets a stream record; a call
// without one costs the parsing of its frames and nothing else.
type relay struct {
	l              *Layer
	client, server net.Conn
	toClient       *writer
	toServer       *writer

	// The HPACK table sizes each peer advertised (SETTINGS_HEADER_TABLE_SIZE):
	// the other peer's encoder uses up to that much, so the decoder of its
	// header blocks must allow it.
	clientTable, serverTable atomic.Uint32

	lastID  uint32  // the highest stream the client opened (the client's pump's)
	pending *stream // a call whose headers the client's pump holds back (the client's pump's)

	mu      sync.Mutex
	streams map[uint32]*stream
	special atomic.Int32 // len(streams), read without mu
}

// serveConn relays client to a new connection to the upstream until
// either side ends or the layer closes.
func (l *Layer) serveConn(client net.Conn) {
	defer l.wg.Done()
	defer client.Close()
	server, err := net.DialTimeout("tcp", l.upstream, 5*time.Second)
	if err != nil {
		return // the client sees its connection end: UNAVAILABLE, as with the upstream down
	}
	defer server.Close()
	r := &relay{l: l, client: client, server: server, streams: map[uint32]*stream{},
		toClient: newWriter(bufio.NewWriterSize(client, 32<<10)), toServer: newWriter(bufio.NewWriterSize(server, 32<<10))}
	r.clientTable.Store(defaultTableSize)
	r.serverTable.Store(defaultTableSize)
	if !l.track(r, true) {
		return
	}
	defer l.track(r, false)
	fromClient := bufio.NewReaderSize(client, 32<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(fromClient, preface); err != nil || string(preface) != http2.ClientPreface {
		return // not HTTP/2 with prior knowledge
	}
	if r.toServer.do(false, func(*http2.Framer) error { _, err := r.toServer.bw.Write(preface); return err }) != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.pump(bufio.NewReaderSize(server, 32<<10), false)
		client.Close()
		server.Close()
	}()
	r.pump(fromClient, true)
	client.Close()
	server.Close()
	<-done
	r.stopTimers()
}

// close ends both connections (the layer closing).
func (r *relay) close() {
	r.client.Close()
	r.server.Close()
}

// pump reads the frames of one peer (the client's if fromClient) and
// relays them until that connection ends or a peer breaks the protocol.
func (r *relay) pump(br *bufio.Reader, fromClient bool) {
	fr := http2.NewFramer(nil, br)
	fr.SetReuseFrames()
	dst, back := r.toServer, r.toClient
	table := &r.serverTable
	if !fromClient {
		dst, back = r.toClient, r.toServer
		table = &r.clientTable
	}
	dec := hpack.NewDecoder(defaultTableSize, nil)
	dec.SetMaxStringLength(maxHeaderBlock)
	var block []byte  // a header block being read: its HEADERS frame's fragment and those of its CONTINUATION frames
	var openID uint32 // the stream of the header block being read; 0: none
	var openPrio http2.PriorityParam
	var openEnd bool
	// handle relays one frame; flush says whether it is the last one read
	// in full (what was written must go out before the next read waits).
	handle := func(f http2.Frame, flush bool) error {
		var werr error
		switch f := f.(type) {
		case *http2.HeadersFrame:
			openID, openPrio, openEnd = f.StreamID, f.Priority, f.StreamEnded()
			block = append(block[:0], f.HeaderBlockFragment()...)
			if !f.HeadersEnded() {
				return nil
			}
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if len(block) > maxHeaderBlock {
				return errors.New("header block too large")
			}
			if !f.HeadersEnded() {
				return nil
			}
		case *http2.DataFrame:
			d := &frame{kind: http2.FrameData, data: f.Data(), end: f.StreamEnded()}
			if f.Flags.Has(http2.FlagDataPadded) {
				d.pad = int(f.Length) - len(d.data)
			}
			werr = r.relayFrame(f.StreamID, d, fromClient, flush)
		case *http2.RSTStreamFrame:
			werr = r.relayFrame(f.StreamID, &frame{kind: http2.FrameRSTStream, code: f.ErrCode}, fromClient, flush)
		case *http2.SettingsFrame:
			werr = r.settings(f, fromClient, flush)
		case *http2.WindowUpdateFrame:
			if fromClient && r.unknownToServer(f.StreamID) {
				return nil
			}
			werr = dst.do(flush, func(w *http2.Framer) error { return w.WriteWindowUpdate(f.StreamID, f.Increment) })
		case *http2.PingFrame:
			werr = dst.do(flush, func(w *http2.Framer) error { return w.WritePing(f.IsAck(), f.Data) })
		case *http2.GoAwayFrame:
			werr = dst.do(true, func(w *http2.Framer) error { return w.WriteGoAway(f.LastStreamID, f.ErrCode, f.DebugData()) })
		case *http2.PriorityFrame:
			if fromClient && r.unknownToServer(f.StreamID) {
				return nil
			}
			werr = dst.do(flush, func(w *http2.Framer) error { return w.WritePriority(f.StreamID, f.PriorityParam) })
		case *http2.UnknownFrame:
			werr = dst.do(flush, func(w *http2.Framer) error { return w.WriteRawFrame(f.Type, f.Flags, f.StreamID, f.Payload()) })
		default: // PUSH_PROMISE (gRPC clients refuse it), PRIORITY_UPDATE
			if _, ok := f.(*http2.PushPromiseFrame); ok {
				return errors.New("PUSH_PROMISE")
			}
			return nil
		}
		if t := f.Header().Type; openID != 0 && (t == http2.FrameHeaders || t == http2.FrameContinuation) {
			dec.SetAllowedMaxDynamicTableSize(table.Load())
			fields, err := dec.DecodeFull(block)
			if err != nil {
				return err // the peers' HPACK states can no longer be followed
			}
			h := &frame{kind: http2.FrameHeaders, fields: fields, prio: openPrio, end: openEnd}
			id := openID
			openID = 0
			if fromClient {
				werr = r.request(id, h, flush)
			} else {
				werr = r.relayFrame(id, h, false, flush)
			}
		}
		return werr
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if !errors.As(err, &se) {
				return
			}
			// One stream broke the protocol: its sender is told.
			f = nil
			back.reset(se.StreamID, se.Code)
		}
		flush := !frameReady(br)
		if f != nil && handle(f, flush) != nil {
			return
		}
		if flush && fromClient {
			r.releasePending()
		}
		if flush && dst.do(true, nil) != nil {
			return
		}
	}
}

// settings relays a SETTINGS frame, noting the sender's
// HEADER_TABLE_SIZE: the other peer's encoder may use that much, and the
// layer's encoder writing to the sender must keep within it.
func (r *relay) settings(f *http2.SettingsFrame, fromClient, flush bool) error {
	dst, own, table := r.toServer, r.toClient, &r.clientTable
	if !fromClient {
		dst, own, table = r.toClient, r.toServer, &r.serverTable
	}
	if f.IsAck() {
		return dst.do(flush, func(w *http2.Framer) error { return w.WriteSettingsAck() })
	}
	var ss []http2.Setting
	f.ForeachSetting(func(s http2.Setting) error {
		ss = append(ss, s)
		if s.ID == http2.SettingHeaderTableSize {
			own.tableLimit(s.Val)
			// Allow the largest size advertised yet: a peer may lower it
			// before its SETTINGS is acknowledged, never raise it beyond.
			for {
				old := table.Load()
				if s.Val <= old || table.CompareAndSwap(old, s.Val) {
					break
				}
			}
		}
		return nil
	})
	return dst.do(flush, func(w *http2.Framer) error { return w.WriteSettings(ss...) })
}

// request handles a header block from the client: a new call's headers
// (or, on a streaming call, trailers, which no gRPC client sends).
func (r *relay) request(id uint32, h *frame, flush bool) error {
	if id <= r.lastID {
		// Trailers of a streaming call (no gRPC client sends them): not a
		// new call.
		return r.relayFrame(id, h, true, flush)
	}
	r.lastID = id
	r.releasePending()
	var method string
	for _, hf := range h.fields {
		if hf.Name == ":path" {
			method = hf.Value
			break
		}
	}
	rules := r.l.currentRules()
	needFirst, matched := false, false
	for _, ru := range rules {
		if ru.matches(method) {
			matched = true
			needFirst = needFirst || ru.Attempts > 0 && ru.Kind != Delay
		}
	}
	if !matched {
		return r.toServer.send(id, h, flush)
	}
	st := &stream{id: id, method: method, rules: rules, clientDone: h.end}
	r.mu.Lock()
	r.streams[id] = st
	r.special.Store(int32(len(r.streams)))
	r.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if needFirst && !h.end {
		// The rules need the first request message. The headers wait
		// while the message's frames are already read (a client writes
		// them together), so that a grpc-error never reaches the server;
		// once the pump would wait, or another call starts, they go on
		// (streams must open in order), and so does the message's DATA
		// but for the frame ending it, held until the rules have picked.
		st.deciding = true
		st.head = h
		r.pending = st
		return nil
	}
	act, hold := pick(rules, method, nil)
	st.act, st.hold = act, hold
	if act != nil && act.Kind == Error {
		// The server never sees the call.
		st.unknown, st.serverDone = true, true
		r.answer(st)
		r.forgetIfDone(st)
		return nil
	}
	return r.toServer.send(id, h, flush)
}

// relayFrame handles a DATA or RST_STREAM frame, or a header block of the
// server, on stream id.
func (r *relay) relayFrame(id uint32, f *frame, fromClient, flush bool) error {
	st := r.stream(id)
	if st == nil {
		if fromClient {
			return r.toServer.send(id, f, flush)
		}
		return r.toClient.send(id, f, flush)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if fromClient {
		r.fromClient(st, f, flush)
	} else {
		r.fromServer(st, f, flush)
	}
	r.forgetIfDone(st)
	return nil
}

// stream is what the layer knows of a call a rule matched. Its fields are
// guarded by mu; the pumps and a hold's timer share it.
type stream struct {
	id     uint32
	method string
	rules  []*rule

	mu       sync.Mutex
	deciding bool          // the rules wait for the first request message
	first    []byte        // while deciding: the request's DATA so far
	head     *frame        // while deciding: the request's headers, held back, and
	request  []*frame      // its DATA frames, held back with them
	act      *rule         // the rule acting on the call (not grpc-delay); nil: none
	hold     time.Duration // the response waits this long (grpc-delay)
	timer    *time.Timer   // the running hold
	released bool          // the hold is over
	queue    []*frame      // response frames held (while deciding, or for the hold)
	answered bool          // the layer answered (grpc-error): the client's frames are swallowed
	unknown  bool          // the server never saw the stream
	aborted  bool          // grpc-abort reset it
	sentHead bool          // response headers went to the client

	clientDone, serverDone bool // each side ended the stream (or the layer did for it)
}

func (r *relay) stream(id uint32) *stream {
	if r.special.Load() == 0 {
		return nil // no call a rule matched is open: the common case, lock-free
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.streams[id]
}

// unknownToServer says whether stream id was never opened on the server:
// a frame on it would be a protocol error there.
func (r *relay) unknownToServer(id uint32) bool {
	if id == 0 {
		return false
	}
	st := r.stream(id)
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.unknown || st.head != nil
}

// releasePending sends on the headers (and DATA) of the call whose
// headers the client's pump holds back: the pump is about to wait, or
// another call starts.
func (r *relay) releasePending() {
	st := r.pending
	if st == nil {
		return
	}
	r.pending = nil
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.head == nil {
		return
	}
	r.toServer.send(st.id, st.head, false)
	for _, f := range st.request {
		r.toServer.send(st.id, f, false)
	}
	st.head, st.request = nil, nil
	r.toServer.do(true, nil)
}

// creditHeld gives the client back the window of st's held-back DATA,
// which the server never gets, and forgets the held request; st.mu is held.
func (r *relay) creditHeld(st *stream) {
	var n uint32
	for _, f := range st.request {
		n += f.length()
	}
	st.head, st.request = nil, nil
	r.toClient.credit(0, n)
	st.unknown = true
}

// forgetIfDone drops st's record once nothing of it needs the layer;
// st.mu is held.
func (r *relay) forgetIfDone(st *stream) {
	if st.clientDone && st.serverDone && !st.deciding && len(st.queue) == 0 && (st.hold == 0 || st.released) {
		r.mu.Lock()
		if r.streams[st.id] == st {
			delete(r.streams, st.id)
			r.special.Store(int32(len(r.streams)))
		}
		r.mu.Unlock()
	}
}

// fromClient handles the client's DATA or RST_STREAM on st; st.mu is held.
func (r *relay) fromClient(st *stream, f *frame, flush bool) {
	if f.end || f.kind == http2.FrameRSTStream {
		st.clientDone = true
	}
	if st.answered {
		// Swallowed; the window the client spent on it comes back.
		r.toClient.credit(0, f.length())
		return
	}
	if f.kind == http2.FrameRSTStream {
		// The client gave up: nothing held is owed to it any more.
		st.deciding = false
		st.serverDone = true // it ends there too: what comes after is stragglers
		r.discard(st)
		st.released = true
		if st.head != nil {
			r.creditHeld(st) // the server never heard of the call
			return
		}
		r.toServer.send(st.id, f, true)
		return
	}
	if !st.deciding {
		r.toServer.send(st.id, f, flush)
		return
	}
	st.first = append(st.first, f.data...)
	msg, whole := messageComplete(st.first)
	if !whole && !f.end {
		if st.head != nil {
			st.request = append(st.request, clone(f))
			return
		}
		r.toServer.send(st.id, f, flush)
		return
	}
	st.deciding = false
	st.first = nil
	if r.pending == st {
		r.pending = nil
	}
	st.act, st.hold = pick(st.rules, st.method, msg)
	if st.act == nil || st.act.Kind != Error {
		if st.head != nil {
			r.toServer.send(st.id, st.head, false)
			for _, d := range st.request {
				r.toServer.send(st.id, d, false)
			}
			st.head, st.request = nil, nil
		}
		r.toServer.send(st.id, f, flush)
		r.startHold(st)
		return
	}
	r.toClient.credit(0, f.length())
	if st.head != nil {
		// The server never hears of the call.
		r.creditHeld(st)
	} else {
		// It has seen the headers and part of the message: it never gets
		// the end of the message, and its stream is reset.
		r.toServer.reset(st.id, http2.ErrCodeCancel)
	}
	st.serverDone = true
	r.discard(st)
	r.answer(st)
}

// answer sends grpc-error's status to the client (after the hold of a
// grpc-delay that fired with it); st.mu is held.
func (r *relay) answer(st *stream) {
	st.answered = true
	st.queue = append(st.queue, errorResponse(st.act.Code, st.act.Message))
	r.startHold(st)
}

// fromServer handles the server's DATA, RST_STREAM or header block on st;
// st.mu is held.
func (r *relay) fromServer(st *stream, f *frame, flush bool) {
	if f.end || f.kind == http2.FrameRSTStream {
		st.serverDone = true
	}
	if st.deciding || st.hold > 0 && !st.released {
		st.queue = append(st.queue, clone(f))
		r.startHold(st)
		return
	}
	r.deliver(st, f, flush)
}

// deliver sends a response frame on to the client, or swallows it if
// grpc-error, grpc-abort or grpc-drop-response acts on st; st.mu is held.
func (r *relay) deliver(st *stream, f *frame, flush bool) {
	switch {
	case f.own:
		r.toClient.send(st.id, f, flush)
	case st.answered || st.aborted || st.act != nil && st.act.Kind == DropResponse:
		r.swallow(st, f)
	default:
		r.emit(st, f, flush)
	}
}

// swallow drops a frame of the server's: the client never hears of it,
// and the server gets back the window it spent; st.mu is held.
func (r *relay) swallow(st *stream, f *frame) {
	n := f.length()
	r.toServer.credit(0, n)
	if !st.serverDone && !st.answered && !st.aborted {
		// A dropped response still open on the server: its stream's
		// window too, or a long answer would stall there.
		r.toServer.credit(st.id, n)
	}
}

// discard drops the response frames st holds, giving the server back
// their window; st.mu is held.
func (r *relay) discard(st *stream) {
	var n uint32
	for _, f := range st.queue {
		n += f.length()
	}
	st.queue = nil
	r.toServer.credit(0, n)
}

// startHold starts st's hold once the rules have picked and a response
// frame (or the layer's own answer) waits, and sends what waits if there
// is no hold; st.mu is held.
func (r *relay) startHold(st *stream) {
	if st.deciding || len(st.queue) == 0 || st.timer != nil {
		return
	}
	if st.hold == 0 || st.released {
		r.release(st)
		return
	}
	st.timer = time.AfterFunc(st.hold, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		r.release(st)
		r.forgetIfDone(st)
	})
}

// release ends st's hold and sends what it held; st.mu is held.
func (r *relay) release(st *stream) {
	st.released = true
	q := st.queue
	st.queue = nil
	for _, f := range q {
		r.deliver(st, f, false)
	}
	r.toClient.do(true, nil)
}

// emit sends a response frame to the client, cutting the response if
// grpc-abort acts on st; st.mu is held.
func (r *relay) emit(st *stream, f *frame, flush bool) {
	if st.act == nil || st.act.Kind != Abort {
		r.toClient.send(st.id, f, flush)
		return
	}
	switch {
	case f.kind == http2.FrameRSTStream:
		st.aborted = true
		r.toClient.send(st.id, f, true)
		return
	case f.kind == http2.FrameHeaders && !f.end:
		st.sentHead = true
		r.toClient.send(st.id, f, flush)
		return
	case f.kind == http2.FrameHeaders:
		// The status with no message before it: reset right after the
		// headers.
		if !st.sentHead {
			r.toClient.send(st.id, &frame{kind: http2.FrameHeaders, fields: responseHeaders}, false)
		}
	default:
		// Half of the first DATA frame, then the reset.
		half := len(f.data) / 2
		if half > 0 {
			r.toClient.send(st.id, &frame{kind: http2.FrameData, data: f.data[:half]}, false)
		}
		r.toServer.credit(0, f.length()-uint32(half))
	}
	st.aborted = true
	r.toClient.reset(st.id, http2.ErrCodeInternal)
	if !st.serverDone {
		r.toServer.reset(st.id, http2.ErrCodeCancel)
		st.serverDone = true
	}
}

// clone copies f's data out of the framer's buffer, which the next read
// reuses.
func clone(f *frame) *frame {
	c := *f
	c.data = bytes.Clone(f.data)
	return &c
}

// stopTimers stops the holds of a relay whose connections ended.
func (r *relay) stopTimers() {
	r.mu.Lock()
	streams := make([]*stream, 0, len(r.streams))
	for _, st := range r.streams {
		streams = append(streams, st)
	}
	r.mu.Unlock()
	for _, st := range streams {
		st.mu.Lock()
		if st.timer != nil {
			st.timer.Stop()
		}
		st.mu.Unlock()
	}
}
