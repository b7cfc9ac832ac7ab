package grpclayer

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// maxMessage bounds the part of a first request message the layer keeps
// to key a logical request (rule.Attempts), as grpc-go's default receive
// limit bounds a message for a server.
const maxMessage = 4 << 20

// maxHeaderBlock bounds one header block (a HEADERS frame and its
// CONTINUATION frames): a peer sending more is cut off.
const maxHeaderBlock = 1 << 20

// maxFragment is the largest header block fragment the layer writes in one
// frame: the smallest SETTINGS_MAX_FRAME_SIZE a peer may ask for, so it
// fits whatever the peer asked.
const maxFragment = 16 << 10

// defaultTableSize is HPACK's dynamic table size until a peer's
// SETTINGS_HEADER_TABLE_SIZE says otherwise.
const defaultTableSize = 4096

// zeros is the padding the layer writes: a padded DATA frame keeps its
// length, which flow control counts, but not its padding bytes.
var zeros [255]byte

// frame is what the layer keeps of a frame it relays on a stream: a header
// block (decoded), DATA, or RST_STREAM.
type frame struct {
	kind   http2.FrameType // FrameHeaders, FrameData or FrameRSTStream
	fields []hpack.HeaderField
	prio   http2.PriorityParam
	data   []byte
	pad    int  // DATA's padding length, with its length byte: the frame's length is len(data)+pad
	end    bool // END_STREAM
	code   http2.ErrCode
	own    bool // the layer's own answer, not the server's
}

// length is the frame's length as flow control counts it (DATA only).
func (f *frame) length() uint32 {
	if f.kind != http2.FrameData {
		return 0
	}
	return uint32(len(f.data) + f.pad)
}

// writer serializes the frames the layer writes to one peer. Header blocks
// are encoded under its lock, in the order they go out, so its encoder and
// the peer's decoder agree whatever the layer holds back or makes up.
type writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	fr  *http2.Framer
	enc *hpack.Encoder
	buf headerBuf
	err error
}

// headerBuf is the encoder's output.
type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

func newWriter(bw *bufio.Writer) *writer {
	w := &writer{bw: bw, fr: http2.NewFramer(bw, nil)}
	w.enc = hpack.NewEncoder(&w.buf)
	return w
}

// do runs write under the lock, then flushes if asked; after the first
// error it does nothing and returns that error.
func (w *writer) do(flush bool, write func(fr *http2.Framer) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if write != nil {
		w.err = write(w.fr)
	}
	if w.err == nil && flush {
		w.err = w.bw.Flush()
	}
	return w.err
}

// send writes f on stream id.
func (w *writer) send(id uint32, f *frame, flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	switch f.kind {
	case http2.FrameHeaders:
		w.err = w.headers(id, f)
	case http2.FrameData:
		if f.pad > 0 {
			w.err = w.fr.WriteDataPadded(id, f.end, f.data, zeros[:f.pad-1])
		} else {
			w.err = w.fr.WriteData(id, f.end, f.data)
		}
	default:
		w.err = w.fr.WriteRSTStream(id, f.code)
	}
	if w.err == nil && flush {
		w.err = w.bw.Flush()
	}
	return w.err
}

// headers encodes f's fields and writes them as HEADERS and, for a block
// larger than maxFragment, CONTINUATION frames; w.mu is held.
func (w *writer) headers(id uint32, f *frame) error {
	w.buf.b = w.buf.b[:0]
	for _, hf := range f.fields {
		if err := w.enc.WriteField(hf); err != nil {
			return err
		}
	}
	block := w.buf.b
	n := min(len(block), maxFragment)
	if err := w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n],
		EndStream: f.end, EndHeaders: n == len(block), Priority: f.prio}); err != nil {
		return err
	}
	for block = block[n:]; len(block) > 0; block = block[n:] {
		n = min(len(block), maxFragment)
		if err := w.fr.WriteContinuation(id, n == len(block), block[:n]); err != nil {
			return err
		}
	}
	return nil
}

// credit gives the peer back n bytes of window on stream id (0: the
// connection), for DATA the layer swallowed.
func (w *writer) credit(id, n uint32) error {
	if n == 0 {
		return nil
	}
	return w.do(true, func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, n) })
}

// reset writes RST_STREAM on stream id.
func (w *writer) reset(id uint32, code http2.ErrCode) error {
	return w.do(true, func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

// tableLimit applies a peer's SETTINGS_HEADER_TABLE_SIZE to the encoder
// writing to it.
func (w *writer) tableLimit(v uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enc.SetMaxDynamicTableSizeLimit(v)
}

// frameReady says whether br holds a whole frame: if not, reading the next
// frame may wait on the peer, so what was written must be flushed first.
func frameReady(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 9 {
		return false
	}
	h, _ := br.Peek(3)
	return n >= 9+int(uint32(h[0])<<16|uint32(h[1])<<8|uint32(h[2]))
}

// messageComplete says whether b, the start of a request's DATA, holds its
// first gRPC message whole (or as much of it as the layer keeps), and
// returns the message without its 5-byte prefix.
func messageComplete(b []byte) ([]byte, bool) {
	if len(b) < 5 {
		return nil, false
	}
	n := int(min(binary.BigEndian.Uint32(b[1:5]), maxMessage))
	if len(b) < 5+n {
		return nil, false
	}
	return b[5 : 5+n], true
}

// errorResponse is the Trailers-Only response grpc-error answers with.
func errorResponse(code codes.Code, msg string) *frame {
	f := &frame{kind: http2.FrameHeaders, end: true, own: true, fields: []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-status", Value: strconv.Itoa(int(code))},
	}}
	if msg != "" {
		f.fields = append(f.fields, hpack.HeaderField{Name: "grpc-message", Value: encodeMessage(msg)})
	}
	return f
}

// responseHeaders are the headers grpc-abort sends before its reset when
// the server answered with a Trailers-Only response (no message to cut).
var responseHeaders = []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}}

// encodeMessage percent-encodes a grpc-message as the gRPC spec asks:
// every byte outside printable ASCII, and '%'.
func encodeMessage(m string) string {
	var b strings.Builder
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
