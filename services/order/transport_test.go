package order

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/testenv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
)

// realUser starts the real user service with profiles of historyBytes on
// loopback, gRPC and HTTP, and returns their addresses.
func realUser(t *testing.T, historyBytes int) (us *user.Server, grpcAddr, httpAddr string) {
	t.Helper()
	us, err := user.New(config.User{Users: 10, HistoryBytes: historyBytes, BalanceCents: 1_000_000}, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = us.Serve(gl); done <- struct{}{} }()
	go func() { _ = us.ServeHTTP(hl); done <- struct{}{} }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = us.Shutdown(ctx)
		<-done
		<-done
	})
	return us, gl.Addr().String(), hl.Addr().String()
}

// rootAttrs returns the attributes of the PlaceOrder server span of order
// id, waiting for it to end: the server ends it after the client has its
// answer.
func rootAttrs(t *testing.T, rec *tracetest.SpanRecorder, id string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, sp := range rec.Ended() {
			if sp.SpanKind() != trace.SpanKindServer {
				continue
			}
			attrs := map[string]string{}
			for _, a := range sp.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			if attrs[string(attrOrderID)] == id {
				return attrs
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no server span for order %s within 5s", id)
	return nil
}

func TestUserTransports(t *testing.T) {
	us, grpcAddr, httpAddr := realUser(t, 8000)
	full, err := us.Profile("u-0003")
	if err != nil {
		t.Fatal(err)
	}
	protoBytes := grpcMessagePrefix + proto.Size(&userv1.GetUserResponse{User: full})

	tests := []struct {
		transport config.Transport
		view      config.View
		bytes     func(n int) bool // what the answer's size must be
		span      bool             // an HTTP client span
	}{
		{config.TransportGRPC, config.ViewFull, func(n int) bool { return n == protoBytes }, false},
		{config.TransportHTTP, config.ViewFull, func(n int) bool { return n > protoBytes*5/4 }, true},
		{config.TransportHTTP, config.ViewBasic, func(n int) bool { return n > 0 && n < 400 }, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.transport)+"-"+string(tt.view), func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			e := newEnv(t, baseConfig(), serve.Options{}) // peers for payment and NATS
			cfg := baseConfig()
			cfg.UserTransport, cfg.UserView = tt.transport, tt.view
			deps := e.deps
			deps.UserAddr, deps.UserHTTPAddr = grpcAddr, httpAddr
			_, client := startOrder(t, cfg, deps, serve.Options{TracerProvider: tp})

			resp, err := client.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: "u-0003", AmountCents: 10})
			if err != nil {
				t.Fatalf("PlaceOrder over %s: %v", tt.transport, err)
			}
			if resp.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED {
				t.Fatalf("order %v", resp.GetOrder())
			}
			attrs := rootAttrs(t, rec, "o-1")
			if attrs[string(AttrUserTransport)] != string(tt.transport) {
				t.Fatalf("transport attribute %q, want %s", attrs[string(AttrUserTransport)], tt.transport)
			}
			n, err := strconv.Atoi(attrs[string(AttrUserBytes)])
			if err != nil || !tt.bytes(n) {
				t.Fatalf("bytes attribute %q (protobuf answer %d bytes): out of bounds", attrs[string(AttrUserBytes)], protoBytes)
			}
			if us, err := strconv.Atoi(attrs[string(AttrUserCallMicros)]); err != nil || us <= 0 {
				t.Fatalf("call duration attribute %q", attrs[string(AttrUserCallMicros)])
			}
			var httpSpan bool
			for _, sp := range rec.Ended() {
				if sp.Name() == userHTTPSpan && sp.SpanKind() == trace.SpanKindClient {
					httpSpan = true
				}
			}
			if httpSpan != tt.span {
				t.Fatalf("HTTP client span present %v, want %v", httpSpan, tt.span)
			}
			if got := e.user.calls.Load(); got != 0 {
				t.Fatalf("the stub user peer got %d calls; the real user should have answered", got)
			}
		})
	}
}

func TestUserHTTPErrors(t *testing.T) {
	_, grpcAddr, httpAddr := realUser(t, 100)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name     string
		addr     string
		user     string
		fallback bool
		code     codes.Code
		msg      string
	}{
		{"unknown user", httpAddr, "u-9999", false, codes.NotFound, "user: "},
		{"user unreachable", deadAddr, "u-0001", false, codes.Unavailable, "user: "},
		{"unreachable with fallback", deadAddr, "u-0001", true, codes.OK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, baseConfig(), serve.Options{})
			cfg := baseConfig()
			cfg.UserTransport = config.TransportHTTP
			deps := e.deps
			deps.UserAddr, deps.UserHTTPAddr = grpcAddr, tt.addr
			if tt.fallback {
				cfg.User.Fallback = config.FallbackCachedProfile
			}
			srv, client := startOrder(t, cfg, deps, serve.Options{})
			if tt.fallback {
				srv.remember(tt.user, &userv1.User{Id: tt.user, BalanceCents: 1_000_000})
			}
			_, err := client.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: tt.user, AmountCents: 10})
			if tt.code == codes.OK {
				if err != nil {
					t.Fatalf("PlaceOrder: %v, want the cached profile", err)
				}
				return
			}
			wantCode(t, err, tt.code, tt.msg)
		})
	}
}

func TestUserHTTPTimeout(t *testing.T) {
	// A listener that accepts and never answers: only the link's timeout
	// ends the call.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		for c := range accepted {
			c.Close()
		}
	})
	e := newEnv(t, baseConfig(), serve.Options{})
	cfg := baseConfig()
	cfg.UserTransport = config.TransportHTTP
	cfg.User.Timeout = 50 * time.Millisecond
	deps := e.deps
	deps.UserHTTPAddr = lis.Addr().String()
	_, client := startOrder(t, cfg, deps, serve.Options{})
	start := time.Now()
	_, err = client.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: "u-1", AmountCents: 10})
	wantCode(t, err, codes.DeadlineExceeded, "user: ")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with a 50ms timeout", d)
	}
}

func TestHTTPTransportNeedsAddress(t *testing.T) {
	cfg := baseConfig()
	cfg.UserTransport = config.TransportHTTP
	_, err := New(cfg, Deps{UserAddr: "127.0.0.1:1", PaymentAddr: "127.0.0.1:2", NATSURL: "nats://127.0.0.1:3"}, serve.Options{})
	if err == nil {
		t.Fatal("New accepted user_transport http without the HTTP address")
	}
}

func TestMaxConcurrentQueuesEveryMethod(t *testing.T) {
	for _, limit := range []int{0, 2} {
		t.Run("limit-"+strconv.Itoa(limit), func(t *testing.T) {
			cfg := baseConfig()
			cfg.MaxConcurrent = limit
			e := newEnv(t, cfg, serve.Options{})
			if _, err := e.place(t.Context(), "o-0", "u-1", 1); err != nil {
				t.Fatal(err)
			}
			// Two orders stuck in payment hold both slots.
			gate := make(chan struct{})
			e.pay.set(func(ctx context.Context, _ int64) error {
				select {
				case <-gate:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			stuck := make(chan error, 2)
			for i := 1; i <= 2; i++ {
				go func() {
					_, err := e.place(t.Context(), "o-"+strconv.Itoa(i), "u-1", 1)
					stuck <- err
				}()
			}
			testenv.Eventually(t, 10*time.Second, "the two orders to reach payment", func() bool { return e.pay.calls.Load() >= 3 })

			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			_, err := e.client.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: "o-0"})
			cancel()
			if limit == 0 {
				if err != nil {
					t.Fatalf("GetOrder with no limit: %v", err)
				}
			} else {
				wantCode(t, err, codes.DeadlineExceeded, "")
			}
			// Stats are never queued: the runner reads them at any time.
			if _, err := e.client.GetStats(t.Context(), &orderv1.GetStatsRequest{}); err != nil {
				t.Fatalf("GetStats: %v", err)
			}

			// Waiting requests get the slots back in turn.
			waiting := make(chan error, 1)
			go func() {
				_, err := e.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o-0"})
				waiting <- err
			}()
			close(gate)
			for range 2 {
				if err := <-stuck; err != nil {
					t.Fatalf("stuck order: %v", err)
				}
			}
			if err := <-waiting; err != nil {
				t.Fatalf("GetOrder after the slots freed: %v", err)
			}
		})
	}
}

func TestPublishDedupe(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run("no-dedupe-"+strconv.FormatBool(off), func(t *testing.T) {
			cfg := baseConfig()
			cfg.PublishNoDedupe = off
			e := newEnv(t, cfg, serve.Options{})
			if _, err := e.place(t.Context(), "o-1", "u-1", 1); err != nil {
				t.Fatal(err)
			}
			msgs := e.streamMsgs(t)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			id := msgs[0].Header.Get(jetstream.MsgIDHeader)
			if (id == "") != off || (!off && id != "o-1") {
				t.Fatalf("Nats-Msg-Id %q with dedupe off=%v", id, off)
			}
			// What the header buys: the same event published again is
			// dropped by the stream only when it carries the id.
			again := nats.Header{}
			for k, vs := range msgs[0].Header {
				again[k] = append([]string(nil), vs...)
			}
			if _, err := e.js.PublishMsg(t.Context(), &nats.Msg{Subject: msgs[0].Subject, Data: msgs[0].Data, Header: again}); err != nil {
				t.Fatal(err)
			}
			want := 1
			if off {
				want = 2
			}
			if n := len(e.streamMsgs(t)); n != want {
				t.Fatalf("%d messages after re-sending, want %d", n, want)
			}
		})
	}
}
