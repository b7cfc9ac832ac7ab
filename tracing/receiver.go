package tracing

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// maxExportBytes bounds one OTLP export request.
const maxExportBytes = 32 << 20

// Receiver is an OTLP/gRPC trace collector: services in other processes
// export to it (Config.OTLPEndpoint or OTEL_EXPORTER_OTLP_ENDPOINT), it
// converts every span into its Capture and, when a forward endpoint is set,
// sends each request on unchanged, e.g. to Jaeger:
//
//	services ──OTLP──▶ Receiver ──▶ Capture
//	                      └──Export (same request)──▶ forward
//
// Forwarding happens inside Export, so an exporter's flush returns after
// the spans reached both. A forwarding failure is logged and counted, not
// returned: the spans are already captured, and a retried export would
// capture them twice.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer

	capture *Capture
	log     *slog.Logger
	server  *grpc.Server

	forward     string
	fwdConn     *grpc.ClientConn
	fwdClient   collectortrace.TraceServiceClient
	fwdErr      error // from dialling forward; returned by Serve
	fwdFailures atomic.Int64
	received    atomic.Int64
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// WithLogger sets the logger of forwarding failures (default: discard).
func WithLogger(l *slog.Logger) ReceiverOption {
	return func(r *Receiver) {
		if l != nil {
			r.log = l
		}
	}
}

// NewReceiver returns a Receiver that converts spans into capture and, when
// forward (host:port, plaintext) is not empty, forwards every export there.
// Nothing listens until Serve.
func NewReceiver(capture *Capture, forward string, opts ...ReceiverOption) *Receiver {
	r := &Receiver{
		capture: capture,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		forward: forward,
	}
	for _, o := range opts {
		o(r)
	}
	r.server = grpc.NewServer(grpc.MaxRecvMsgSize(maxExportBytes))
	collectortrace.RegisterTraceServiceServer(r.server, r)
	if forward != "" {
		conn, err := grpc.NewClient("passthrough:///"+forward,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxExportBytes)))
		if err != nil {
			r.fwdErr = fmt.Errorf("dial OTLP forward target %s: %w", forward, err)
		} else {
			r.fwdConn = conn
			r.fwdClient = collectortrace.NewTraceServiceClient(conn)
		}
	}
	return r
}

// Serve accepts OTLP exports on lis until Shutdown; it returns nil after
// Shutdown.
func (r *Receiver) Serve(lis net.Listener) error {
	if r.fwdErr != nil {
		_ = lis.Close()
		return r.fwdErr
	}
	if err := r.server.Serve(lis); err != nil {
		return fmt.Errorf("serve OTLP on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting exports, waits for those in flight (or stops at
// once when ctx ends first), and closes the forwarding connection.
func (r *Receiver) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		r.server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.server.Stop()
		<-done
	}
	if r.fwdConn != nil {
		if err := r.fwdConn.Close(); err != nil {
			return fmt.Errorf("close OTLP forward connection %s: %w", r.forward, err)
		}
	}
	return nil
}

// Received returns the number of spans received (captured or dropped).
func (r *Receiver) Received() int64 { return r.received.Load() }

// ForwardFailures returns the number of exports that could not be forwarded.
func (r *Receiver) ForwardFailures() int64 { return r.fwdFailures.Load() }

// Export implements the OTLP TraceService: it captures the spans of req
// and forwards req.
func (r *Receiver) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	spans := FromOTLP(req.GetResourceSpans())
	r.received.Add(int64(len(spans)))
	if r.capture != nil {
		r.capture.Add(spans...)
	}
	if r.fwdClient != nil {
		if _, err := r.fwdClient.Export(ctx, req); err != nil {
			r.fwdFailures.Add(1)
			r.log.Warn("otlp_forward_failed", "target", r.forward, "spans", len(spans), "err", err)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// FromOTLP converts OTLP resource spans to the model; Span.Service is the
// resource's service.name ("unknown_service" when it has none).
func FromOTLP(rss []*tracepb.ResourceSpans) []Span {
	n := 0
	for _, rs := range rss {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	out := make([]Span, 0, n)
	for _, rs := range rss {
		service := "unknown_service"
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == AttrServiceName {
				service = anyString(kv.GetValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out = append(out, fromOTLPSpan(service, s))
			}
		}
	}
	return out
}

func fromOTLPSpan(service string, s *tracepb.Span) Span {
	out := Span{
		TraceID: hex.EncodeToString(s.GetTraceId()),
		SpanID:  hex.EncodeToString(s.GetSpanId()),
		Name:    s.GetName(),
		Service: service,
		Kind:    otlpKind(s.GetKind()),
		Start:   unixNano(s.GetStartTimeUnixNano()),
		End:     unixNano(s.GetEndTimeUnixNano()),
		Attrs:   otlpAttrs(s.GetAttributes()),
	}
	if p := s.GetParentSpanId(); len(p) > 0 && !allZero(p) {
		out.ParentID = hex.EncodeToString(p)
	}
	if st := s.GetStatus(); st.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		out.Error = true
		out.StatusMsg = st.GetMessage()
	}
	if evs := s.GetEvents(); len(evs) > 0 {
		out.Events = make([]Event, len(evs))
		for i, e := range evs {
			out.Events[i] = Event{Name: e.GetName(), Time: unixNano(e.GetTimeUnixNano()), Attrs: otlpAttrs(e.GetAttributes())}
		}
	}
	if ls := s.GetLinks(); len(ls) > 0 {
		out.Links = make([]Link, len(ls))
		for i, l := range ls {
			out.Links[i] = Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())}
		}
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func unixNano(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

func otlpKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return KindServer
	case tracepb.Span_SPAN_KIND_CLIENT:
		return KindClient
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return KindProducer
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return KindConsumer
	default:
		return KindInternal
	}
}

func otlpAttrs(kvs []*commonpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

// anyString renders an OTLP value like attrString renders an SDK value.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		b, err := json.Marshal(anyInterface(v))
		if err != nil {
			return fmt.Sprint(anyInterface(v))
		}
		return string(b)
	default:
		return ""
	}
}

func anyInterface(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = anyInterface(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyInterface(kv.GetValue())
		}
		return out
	default:
		return nil
	}
}
