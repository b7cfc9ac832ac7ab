package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSpan makes the spans of one gRPC hop (a client span and its
// server child, attributes at start and before End, as otelgrpc does)
// through the SDK provider feeding a Capture, and through a recorder.
func BenchmarkSpan(b *testing.B) {
	for _, via := range []string{"sdk", "recorder"} {
		b.Run(via, func(b *testing.B) {
			capture := NewCapture(1 << 20)
			var tp trace.TracerProvider = newRecorder("order", capture, 1)
			if via == "sdk" {
				sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(capture),
					sdktrace.WithResource(resource.NewSchemaless(attribute.String(AttrServiceName, "order"))))
				b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
				tp = sdk
			}
			tr := tp.Tracer("b")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%(1<<18) == 0 {
					capture.Reset()
				}
				ctx, client := tr.Start(context.Background(), "user.v1.UserService/GetUser", trace.WithSpanKind(trace.SpanKindClient),
					trace.WithAttributes(attribute.String("rpc.method", "user.v1.UserService/GetUser"), attribute.String("rpc.system.name", "grpc")))
				client.SetAttributes(attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 4000))
				_, server := tr.Start(ctx, "user.v1.UserService/GetUser", trace.WithSpanKind(trace.SpanKindServer),
					trace.WithAttributes(attribute.String("rpc.method", "user.v1.UserService/GetUser"), attribute.String("rpc.system.name", "grpc")))
				server.SetAttributes(attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 4000))
				server.SetAttributes(attribute.String("rpc.response.status_code", "OK"))
				server.End()
				client.SetAttributes(attribute.String("rpc.response.status_code", "OK"))
				client.End()
			}
		})
	}
}
