package grpclayer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxMessage bounds one relayed message, as grpc-go's default receive limit
// does for a server.
const maxMessage = 4 << 20

// window is the fixed HTTP/2 flow-control window of the layer's
// connections, stream and connection alike: as large as the largest
// message, so a relayed message never waits for a window update.
const window = maxMessage

// rawCodec passes messages through as the bytes they are on the wire: the
// layer never decodes them. It is a CodecV2, so a received message is
// copied once out of the transport's buffers and sent without a copy.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// Name is "proto" so the upstream sees the content type it would see from
// the client.
func (rawCodec) Name() string { return "proto" }

// readMessage reads one length-prefixed gRPC message from a request body.
// It returns io.EOF at the end of the client's stream.
func readMessage(r io.Reader) ([]byte, error) {
	var prefix [5]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, status.Error(codes.Internal, "fallacies grpc layer: request cut inside a message prefix")
		}
		return nil, err
	}
	if prefix[0] != 0 {
		return nil, status.Error(codes.Unimplemented, "fallacies grpc layer: compressed messages are not relayed")
	}
	n := binary.BigEndian.Uint32(prefix[1:])
	if n > maxMessage {
		return nil, status.Errorf(codes.ResourceExhausted, "fallacies grpc layer: message of %d bytes, at most %d", n, maxMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, status.Error(codes.Internal, "fallacies grpc layer: request cut inside a message")
	}
	return msg, nil
}

// frame returns msg with its gRPC prefix (uncompressed).
func frame(msg []byte) []byte {
	b := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:5], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

// parseTimeout reads a grpc-timeout header: up to 8 digits and a unit
// (H, M, S, m, u, n).
func parseTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, fmt.Errorf("grpc-timeout %q: malformed", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("grpc-timeout %q: malformed", s)
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("grpc-timeout %q: unknown unit", s)
	}
	return time.Duration(n) * unit, nil
}

// transportHeaders are the request headers the gRPC transport sets itself;
// the rest is the call's metadata.
var transportHeaders = map[string]bool{
	"content-type": true, "te": true, "grpc-timeout": true, "grpc-encoding": true,
	"grpc-accept-encoding": true, "user-agent": true, "content-length": true,
}

// requestMetadata returns the call's metadata from its request headers,
// binary (-bin) values decoded.
func requestMetadata(h http.Header) (metadata.MD, error) {
	md := metadata.MD{}
	for k, vs := range h {
		k = strings.ToLower(k)
		if transportHeaders[k] {
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				b, err := decodeBinary(v)
				if err != nil {
					return nil, status.Errorf(codes.Internal, "fallacies grpc layer: header %s: %v", k, err)
				}
				v = string(b)
			}
			md.Append(k, v)
		}
	}
	return md, nil
}

func decodeBinary(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// writeMetadata sets md on h (with prefix: http.TrailerPrefix for
// trailers), binary values encoded.
func writeMetadata(h http.Header, prefix string, md metadata.MD) {
	for k, vs := range md {
		if k == "content-type" || strings.HasPrefix(k, ":") {
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			h.Add(prefix+k, v)
		}
	}
}

// writeStatus sets the call's status as trailers.
func writeStatus(h http.Header, st *status.Status) {
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(st.Code())))
	if m := st.Message(); m != "" {
		h.Set(http.TrailerPrefix+"Grpc-Message", encodeMessage(m))
	}
	if len(st.Details()) > 0 {
		if b, err := proto.Marshal(st.Proto()); err == nil {
			h.Set(http.TrailerPrefix+"Grpc-Status-Details-Bin", base64.RawStdEncoding.EncodeToString(b))
		}
	}
}

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

// statusOf turns a relay error into the status to give the client.
func statusOf(err error) *status.Status {
	if st, ok := status.FromError(err); ok {
		return st
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return status.New(codes.Internal, "fallacies grpc layer: "+err.Error())
	}
	return status.FromContextError(err)
}
