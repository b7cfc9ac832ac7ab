package order

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/testenv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// behaviour decides what a peer does with its n-th call (1-based): nil
// error means answer normally.
type behaviour func(ctx context.Context, n int64) error

func blockUntilDone(ctx context.Context, _ int64) error {
	<-ctx.Done()
	return status.FromContextError(ctx.Err()).Err()
}

func failWith(c codes.Code, msg string) behaviour {
	return func(context.Context, int64) error { return status.Error(c, msg) }
}

// userPeer is a user service on loopback: every user has the same balance.
type userPeer struct {
	userv1.UnimplementedUserServiceServer
	balance int64
	calls   atomic.Int64
	mu      sync.Mutex
	behave  behaviour
	views   []userv1.View
}

func (u *userPeer) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	n := u.calls.Add(1)
	u.mu.Lock()
	b := u.behave
	u.views = append(u.views, req.GetView())
	u.mu.Unlock()
	if b != nil {
		if err := b(ctx, n); err != nil {
			return nil, err
		}
	}
	return &userv1.GetUserResponse{User: &userv1.User{Id: req.GetUserId(), Name: "Ada", Tier: "gold", BalanceCents: u.balance,
		History: []*userv1.PastOrder{{OrderId: "old", AmountCents: 1}}}}, nil
}

func (u *userPeer) view(i int) userv1.View {
	u.mu.Lock()
	defer u.mu.Unlock()
	if i >= len(u.views) {
		return userv1.View_VIEW_UNSPECIFIED
	}
	return u.views[i]
}

func (u *userPeer) set(b behaviour) {
	u.mu.Lock()
	u.behave = b
	u.mu.Unlock()
}

// paymentPeer is a payment service on loopback, idempotent by key like the
// real one.
type paymentPeer struct {
	paymentv1.UnimplementedPaymentServiceServer
	calls   atomic.Int64
	mu      sync.Mutex
	behave  behaviour
	charges map[string]*paymentv1.ChargeRequest
}

func (p *paymentPeer) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.ChargeResponse, error) {
	n := p.calls.Add(1)
	p.mu.Lock()
	b := p.behave
	p.mu.Unlock()
	if b != nil {
		if err := b(ctx, n); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, replayed := p.charges[req.GetIdempotencyKey()]
	if !replayed {
		p.charges[req.GetIdempotencyKey()] = req
	}
	first := p.charges[req.GetIdempotencyKey()]
	return &paymentv1.ChargeResponse{Replayed: replayed, Charge: &paymentv1.Charge{
		ChargeId: "ch-" + first.GetIdempotencyKey(), OrderId: first.GetOrderId(), UserId: first.GetUserId(),
		AmountCents: first.GetAmountCents(), IdempotencyKey: first.GetIdempotencyKey(),
	}}, nil
}

func (p *paymentPeer) set(b behaviour) {
	p.mu.Lock()
	p.behave = b
	p.mu.Unlock()
}

func (p *paymentPeer) charged() map[string]*paymentv1.ChargeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*paymentv1.ChargeRequest, len(p.charges))
	for k, v := range p.charges {
		out[k] = v
	}
	return out
}

// env is order with real peers: two gRPC servers and a nats-server with
// JetStream, all on loopback.
type env struct {
	user    *userPeer
	pay     *paymentPeer
	ns      *natsserver.Server
	js      jetstream.JetStream // the test's own connection
	nc      *nats.Conn
	srv     *Server
	client  orderv1.OrderServiceClient
	deps    Deps
	options serve.Options
}

func startGRPC(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func newEnv(t *testing.T, cfg config.Order, o serve.Options) *env {
	t.Helper()
	e := &env{
		user:    &userPeer{balance: 10_000},
		pay:     &paymentPeer{charges: make(map[string]*paymentv1.ChargeRequest)},
		ns:      testenv.StartNATS(t),
		options: o,
	}
	e.deps = Deps{
		UserAddr:    startGRPC(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, e.user) }),
		PaymentAddr: startGRPC(t, func(s *grpc.Server) { paymentv1.RegisterPaymentServiceServer(s, e.pay) }),
		NATSURL:     e.ns.ClientURL(),
	}
	e.nc, e.js = testenv.ConnectNATS(t, e.ns.ClientURL())
	e.srv, e.client = startOrder(t, cfg, e.deps, o)
	return e
}

func startOrder(t *testing.T, cfg config.Order, deps Deps, o serve.Options) (*Server, orderv1.OrderServiceClient) {
	t.Helper()
	srv, err := New(cfg, deps, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, orderv1.NewOrderServiceClient(conn)
}

func baseConfig() config.Order {
	cfg := config.Default().Order
	cfg.PublishTimeout = 2 * time.Second
	return cfg
}

func (e *env) place(ctx context.Context, id, user string, amount int64) (*orderv1.Order, error) {
	resp, err := e.client.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: id, UserId: user, AmountCents: amount, CardNumber: "4111111111111111"})
	return resp.GetOrder(), err
}

// streamMsgs returns the messages in the ORDERS stream.
func (e *env) streamMsgs(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := e.js.Stream(t.Context(), events.Stream)
	if err != nil {
		t.Fatalf("stream %s: %v", events.Stream, err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) stats(t *testing.T) *orderv1.GetStatsResponse {
	t.Helper()
	s, err := e.client.GetStats(t.Context(), &orderv1.GetStatsRequest{})
	if err != nil {
		t.Fatalf("GetStats: %v", err)
	}
	return s
}

func linkStats(s *orderv1.GetStatsResponse, link string) *orderv1.LinkStats {
	for _, l := range s.GetLinks() {
		if l.GetLink() == link {
			return l
		}
	}
	return nil
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msgPart) {
		t.Fatalf("got %v, want code %v with message containing %q", err, code, msgPart)
	}
}

func TestHappyPath(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := newEnv(t, baseConfig(), serve.Options{TracerProvider: tp})

	before := time.Now().UnixNano()
	o, err := e.place(t.Context(), "o-1", "u-0001", 250)
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED || o.GetChargeId() != "ch-o-1" || o.GetProfileFromFallback() ||
		o.GetUserId() != "u-0001" || o.GetAmountCents() != 250 || o.GetCreatedUnixNano() < before {
		t.Fatalf("order %v", o)
	}
	charges := e.pay.charged()
	if c, ok := charges["o-1"]; len(charges) != 1 || !ok || c.GetOrderId() != "o-1" || c.GetCardNumber() != "4111111111111111" || c.GetAmountCents() != 250 {
		t.Fatalf("charges %v, want one keyed o-1 with the card passed through", charges)
	}
	if v := e.user.view(0); v != userv1.View_VIEW_FULL {
		t.Fatalf("user view %v, want full", v)
	}

	msgs := e.streamMsgs(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages in stream, want 1", len(msgs))
	}
	m := msgs[0]
	ev, err := events.Unmarshal(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev != (events.OrderCreated{OrderID: "o-1", UserID: "u-0001", AmountCents: 250, ChargeID: "ch-o-1", UserSeq: 1, UserTotalCents: 250}) {
		t.Fatalf("event %+v", ev)
	}
	if m.Subject != events.SubjectCreated || m.Header.Get(jetstream.MsgIDHeader) != "o-1" || m.Header.Get(events.HeaderPublishedAt) == "" {
		t.Fatalf("message subject %q headers %v", m.Subject, m.Header)
	}

	// The trace context in the headers is the producer span's, in the
	// trace of the PlaceOrder server span.
	var producer, server sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		switch {
		case sp.Name() == "orders.created publish":
			producer = sp
		case sp.SpanKind() == trace.SpanKindServer && strings.HasSuffix(sp.Name(), "PlaceOrder"):
			server = sp
		}
	}
	if producer == nil || server == nil {
		t.Fatalf("spans: producer %v, server %v", producer, server)
	}
	if producer.SpanKind() != trace.SpanKindProducer || producer.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Fatalf("producer span kind %v trace %v, server trace %v", producer.SpanKind(), producer.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
	var tagged bool
	for _, a := range server.Attributes() {
		tagged = tagged || (a.Key == attrOrderID && a.Value.AsString() == "o-1")
	}
	if !tagged {
		t.Fatalf("server span attributes %v lack %s=o-1", server.Attributes(), attrOrderID)
	}
	attrs := map[string]string{}
	for _, a := range producer.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range map[string]string{"messaging.system": "nats", "messaging.destination.name": "orders.created",
		"messaging.message.id": "o-1", "messaging.operation.type": "publish"} {
		if attrs[k] != v {
			t.Fatalf("producer attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	tp0 := m.Header.Get("traceparent")
	want := "00-" + producer.SpanContext().TraceID().String() + "-" + producer.SpanContext().SpanID().String() + "-01"
	if tp0 != want {
		t.Fatalf("traceparent %q, want the producer span's %q", tp0, want)
	}

	s := e.stats(t)
	if s.GetPublished() != 1 || s.GetPublishFailures() != 0 {
		t.Fatalf("published %d failures %d, want 1 0", s.GetPublished(), s.GetPublishFailures())
	}
	if u := linkStats(s, "user"); u.GetCalls() != 1 || u.GetAttempts() != 1 {
		t.Fatalf("user link stats %v", u)
	}
}

func TestNoTraceHeaderWithoutTracing(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	if _, err := e.place(t.Context(), "o-1", "u-1", 1); err != nil {
		t.Fatal(err)
	}
	if h := e.streamMsgs(t)[0].Header.Get("traceparent"); h != "" {
		t.Fatalf("traceparent %q without a tracer provider", h)
	}
}

func TestBasicView(t *testing.T) {
	cfg := baseConfig()
	cfg.UserView = config.ViewBasic
	e := newEnv(t, cfg, serve.Options{})
	if _, err := e.place(t.Context(), "o-1", "u-1", 1); err != nil {
		t.Fatal(err)
	}
	if v := e.user.view(0); v != userv1.View_VIEW_BASIC {
		t.Fatalf("user view %v, want basic", v)
	}
}

// TestEventsCarryTheUsersVersionedState: each event carries the user's
// order count (its version) and total after the order, per user, in the
// order the stream stores them; a failed order counts for nothing.
func TestEventsCarryTheUsersVersionedState(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	for i, o := range []struct {
		user   string
		amount int64
	}{{"u-1", 100}, {"u-2", 7}, {"u-1", 20}, {"u-1", 3}} {
		if _, err := e.place(t.Context(), fmt.Sprintf("o-%d", i), o.user, o.amount); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range e.streamMsgs(t) {
		ev, err := events.Unmarshal(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d:%d", ev.OrderID, ev.UserSeq, ev.UserTotalCents))
	}
	if want := []string{"o-0:1:100", "o-1:1:7", "o-2:2:120", "o-3:3:123"}; !slices.Equal(got, want) {
		t.Fatalf("events (order:version:total) %v, want %v", got, want)
	}
}

func TestCachedProfileFallback(t *testing.T) {
	cfg := baseConfig()
	cfg.User.Timeout = 50 * time.Millisecond
	cfg.User.Fallback = config.FallbackCachedProfile
	e := newEnv(t, cfg, serve.Options{})

	if _, err := e.place(t.Context(), "o-1", "u-1", 100); err != nil {
		t.Fatalf("first order: %v", err)
	}
	e.user.set(blockUntilDone) // user stops answering in time
	o, err := e.place(t.Context(), "o-2", "u-1", 100)
	if err != nil {
		t.Fatalf("order with user timing out: %v", err)
	}
	if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED || !o.GetProfileFromFallback() {
		t.Fatalf("order %v, want placed from the cached profile", o)
	}
	// The cached balance still guards the charge.
	_, err = e.place(t.Context(), "o-3", "u-1", 20_000)
	wantCode(t, err, codes.FailedPrecondition, "insufficient balance")

	// No profile seen for u-2: the user error goes through.
	_, err = e.place(t.Context(), "o-4", "u-2", 100)
	wantCode(t, err, codes.DeadlineExceeded, "user: ")

	if u := linkStats(e.stats(t), "user"); u.GetFallbacks() != 2 {
		t.Fatalf("fallbacks %d, want 2 (o-2 and o-3)", u.GetFallbacks())
	}
	if _, ok := e.pay.charged()["o-4"]; ok {
		t.Fatal("o-4 charged without a balance check")
	}
}

func TestNoFallbackWhenOff(t *testing.T) {
	cfg := baseConfig()
	cfg.User.Timeout = 50 * time.Millisecond
	e := newEnv(t, cfg, serve.Options{})
	if _, err := e.place(t.Context(), "o-1", "u-1", 100); err != nil {
		t.Fatal(err)
	}
	e.user.set(blockUntilDone)
	_, err := e.place(t.Context(), "o-2", "u-1", 100)
	wantCode(t, err, codes.DeadlineExceeded, "user: ")
	if u := linkStats(e.stats(t), "user"); u.GetFallbacks() != 0 {
		t.Fatalf("fallbacks %d with the fallback off", u.GetFallbacks())
	}
}

func TestFallbackNotForCallerErrors(t *testing.T) {
	cfg := baseConfig()
	cfg.User.Fallback = config.FallbackCachedProfile
	e := newEnv(t, cfg, serve.Options{})
	if _, err := e.place(t.Context(), "o-1", "u-1", 100); err != nil {
		t.Fatal(err)
	}
	e.user.set(failWith(codes.NotFound, "no such user"))
	_, err := e.place(t.Context(), "o-2", "u-1", 100)
	wantCode(t, err, codes.NotFound, "user: no such user")
}

func TestPeerErrorsKeepTheirCode(t *testing.T) {
	tests := []struct {
		name     string
		user     behaviour
		payment  behaviour
		code     codes.Code
		msg      string
		charged  bool
		recorded orderv1.OrderStatus
	}{
		{"user not found", failWith(codes.NotFound, "user u-1 not found"), nil, codes.NotFound, "user: user u-1 not found", false, orderv1.OrderStatus_ORDER_STATUS_FAILED},
		{"user unavailable", failWith(codes.Unavailable, "down"), nil, codes.Unavailable, "user: down", false, orderv1.OrderStatus_ORDER_STATUS_FAILED},
		{"payment invalid", nil, failWith(codes.InvalidArgument, "bad card"), codes.InvalidArgument, "payment: bad card", false, orderv1.OrderStatus_ORDER_STATUS_FAILED},
		{"payment internal", nil, failWith(codes.Internal, "ledger broke"), codes.Internal, "payment: ledger broke", false, orderv1.OrderStatus_ORDER_STATUS_FAILED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, baseConfig(), serve.Options{})
			e.user.set(tt.user)
			e.pay.set(tt.payment)
			_, err := e.place(t.Context(), "o-1", "u-1", 100)
			wantCode(t, err, tt.code, tt.msg)
			got, err := e.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o-1"})
			if err != nil || got.GetOrder().GetStatus() != tt.recorded {
				t.Fatalf("GetOrder: %v %v, want status %v", got, err, tt.recorded)
			}
			if s := e.stats(t); s.GetPublished() != 0 {
				t.Fatalf("published %d after a failed call", s.GetPublished())
			}
		})
	}
}

func TestInsufficientBalance(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	_, err := e.place(t.Context(), "o-1", "u-1", 10_001)
	wantCode(t, err, codes.FailedPrecondition, "insufficient balance")
	if e.pay.calls.Load() != 0 {
		t.Fatal("charged despite insufficient balance")
	}
	got, err := e.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o-1"})
	if err != nil || got.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_FAILED {
		t.Fatalf("GetOrder: %v %v, want FAILED", got, err)
	}
	// Exactly the balance is enough.
	if _, err := e.place(t.Context(), "o-2", "u-1", 10_000); err != nil {
		t.Fatalf("order of exactly the balance: %v", err)
	}
}

func TestCoreModePublishesWithoutJetStream(t *testing.T) {
	cfg := baseConfig()
	cfg.PublishMode = config.PublishCore
	e := newEnv(t, cfg, serve.Options{})
	sub, err := e.nc.SubscribeSync(events.SubjectCreated)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.place(t.Context(), "o-1", "u-1", 5); err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no core message: %v", err)
	}
	if m.Header.Get(jetstream.MsgIDHeader) != "o-1" || m.Header.Get(events.HeaderPublishedAt) == "" {
		t.Fatalf("headers %v", m.Header)
	}
	// No stream exists, so a JetStream publish could not have been acked:
	// the core publish went out fire-and-forget.
	if _, err := e.js.Stream(t.Context(), events.Stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream lookup: %v, want not found", err)
	}
	if s := e.stats(t); s.GetPublished() != 1 {
		t.Fatalf("published %d, want 1", s.GetPublished())
	}
}

func TestRepeatedPlaceOrderChargesOnce(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	first, err := e.place(t.Context(), "o-1", "u-1", 100)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := e.place(t.Context(), "o-1", "u-1", 100)
		if err != nil {
			t.Fatal(err)
		}
		if again.GetChargeId() != first.GetChargeId() || again.GetCreatedUnixNano() != first.GetCreatedUnixNano() ||
			again.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED {
			t.Fatalf("repeat %v, want the first %v", again, first)
		}
	}
	if n := e.pay.calls.Load(); n != 1 {
		t.Fatalf("payment called %d times, want 1", n)
	}
	if n := e.user.calls.Load(); n != 1 {
		t.Fatalf("user called %d times, want 1", n)
	}
	if msgs := e.streamMsgs(t); len(msgs) != 1 {
		t.Fatalf("%d messages in stream, want 1", len(msgs))
	}
}

func TestPublishFailureIsReported(t *testing.T) {
	cfg := baseConfig()
	cfg.PublishTimeout = 200 * time.Millisecond
	cfg.PublishRetries = 1
	e := newEnv(t, cfg, serve.Options{})
	if _, err := e.place(t.Context(), "o-1", "u-1", 100); err != nil {
		t.Fatal(err)
	}
	e.ns.Shutdown()
	e.ns.WaitForShutdown()

	_, err := e.place(t.Context(), "o-2", "u-1", 100)
	wantCode(t, err, codes.Unavailable, "order charged but event not published")
	if _, ok := e.pay.charged()["o-2"]; !ok {
		t.Fatal("o-2 not charged: the ghost charge should be visible")
	}
	got, err := e.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "o-2"})
	if err != nil || got.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_FAILED || got.GetOrder().GetChargeId() != "ch-o-2" {
		t.Fatalf("GetOrder: %v %v, want FAILED with its charge", got, err)
	}
	if s := e.stats(t); s.GetPublished() != 1 || s.GetPublishFailures() != 1 {
		t.Fatalf("published %d failures %d, want 1 1", s.GetPublished(), s.GetPublishFailures())
	}
}

func TestNATSUnreachableAtStart(t *testing.T) {
	// order starts while nothing listens at the NATS address; Serve works
	// and PlaceOrder fails only at the publish.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	user := &userPeer{balance: 100}
	pay := &paymentPeer{charges: map[string]*paymentv1.ChargeRequest{}}
	deps := Deps{
		UserAddr:    startGRPC(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, user) }),
		PaymentAddr: startGRPC(t, func(s *grpc.Server) { paymentv1.RegisterPaymentServiceServer(s, pay) }),
		NATSURL:     "nats://" + addr,
	}
	cfg := baseConfig()
	cfg.PublishTimeout = 100 * time.Millisecond
	_, client := startOrder(t, cfg, deps, serve.Options{})
	_, err = client.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: "u-1", AmountCents: 1})
	wantCode(t, err, codes.Unavailable, "event not published")
	if _, err := client.GetStats(t.Context(), &orderv1.GetStatsRequest{}); err != nil {
		t.Fatalf("GetStats while NATS is down: %v", err)
	}
}

func TestWaitForNotification(t *testing.T) {
	t.Run("confirmed", func(t *testing.T) {
		cfg := baseConfig()
		cfg.WaitForNotification = 10 * time.Second
		e := newEnv(t, cfg, serve.Options{})
		kv, err := events.EnsureSentBucket(t.Context(), e.js)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := e.place(t.Context(), "o-1", "u-1", 100)
			done <- err
		}()
		// Play notification: once the event is in the stream, confirm it.
		testenv.Eventually(t, 10*time.Second, "the event in the stream", func() bool {
			st, err := e.js.Stream(t.Context(), events.Stream)
			if err != nil {
				return false
			}
			info, err := st.Info(t.Context())
			return err == nil && info.State.Msgs == 1
		})
		select {
		case err := <-done:
			t.Fatalf("PlaceOrder returned %v before notification confirmed", err)
		default:
		}
		if _, err := kv.Put(t.Context(), "o-1", []byte("sent")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("PlaceOrder: %v", err)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("PlaceOrder still waiting after the key was put")
		}
	})
	t.Run("not confirmed", func(t *testing.T) {
		cfg := baseConfig()
		cfg.WaitForNotification = 150 * time.Millisecond
		e := newEnv(t, cfg, serve.Options{})
		start := time.Now()
		_, err := e.place(t.Context(), "o-1", "u-1", 100)
		wantCode(t, err, codes.DeadlineExceeded, "notification not confirmed within 150ms")
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Fatalf("gave up after %v, before the 150ms wait", el)
		}
		if _, ok := e.pay.charged()["o-1"]; !ok {
			t.Fatal("not charged")
		}
	})
}

func TestBusinessWork(t *testing.T) {
	cfg := baseConfig()
	cfg.BusinessWork = 100 * time.Millisecond
	e := newEnv(t, cfg, serve.Options{})
	start := time.Now()
	if _, err := e.place(t.Context(), "o-1", "u-1", 1); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("PlaceOrder took %v, want at least the 100ms of business work", el)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := e.place(ctx, "o-2", "u-1", 1)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("PlaceOrder under a 20ms deadline: %v, want DeadlineExceeded", err)
	}
	if e.user.calls.Load() != 1 {
		t.Fatal("the work was not interrupted by the deadline")
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	place := []struct {
		name string
		req  *orderv1.PlaceOrderRequest
		msg  string
	}{
		{"empty order id", &orderv1.PlaceOrderRequest{UserId: "u-1", AmountCents: 1}, "order_id"},
		{"empty user id", &orderv1.PlaceOrderRequest{OrderId: "o-1", AmountCents: 1}, "user_id"},
		{"zero amount", &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: "u-1"}, "amount_cents"},
		{"negative amount", &orderv1.PlaceOrderRequest{OrderId: "o-1", UserId: "u-1", AmountCents: -5}, "amount_cents"},
	}
	for _, tt := range place {
		t.Run("PlaceOrder "+tt.name, func(t *testing.T) {
			_, err := e.client.PlaceOrder(t.Context(), tt.req)
			wantCode(t, err, codes.InvalidArgument, tt.msg)
		})
	}
	if e.user.calls.Load() != 0 || e.pay.calls.Load() != 0 {
		t.Fatal("invalid requests reached a peer")
	}
	get := []struct {
		name string
		id   string
		code codes.Code
	}{
		{"empty id", "", codes.InvalidArgument},
		{"unknown id", "o-404", codes.NotFound},
		{"rejected request was not stored", "o-1", codes.NotFound},
	}
	for _, tt := range get {
		t.Run("GetOrder "+tt.name, func(t *testing.T) {
			_, err := e.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: tt.id})
			if status.Code(err) != tt.code {
				t.Fatalf("GetOrder(%q): %v, want %v", tt.id, err, tt.code)
			}
		})
	}
	t.Run("GetStats", func(t *testing.T) {
		s := e.stats(t)
		if len(s.GetLinks()) != 2 || s.GetLinks()[0].GetLink() != "user" || s.GetLinks()[1].GetLink() != "payment" {
			t.Fatalf("links %v, want user and payment", s.GetLinks())
		}
		for _, l := range s.GetLinks() {
			if l.GetBreakerState() != "off" || l.GetCalls() != 0 {
				t.Fatalf("link %v, want an unused link with the breaker off", l)
			}
		}
	})
}

func TestGetOrderCallsNoOne(t *testing.T) {
	e := newEnv(t, baseConfig(), serve.Options{})
	placed, err := e.place(t.Context(), "o-1", "u-1", 7)
	if err != nil {
		t.Fatal(err)
	}
	users, pays := e.user.calls.Load(), e.pay.calls.Load()
	e.user.set(blockUntilDone)
	e.pay.set(blockUntilDone)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	got, err := e.client.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: "o-1"})
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	if got.GetOrder().GetChargeId() != placed.GetChargeId() || got.GetOrder().GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED {
		t.Fatalf("GetOrder %v, want %v", got.GetOrder(), placed)
	}
	if e.user.calls.Load() != users || e.pay.calls.Load() != pays {
		t.Fatal("GetOrder called a peer")
	}
}

func TestNewValidates(t *testing.T) {
	deps := Deps{UserAddr: "127.0.0.1:1", PaymentAddr: "127.0.0.1:2", NATSURL: "nats://127.0.0.1:3"}
	tests := []struct {
		name   string
		mutate func(*config.Order, *Deps)
		msg    string
	}{
		{"no user address", func(_ *config.Order, d *Deps) { d.UserAddr = "" }, "deps"},
		{"no nats url", func(_ *config.Order, d *Deps) { d.NATSURL = "" }, "deps"},
		{"publish mode", func(c *config.Order, _ *Deps) { c.PublishMode = "carrier-pigeon" }, "publish_mode"},
		{"user view", func(c *config.Order, _ *Deps) { c.UserView = "" }, "user_view"},
		{"negative publish timeout", func(c *config.Order, _ *Deps) { c.PublishTimeout = -1 }, "publish_timeout"},
		{"negative publish retries", func(c *config.Order, _ *Deps) { c.PublishRetries = -1 }, "publish_retries"},
		{"negative wait", func(c *config.Order, _ *Deps) { c.WaitForNotification = -1 }, "wait_for_notification"},
		{"negative work", func(c *config.Order, _ *Deps) { c.BusinessWork = -1 }, "business_work"},
		{"payment fallback", func(c *config.Order, _ *Deps) { c.Payment.Fallback = config.FallbackCachedProfile }, "payment.fallback"},
		{"bad user link", func(c *config.Order, _ *Deps) { c.User.Retries = 2; c.User.BackoffBase = 0 }, "user"},
		{"bad payment link", func(c *config.Order, _ *Deps) { c.Payment.Bulkhead = -1 }, "payment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, d := baseConfig(), deps
			tt.mutate(&cfg, &d)
			s, err := New(cfg, d, serve.Options{})
			if err == nil {
				_ = s.Shutdown(t.Context())
				t.Fatal("New accepted an invalid configuration")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("New: %v, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestShutdownIdempotent(t *testing.T) {
	ns := testenv.StartNATS(t)
	s, err := New(baseConfig(), Deps{UserAddr: "127.0.0.1:1", PaymentAddr: "127.0.0.1:2", NATSURL: ns.ClientURL()}, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	for range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if !s.nc.IsClosed() {
		t.Fatal("NATS connection still open after Shutdown")
	}
}

// TestOrderRecordCompact checks that a stored order's compact form gives
// back every field of the message it was made from.
func TestOrderRecordCompact(t *testing.T) {
	o := &orderv1.Order{
		OrderId: "o-1", UserId: "u-1", AmountCents: 5, Status: orderv1.OrderStatus_ORDER_STATUS_PLACED,
		ChargeId: "ch-1", ProfileFromFallback: true, CreatedUnixNano: 7,
	}
	if got := compact(o).message(); !proto.Equal(got, o) {
		t.Errorf("compact(%v).message() = %v", o, got)
	}
}
