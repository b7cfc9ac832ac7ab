package serve

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fallacies/fallacies/services/input"
)

// Requests whose text is not UTF-8.
//
// A proto3 string must be valid UTF-8. A client that does not check (the
// Go runtime does, a hand-rolled or another language's may not) gets from
// gRPC an INTERNAL "string field contains invalid UTF-8", naming neither
// the field nor the byte. The servers decode with utf8Codec instead: a
// request with such a string decodes to an empty message and the problem
// is held for the interceptors, which answer INVALID_ARGUMENT:
//
//	order_id: byte 2 is 0xff, not valid UTF-8
//
//	bytes ─▶ utf8Codec.Unmarshal ─ ok ──────────────────────▶ handler
//	                              └ bad UTF-8: held[msg] = why ─▶ interceptor ─▶ INVALID_ARGUMENT
type utf8Codec struct{ base encoding.CodecV2 }

// held maps a decoded request message (a pointer) to why its text was
// refused, from the codec to the interceptor of the same call.
var held sync.Map

func (c utf8Codec) Name() string { return c.base.Name() }

func (c utf8Codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok || !strings.Contains(err.Error(), "invalid UTF-8") {
		return err
	}
	why := badUTF8(data.Materialize(), m.ProtoReflect().Descriptor(), "")
	if why == "" {
		return err
	}
	proto.Reset(m)
	held.Store(v, why)
	return nil
}

// badUTF8 finds the first string field of b (a message of type d) that is
// not UTF-8 and says where: "path.to.field: byte N is 0xNN, not valid UTF-8".
func badUTF8(b []byte, d protoreflect.MessageDescriptor, prefix string) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := d.Fields().ByNumber(num)
		switch {
		case fd == nil:
		case fd.Kind() == protoreflect.StringKind:
			if err := input.UTF8(string(v)); err != nil {
				return prefix + string(fd.Name()) + ": " + err.Error()
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			if why := badUTF8(v, fd.Message(), prefix+string(fd.Name())+"."); why != "" {
				return why
			}
		}
	}
	return ""
}

// refused returns the held problem of req, if any, as INVALID_ARGUMENT.
func refused(req any) error {
	if why, ok := held.LoadAndDelete(req); ok {
		return status.Error(codes.InvalidArgument, why.(string))
	}
	return nil
}

func utf8Unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := refused(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func utf8Stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, utf8ServerStream{ss})
}

type utf8ServerStream struct{ grpc.ServerStream }

func (s utf8ServerStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return refused(m)
}

// utf8Options are the server options of the above.
func utf8Options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(utf8Codec{base: encoding.GetCodecV2("proto")}),
		grpc.ChainUnaryInterceptor(utf8Unary),
		grpc.ChainStreamInterceptor(utf8Stream),
	}
}
