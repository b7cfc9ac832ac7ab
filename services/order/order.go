// Package order is the order service: PlaceOrder checks the user's balance
// on user, charges payment and publishes orders.created on NATS.
//
//	client ──▶ PlaceOrder ──[user policy]────▶ user     GetUser (balance check;
//	                │                                   cached-profile fallback)
//	                ├──[payment policy]─▶ payment       Charge (idempotency key = order id)
//	                ├──▶ NATS orders.created            JetStream acked publish or core
//	                │                                   fire-and-forget, Nats-Msg-Id = order id
//	                └──▶ NOTIFICATIONS_SENT bucket      only when WaitForNotification > 0:
//	                                                    the hidden synchronous dependency
//
// Order only ever dials the addresses it is given (in the testbed, the
// Toxiproxy proxies in front of user, payment and NATS). Each synchronous
// link carries its resilience.Policy. Orders are kept in memory so that
// GetOrder answers without calling any other service.
//
// Three settings change the shape of a request: UserTransport http fetches
// the profile as JSON over HTTP/1.1 through the user-http proxy instead of
// protobuf over gRPC (userhttp.go); MaxConcurrent makes PlaceOrder and
// GetOrder share a fixed number of slots, like a worker pool (admission.go);
// PublishNoDedupe leaves the Nats-Msg-Id header off, so a re-sent publish
// is stored twice.
package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/semconv"
	"github.com/fallacies/fallacies/internal/sleep"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/resilience"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

// notificationPoll is how often PlaceOrder looks for the notification's
// confirmation when it waits for one.
const notificationPoll = 5 * time.Millisecond

// attrOrderID names the order on PlaceOrder's server span and on the
// notification wait, so traces can be joined with the order's outcome.
const attrOrderID = attribute.Key(semconv.OrderID)

// maxCachedProfiles bounds the fallback cache; the testbed seeds far fewer users.
const maxCachedProfiles = 100_000

// Deps are the addresses order dials: in the testbed, the proxies in front
// of user, payment and NATS.
type Deps struct {
	UserAddr    string // host:port of user's gRPC API
	PaymentAddr string // host:port of payment's gRPC API
	NATSURL     string // nats://host:port
	// UserHTTPAddr is host:port of user's JSON API; needed only when
	// config.Order.UserTransport is http.
	UserHTTPAddr string
	// PaymentReplicas are the addresses of further payment replicas
	// (payment-1, payment-2, …); with any, order balances its charges
	// round-robin over PaymentAddr and these (see resilience.Replicas).
	PaymentReplicas []string
}

// Server is the order service. Its methods are safe for concurrent use.
type Server struct {
	orderv1.UnimplementedOrderServiceServer

	cfg    config.Order
	log    *slog.Logger
	opts   serve.Options
	tracer trace.Tracer
	srv    *serve.Server

	userPol, payPol   *resilience.Policy
	userConn, payConn *grpc.ClientConn
	replicaConns      []*grpc.ClientConn // payment replicas after the first, if any
	users             userv1.UserServiceClient
	payments          paymentv1.PaymentServiceClient
	userHTTP          *userHTTP // nil unless UserTransport is http
	admission         *admission

	nc *nats.Conn
	js jetstream.JetStream

	// streamLock and kvLock are 1-slot semaphores so that waiting for them
	// honours a request's context; streamReady and kv are set under them.
	streamLock  chan struct{}
	streamReady bool
	kvLock      chan struct{}
	kv          jetstream.KeyValue

	mu     sync.Mutex
	orders map[string]orderRecord
	// placed holds the ids of the store.RetainRecords orders stored most
	// recently (first stored first); an order whose id leaves it is
	// forgotten.
	placed   *store.Recent[string]
	profiles map[string]*userv1.User // last profile seen per user, without history
	// accounts is each user's account state as published (events carry
	// it); a user's is changed one publish at a time, under its lock.
	accounts map[string]*account

	published, publishFailures atomic.Int64

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, builds the two link policies, dials user and payment
// (without blocking: the first call connects) and connects to NATS
// (retrying in the background if it is not reachable yet).
func New(cfg config.Order, deps Deps, o serve.Options) (*Server, error) {
	if err := validate(cfg, deps); err != nil {
		return nil, fmt.Errorf("new order service: %w", err)
	}
	userPol, err := resilience.New(config.LinkUser, cfg.User, o)
	if err != nil {
		return nil, fmt.Errorf("new order service: %w", err)
	}
	payPol, err := resilience.New(config.LinkPayment, cfg.Payment, o)
	if err != nil {
		return nil, fmt.Errorf("new order service: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        o.Log().With("service", "order"),
		opts:       o,
		tracer:     o.Tracer("fallacies/order"),
		userPol:    userPol,
		payPol:     payPol,
		streamLock: make(chan struct{}, 1),
		kvLock:     make(chan struct{}, 1),
		orders:     make(map[string]orderRecord),
		placed:     store.NewRecent[string](store.RetainRecords),
		profiles:   make(map[string]*userv1.User),
		accounts:   make(map[string]*account),
		admission:  newAdmission(cfg.MaxConcurrent),
	}
	if cfg.UserTransport == config.TransportHTTP {
		s.userHTTP = newUserHTTP(deps.UserHTTPAddr, o.Prop())
		s.userHTTP.secure(o.ClientTLS)
	}
	if err := s.connect(deps, o); err != nil {
		s.closeClients()
		return nil, fmt.Errorf("new order service: %w", err)
	}
	s.srv = serve.NewServer(o)
	orderv1.RegisterOrderServiceServer(s.srv.GRPC, s)
	return s, nil
}

func (s *Server) connect(deps Deps, o serve.Options) error {
	var err error
	if s.nc, err = nats.Connect(deps.NATSURL, append(events.ConnectOptions("order"), events.TLSOptions(o.ClientTLS)...)...); err != nil {
		return fmt.Errorf("connect nats %s: %w", deps.NATSURL, err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return fmt.Errorf("jetstream on %s: %w", deps.NATSURL, err)
	}
	if err := s.dialUser(deps, o); err != nil {
		return err
	}
	s.users = userv1.NewUserServiceClient(s.userConn)
	return s.dialPayment(deps, o)
}

func validate(cfg config.Order, deps Deps) error {
	switch {
	case deps.UserAddr == "" || deps.PaymentAddr == "" || deps.NATSURL == "":
		return fmt.Errorf("deps: user %q, payment %q, nats %q: all addresses are required", deps.UserAddr, deps.PaymentAddr, deps.NATSURL)
	case cfg.UserTransport == config.TransportHTTP && deps.UserHTTPAddr == "":
		return fmt.Errorf("deps: user_transport http needs the address of user's HTTP API")
	case cfg.UserTransport != "" && cfg.UserTransport != config.TransportGRPC && cfg.UserTransport != config.TransportHTTP:
		return fmt.Errorf("user_transport: %q is not %s or %s", cfg.UserTransport, config.TransportGRPC, config.TransportHTTP)
	case cfg.MaxConcurrent < 0:
		return fmt.Errorf("max_concurrent: %d is negative", cfg.MaxConcurrent)
	case cfg.PublishMode != config.PublishJetStream && cfg.PublishMode != config.PublishCore:
		return fmt.Errorf("publish_mode: %q is not %s or %s", cfg.PublishMode, config.PublishJetStream, config.PublishCore)
	case cfg.UserView != config.ViewFull && cfg.UserView != config.ViewBasic:
		return fmt.Errorf("user_view: %q is not %s or %s", cfg.UserView, config.ViewFull, config.ViewBasic)
	case cfg.PublishTimeout < 0:
		return fmt.Errorf("publish_timeout: %v is negative", cfg.PublishTimeout)
	case cfg.PublishRetries < 0:
		return fmt.Errorf("publish_retries: %d is negative", cfg.PublishRetries)
	case cfg.WaitForNotification < 0:
		return fmt.Errorf("wait_for_notification: %v is negative", cfg.WaitForNotification)
	case cfg.BusinessWork < 0:
		return fmt.Errorf("business_work: %v is negative", cfg.BusinessWork)
	case cfg.Payment.Fallback == config.FallbackCachedProfile:
		return fmt.Errorf("payment.fallback: %q applies to the user link only", cfg.Payment.Fallback)
	}
	return nil
}

// Serve serves the order API on lis until Shutdown; it returns nil after
// Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.srv.GRPC.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve order on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown stops serving (gracefully until ctx ends), then closes the
// clients of user and payment and the NATS connection, flushing what it
// can. Calling it again returns the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.srv.Shutdown(ctx)
		if s.nc != nil && s.nc.IsConnected() {
			if err := s.nc.FlushWithContext(ctx); err != nil {
				s.log.Warn("flush nats on shutdown", "err", err)
			}
		}
		s.shutdownErr = s.closeClients()
	})
	return s.shutdownErr
}

func (s *Server) closeClients() error {
	var errs []error
	if s.userConn != nil {
		if err := s.userConn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close user client: %w", err))
		}
	}
	if s.payConn != nil {
		if err := s.payConn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close payment client: %w", err))
		}
	}
	for _, c := range s.replicaConns {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close payment replica client: %w", err))
		}
	}
	if s.userHTTP != nil {
		s.userHTTP.close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	return errors.Join(errs...)
}

// PlaceOrder checks the balance, charges and publishes; see the package
// comment. A PlaceOrder repeated for an order already placed returns it
// without doing anything again; repeated with another user or amount it
// is ALREADY_EXISTS, naming both.
func (s *Server) PlaceOrder(ctx context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	if err := validatePlace(req); err != nil {
		return nil, err
	}
	trace.SpanFromContext(ctx).SetAttributes(attrOrderID.String(req.GetOrderId()))
	release, err := s.admission.admit(ctx, s.tracer)
	if err != nil {
		return nil, err
	}
	defer release()
	if o := s.lookup(req.GetOrderId()); o != nil && o.GetStatus() == orderv1.OrderStatus_ORDER_STATUS_PLACED {
		if err := samePlace(o, req); err != nil {
			return nil, err
		}
		return &orderv1.PlaceOrderResponse{Order: o}, nil
	}
	if err := sleep.For(ctx, s.cfg.BusinessWork); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	o := &orderv1.Order{
		OrderId:         req.GetOrderId(),
		UserId:          req.GetUserId(),
		AmountCents:     req.GetAmountCents(),
		Status:          orderv1.OrderStatus_ORDER_STATUS_FAILED,
		CreatedUnixNano: time.Now().UnixNano(),
	}
	err = s.place(ctx, o, req.GetCardNumber())
	if err == nil {
		o.Status = orderv1.OrderStatus_ORDER_STATUS_PLACED
	}
	s.store(o)
	if err != nil {
		s.log.Debug("place order failed", "order_id", o.OrderId, "code", status.Code(err).String(), "err", err)
		return nil, err
	}
	return &orderv1.PlaceOrderResponse{Order: compact(o).message()}, nil
}

// place runs the steps of PlaceOrder, filling o as it goes; the error is a
// gRPC status.
func (s *Server) place(ctx context.Context, o *orderv1.Order, card string) error {
	profile, fromFallback, err := s.getUser(ctx, o.UserId)
	if err != nil {
		return err
	}
	o.ProfileFromFallback = fromFallback
	if profile.GetBalanceCents() < o.AmountCents {
		return status.Errorf(codes.FailedPrecondition, "insufficient balance: user %s has %d cents, order %s needs %d",
			o.UserId, profile.GetBalanceCents(), o.OrderId, o.AmountCents)
	}

	resp, err := s.payments.Charge(ctx, &paymentv1.ChargeRequest{
		OrderId:        o.OrderId,
		UserId:         o.UserId,
		AmountCents:    o.AmountCents,
		IdempotencyKey: o.OrderId,
		CardNumber:     card,
	})
	if err != nil {
		return linkError("payment", err)
	}
	o.ChargeId = resp.GetCharge().GetChargeId()

	if err := s.publish(ctx, o); err != nil {
		s.publishFailures.Add(1)
		s.log.Debug("publish order event failed", "order_id", o.OrderId, "err", err)
		return status.Errorf(codes.Unavailable, "order charged but event not published: %v", err)
	}
	s.published.Add(1)

	if s.cfg.WaitForNotification > 0 {
		return s.waitForNotification(ctx, o.OrderId)
	}
	return nil
}

// getUser fetches the profile through the user policy. When that fails
// because user or the path to it failed, and the link's fallback is the
// cached profile, it returns the last profile seen for the user.
func (s *Server) getUser(ctx context.Context, userID string) (*userv1.User, bool, error) {
	u, err := s.fetchUser(ctx, userID)
	if err == nil {
		s.remember(userID, u)
		return u, false, nil
	}
	if s.cfg.User.Fallback == config.FallbackCachedProfile && peerFailure(err) && ctx.Err() == nil {
		if cached := s.cachedProfile(userID); cached != nil {
			s.userPol.RecordFallback(ctx)
			return cached, true, nil
		}
	}
	return nil, false, linkError("user", err)
}

// grpcMessagePrefix is the length prefix gRPC puts before every message
// on the wire: a compressed flag and a 4-byte length.
const grpcMessagePrefix = 5

// fetchUser asks user for the profile over the configured transport and
// notes the transport, the call's duration and, when it succeeded, the
// answer's size on the wire on the request's span (AttrUserTransport,
// AttrUserCallMicros, AttrUserBytes).
func (s *Server) fetchUser(ctx context.Context, userID string) (u *userv1.User, err error) {
	started := time.Now()
	transport, n := config.TransportGRPC, 0
	if s.userHTTP != nil {
		transport = config.TransportHTTP
		u, n, err = s.userHTTP.getUser(ctx, s.tracer, userID, s.cfg.UserView, s.cfg.User.Timeout)
	} else {
		view := userv1.View_VIEW_FULL
		if s.cfg.UserView == config.ViewBasic {
			view = userv1.View_VIEW_BASIC
		}
		var resp *userv1.GetUserResponse
		if resp, err = s.users.GetUser(ctx, &userv1.GetUserRequest{UserId: userID, View: view}); err == nil {
			u, n = resp.GetUser(), grpcMessagePrefix+proto.Size(resp)
		}
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrUserTransport.String(string(transport)), AttrUserCallMicros.Int64(time.Since(started).Microseconds()))
	if err == nil {
		span.SetAttributes(AttrUserBytes.Int(n))
	}
	return u, err
}

// peerFailure reports whether err says the peer or the path to it failed,
// rather than that the request was wrong: only then is a fallback honest.
func peerFailure(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// linkError keeps the code of a failed call on a link and names the link.
func linkError(link string, err error) error {
	st := status.Convert(err)
	return status.Errorf(st.Code(), "%s: %s", link, st.Message())
}

func (s *Server) remember(userID string, u *userv1.User) {
	basic := &userv1.User{Id: u.GetId(), Name: u.GetName(), Tier: u.GetTier(), BalanceCents: u.GetBalanceCents()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.profiles[userID]; ok || len(s.profiles) < maxCachedProfiles {
		s.profiles[userID] = basic
	}
}

func (s *Server) cachedProfile(userID string) *userv1.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profiles[userID]
}

// account is a user's account state as order published it: the number of
// its orders whose event was published, and their total.
type account struct {
	mu         sync.Mutex // held across a publish: a user's versions follow the stream's order
	seq, total int64
}

// accountOf returns the account of a user, made on first use. Users are
// the user service's profiles: an unknown user fails before a publish.
func (s *Server) accountOf(userID string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[userID]
	if !ok {
		a = &account{}
		s.accounts[userID] = a
	}
	return a
}

// publish sends the order's event, with the user's account state after it
// (the next version), and counts it in the account once it is published.
// A user's publishes go one at a time, so that the versions of a user's
// events follow the order the stream stores them in.
func (s *Server) publish(ctx context.Context, o *orderv1.Order) error {
	a := s.accountOf(o.UserId)
	a.mu.Lock()
	defer a.mu.Unlock()
	e := events.OrderCreated{OrderID: o.OrderId, UserID: o.UserId, AmountCents: o.AmountCents, ChargeID: o.ChargeId,
		UserSeq: a.seq + 1, UserTotalCents: a.total + o.AmountCents}
	if err := s.publishEvent(ctx, e); err != nil {
		return err
	}
	a.seq, a.total = e.UserSeq, e.UserTotalCents
	return nil
}

// publishEvent sends an order's event under a producer span whose context
// travels in the message headers.
func (s *Server) publishEvent(ctx context.Context, e events.OrderCreated) (err error) {
	ctx, span := s.tracer.Start(ctx, events.SubjectCreated+" publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", events.SubjectCreated),
			attribute.String("messaging.message.id", e.OrderID),
			attribute.String("messaging.operation.type", "publish"),
		))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(otelcodes.Error, err.Error())
		}
		span.End()
	}()

	msg := nats.NewMsg(events.SubjectCreated)
	msg.Data = e.Marshal()
	if !s.cfg.PublishNoDedupe {
		msg.Header.Set(jetstream.MsgIDHeader, e.OrderID)
	}
	msg.Header.Set(events.HeaderPublishedAt, strconv.FormatInt(time.Now().UnixNano(), 10))
	s.opts.Prop().Inject(ctx, events.HeaderCarrier(msg.Header))

	if s.cfg.PublishMode == config.PublishCore {
		if err := s.nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("publish %s core: %w", events.SubjectCreated, err)
		}
		return nil
	}

	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err = s.publishAcked(ctx, msg)
		if err == nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			s.forgetStream() // deleted behind our back: create it again next time
		}
		if attempt >= s.cfg.PublishRetries || ctx.Err() != nil {
			return err
		}
		span.AddEvent("publish.retry", trace.WithAttributes(attribute.Int("fallacies.attempt", attempt+2)))
	}
}

// publishAcked publishes msg and waits for the stream's ack; the
// Nats-Msg-Id header, when msg carries one, lets the stream drop a copy.
func (s *Server) publishAcked(ctx context.Context, msg *nats.Msg) error {
	if s.cfg.PublishTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.PublishTimeout)
		defer cancel()
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish %s to stream %s: %w", events.SubjectCreated, events.Stream, err)
	}
	return nil
}

// ensureStream creates the ORDERS stream once; until that succeeds every
// publish tries again, so NATS may be unreachable when order starts.
func (s *Server) ensureStream(ctx context.Context) error {
	select {
	case s.streamLock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("ensure stream %s: %w", events.Stream, ctx.Err())
	}
	defer func() { <-s.streamLock }()
	if s.streamReady {
		return nil
	}
	if s.cfg.PublishTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.PublishTimeout)
		defer cancel()
	}
	if _, err := events.EnsureStream(ctx, s.js); err != nil {
		return err
	}
	s.streamReady = true
	return nil
}

func (s *Server) forgetStream() {
	s.streamLock <- struct{}{}
	s.streamReady = false
	<-s.streamLock
}

// sentBucket returns the notification bucket, creating it on first use.
func (s *Server) sentBucket(ctx context.Context) (jetstream.KeyValue, error) {
	select {
	case s.kvLock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ensure bucket %s: %w", events.SentBucket, ctx.Err())
	}
	defer func() { <-s.kvLock }()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := events.EnsureSentBucket(ctx, s.js)
	if err != nil {
		return nil, err
	}
	s.kv = kv
	return kv, nil
}

// waitForNotification polls the notification bucket for the order's key
// until it appears or WaitForNotification has passed.
func (s *Server) waitForNotification(ctx context.Context, orderID string) error {
	ctx, span := s.tracer.Start(ctx, "notification.wait", trace.WithAttributes(attrOrderID.String(orderID)))
	defer span.End()
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WaitForNotification)
	defer cancel()
	tick := time.NewTicker(notificationPoll)
	defer tick.Stop()
	for {
		kv, err := s.sentBucket(wctx)
		if err == nil {
			_, err = kv.Get(wctx, orderID)
			if err == nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrInvalidKey) {
				span.SetStatus(otelcodes.Error, "invalid key")
				return status.Errorf(codes.Internal, "wait for notification: order id %q is not a valid key of %s", orderID, events.SentBucket)
			}
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			span.SetStatus(otelcodes.Error, "not confirmed")
			return status.Errorf(codes.DeadlineExceeded, "notification not confirmed within %v", s.cfg.WaitForNotification)
		}
	}
}

// GetOrder returns an order from order's own memory; it never calls
// another service.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	if err := validOrderID(req.GetOrderId()); err != nil {
		return nil, err
	}
	release, err := s.admission.admit(ctx, s.tracer)
	if err != nil {
		return nil, err
	}
	defer release()
	o := s.lookup(req.GetOrderId())
	if o == nil {
		return nil, status.Errorf(codes.NotFound, "order %s not found", req.GetOrderId())
	}
	return &orderv1.GetOrderResponse{Order: o}, nil
}

// GetStats reports both links' resilience counters and the publish counters.
func (s *Server) GetStats(context.Context, *orderv1.GetStatsRequest) (*orderv1.GetStatsResponse, error) {
	return &orderv1.GetStatsResponse{
		Links:           []*orderv1.LinkStats{s.userPol.Stats(), s.payPol.Stats()},
		Published:       s.published.Load(),
		PublishFailures: s.publishFailures.Load(),
	}, nil
}

func (s *Server) store(o *orderv1.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orders[o.OrderId]; !ok {
		s.placed.Append(o.OrderId, func(id string) { delete(s.orders, id) })
	}
	s.orders[o.OrderId] = compact(o)
}

// lookup returns a copy of the stored order, or nil.
func (s *Server) lookup(id string) *orderv1.Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		return o.message()
	}
	return nil
}

// orderRecord is a stored order: the fields of an orderv1.Order (all
// scalars) by value, without the message's own state, so that the
// store.RetainRecords orders held cost their map slots and strings only.
// The message is built when an order is looked up.
type orderRecord struct {
	orderID, userID, chargeID string
	amountCents, createdNano  int64
	status                    orderv1.OrderStatus
	profileFromFallback       bool
}

func compact(o *orderv1.Order) orderRecord {
	return orderRecord{
		orderID: o.OrderId, userID: o.UserId, chargeID: o.ChargeId,
		amountCents: o.AmountCents, createdNano: o.CreatedUnixNano,
		status: o.Status, profileFromFallback: o.ProfileFromFallback,
	}
}

func (o orderRecord) message() *orderv1.Order {
	return &orderv1.Order{
		OrderId:             o.orderID,
		UserId:              o.userID,
		AmountCents:         o.amountCents,
		Status:              o.status,
		ChargeId:            o.chargeID,
		ProfileFromFallback: o.profileFromFallback,
		CreatedUnixNano:     o.createdNano,
	}
}
