// Package consumer is the engine shared by the asynchronous consumers of
// orders.created (notification and ledger): it subscribes, applies each
// event once or, when configured naive, as often as it is delivered, counts
// what it applied and what it recognised as a duplicate, and serves those
// counts over gRPC (consumerv1.ConsumerService) for the consistency checker.
//
//	NATS ──[proxy]──▶ Consume (JetStream durable, or core subscription)
//	                     │ one message at a time
//	                     ▼
//	   consumer span (new root, linked to the producer span)
//	   processing time ─▶ already applied? ─yes, idempotent─▶ count, ack
//	                     │ no, or naive
//	                     ▼
//	   OnApply ─▶ record Application ─▶ ack
//
// In jetstream mode every consumer is a durable pull consumer named after
// the service on the ORDERS stream, so each one receives every event (fan
// out) and nothing is lost while its link is cut: unacknowledged events are
// redelivered after AckWait. In core mode the consumer is a plain
// subscription, and whatever is published while it is disconnected is lost.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/sleep"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

// Tuning of the JetStream pull consumer.
const (
	// pullBatch is how many messages the client keeps requested ahead of
	// the handler. Messages waiting in this buffer age towards AckWait like
	// the one being processed, as they do in any real pull consumer.
	pullBatch = 64
	// pullExpiry bounds each pull request; heartbeats come at half of it,
	// so a silently dead link is noticed within about this long.
	pullExpiry = 10 * time.Second
	// nakDelay is how long the server waits before redelivering an event
	// whose side effect failed.
	nakDelay = 100 * time.Millisecond
	// setupTimeout bounds one attempt at creating the stream and consumer.
	setupTimeout = 5 * time.Second
	// setupRetryMax caps the pause between attempts at setting up.
	setupRetryMax = time.Second
	// stopWait bounds how long Shutdown waits for the subscription to close
	// before it closes the connection anyway.
	stopWait = 2 * time.Second
)

// Tracing names, after the OpenTelemetry messaging semantic conventions.
const (
	tracerName = "fallacies/consumer"
	spanName   = events.SubjectCreated + " process"
)

// Config configures one consumer.
type Config struct {
	// Name is the durable consumer name and the name in the stats:
	// "notification" or "ledger".
	Name string
	// NATSURL is where to connect, normally the consumer's proxy, e.g.
	// nats://127.0.0.1:port.
	NATSURL string
	// Mode is jetstream (a durable pull consumer on the ORDERS stream) or
	// core (a plain subscription on orders.created).
	Mode config.PublishMode
	// Consumer holds idempotency, AckWait, MaxDeliver and ProcessingTime.
	Consumer config.Consumer
	// OnApply is the side effect of applying an event; it may be nil. It
	// runs on the consuming goroutine, one event at a time, and its ctx
	// ends at Shutdown. An error leaves the event unapplied: in jetstream
	// mode it is redelivered shortly.
	OnApply func(ctx context.Context, e events.OrderCreated) error
	// Versioned, when set, fills the counters of versioned state the
	// consumer keeps (stale_applied, stale_skipped, keys_behind) into a
	// snapshot of the stats; it must not block.
	Versioned func(*consumerv1.GetStatsResponse)
}

func (c Config) validate() error {
	if c.Name == "" {
		return errors.New(`consumer.name: "" is empty`)
	}
	if err := jetstreamName(c.Name); err != nil {
		return err
	}
	if c.NATSURL == "" {
		return fmt.Errorf(`%s.nats_url: "" is empty`, c.Name)
	}
	switch c.Mode {
	case config.PublishJetStream:
		if c.Consumer.AckWait <= 0 {
			return fmt.Errorf("%s.ack_wait: %v, need a positive duration", c.Name, c.Consumer.AckWait)
		}
		if c.Consumer.MaxDeliver == 0 || c.Consumer.MaxDeliver < -1 {
			return fmt.Errorf("%s.max_deliver: %d, need -1 (unlimited) or at least 1", c.Name, c.Consumer.MaxDeliver)
		}
	case config.PublishCore:
	default:
		return fmt.Errorf("%s.mode: %q is not jetstream or core", c.Name, c.Mode)
	}
	if c.Consumer.ProcessingTime < 0 {
		return fmt.Errorf("%s.processing_time: %v is negative", c.Name, c.Consumer.ProcessingTime)
	}
	return nil
}

func jetstreamName(name string) error {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return fmt.Errorf("consumer.name: %q, need letters, digits, - and _ only", name)
		}
	}
	return nil
}

// Server consumes orders.created and serves what it applied. Its methods
// are safe for concurrent use.
type Server struct {
	consumerv1.UnimplementedConsumerServiceServer

	cfg    Config
	o      serve.Options
	log    *slog.Logger
	tracer trace.Tracer
	grpc   *serve.Server

	// runCtx ends at Shutdown; it bounds setup, processing and OnApply.
	runCtx context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the consuming goroutine has ended
	ready  chan struct{} // closed once the subscription is in place

	mu       sync.Mutex
	started  bool           // the consuming goroutine was started
	stopping bool           // Shutdown began: no new message is taken
	inflight sync.WaitGroup // messages being handled
	stats    consumerv1.GetStatsResponse
	// applied holds the store.RetainRecords most recent applications,
	// duplicates included; seen counts them by order id, so an order whose
	// applications all left the window is no longer recognised as a
	// duplicate (JetStream redelivers within ack waits and a two-minute
	// dedupe window, far shorter than that).
	applied   *store.Recent[application]
	seen      map[string]int
	store     *store.Log[*consumerv1.Application] // applied on disk, when configured
	readyOnce sync.Once

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, reads the store file when one is configured, and
// builds the consumer. It starts nothing: Serve connects.
func New(cfg Config, o serve.Options) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		o:       o,
		log:     o.Log().With("service", cfg.Name),
		tracer:  o.Tracer(tracerName),
		grpc:    serve.NewServer(o),
		runCtx:  ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		seen:    make(map[string]int),
		applied: store.NewRecent[application](store.RetainRecords),
	}
	s.stats.Consumer = cfg.Name
	log, apps, err := store.Open(cfg.Consumer.StoreFile, func() *consumerv1.Application { return new(consumerv1.Application) })
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s store: %w", cfg.Name, err)
	}
	s.store = log
	for _, a := range apps {
		if s.seen[a.GetOrderId()] > 0 {
			s.stats.DuplicatesApplied++
		}
		s.stats.Applied++
		s.record(a)
	}
	consumerv1.RegisterConsumerServiceServer(s.grpc.GRPC, s)
	s.grpc.Health.SetServingStatus(consumerv1.ConsumerService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Serve starts consuming in the background and serves gRPC on lis until
// Shutdown. It returns nil after Shutdown. Consuming outlives a cut link:
// the connection reconnects forever and setup is retried until it works.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	start := !s.started && !s.stopping
	s.started = s.started || start
	s.mu.Unlock()
	if start {
		go s.run()
	}
	s.log.Info("serving grpc", "addr", lis.Addr().String(), "mode", string(s.cfg.Mode))
	if err := s.grpc.GRPC.Serve(lis); err != nil {
		return fmt.Errorf("serve %s grpc on %s: %w", s.cfg.Name, lis.Addr(), err)
	}
	return nil
}

// Ready is closed once the consumer is subscribed: the durable consumer
// exists and pulls (jetstream), or the server knows of the subscription
// (core). Events published before that are lost in core mode.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Shutdown stops the gRPC server, then consuming: no new message is taken,
// the one in progress is interrupted (and left unacknowledged, so it is
// redelivered to the next incarnation), and the connection is closed. It
// waits at most until ctx ends. Calls after the first return the first
// result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		defer func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.store.Close()
		}()
		s.grpc.Shutdown(ctx)
		s.mu.Lock()
		s.stopping = true
		started := s.started
		s.mu.Unlock()
		s.cancel()
		if !started {
			return
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			s.shutdownErr = fmt.Errorf("shutdown %s consumer: %w", s.cfg.Name, ctx.Err())
		}
	})
	return s.shutdownErr
}

// run owns the NATS connection and the subscription; it ends after
// Shutdown, once the message in progress is handled.
func (s *Server) run() {
	defer close(s.done)
	opts := append(events.ConnectOptions(s.cfg.Name),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	)
	opts = append(opts, events.TLSOptions(s.o.ClientTLS)...)
	nc, err := nats.Connect(s.cfg.NATSURL, opts...)
	if err != nil {
		s.log.Error("connect nats", "url", s.cfg.NATSURL, "err", err)
		return
	}
	defer nc.Close()

	stop, err := s.subscribe(nc)
	if err != nil { // only when shutting down
		return
	}
	s.readyOnce.Do(func() { close(s.ready) })
	<-s.runCtx.Done()
	stop()
	s.inflight.Wait()
}

// subscribe sets up consuming, retrying until it works or Shutdown. It
// returns the function that stops consuming.
func (s *Server) subscribe(nc *nats.Conn) (func(), error) {
	pause := 50 * time.Millisecond
	for {
		stop, err := s.trySubscribe(nc)
		if err == nil {
			s.log.Info("consuming", "mode", string(s.cfg.Mode), "subject", events.SubjectCreated)
			return stop, nil
		}
		if s.runCtx.Err() != nil {
			return nil, s.runCtx.Err()
		}
		s.log.Warn("set up consumer, will retry", "err", err, "retry_in", pause)
		if err := sleep.For(s.runCtx, pause); err != nil {
			return nil, err
		}
		pause = min(2*pause, setupRetryMax)
	}
}

func (s *Server) trySubscribe(nc *nats.Conn) (func(), error) {
	ctx, cancel := context.WithTimeout(s.runCtx, setupTimeout)
	defer cancel()
	if s.cfg.Mode == config.PublishCore {
		sub, err := nc.Subscribe(events.SubjectCreated, s.handleCore)
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", events.SubjectCreated, err)
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			_ = sub.Unsubscribe()
			return nil, fmt.Errorf("flush subscription %s: %w", events.SubjectCreated, err)
		}
		return func() { _ = sub.Unsubscribe() }, nil
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	if _, err := events.EnsureStream(ctx, js); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, events.Stream, jetstream.ConsumerConfig{
		Durable:       s.cfg.Name,
		FilterSubject: events.SubjectCreated,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.Consumer.AckWait,
		MaxDeliver:    s.cfg.Consumer.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", s.cfg.Name, events.Stream, err)
	}
	cc, err := cons.Consume(s.handleJetStream,
		jetstream.PullMaxMessages(pullBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Debug("consume", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", s.cfg.Name, err)
	}
	return func() {
		cc.Stop()
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-cc.Closed():
		case <-t.C:
		}
	}, nil
}

// acker settles a message: JetStream messages are acknowledged, core ones
// need nothing.
type acker interface {
	Ack() error
	Term() error
	NakWithDelay(time.Duration) error
}

type coreAck struct{}

func (coreAck) Ack() error                       { return nil }
func (coreAck) Term() error                      { return nil }
func (coreAck) NakWithDelay(time.Duration) error { return nil }

func (s *Server) handleCore(msg *nats.Msg) {
	s.handle(msg.Data, msg.Header, 1, coreAck{})
}

func (s *Server) handleJetStream(msg jetstream.Msg) {
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	} else {
		s.log.Warn("read message metadata", "err", err)
	}
	s.handle(msg.Data(), msg.Headers(), delivered, msg)
}

// enter registers a message in progress, unless Shutdown began.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.inflight.Add(1)
	return true
}

// handle processes one delivery.
func (s *Server) handle(data []byte, h nats.Header, delivered uint64, a acker) {
	if !s.enter() {
		return // left unacknowledged: redelivered to the next incarnation
	}
	defer s.inflight.Done()

	e, err := events.Unmarshal(data)
	if err != nil {
		s.log.Warn("malformed event, terminated", "err", err, "bytes", len(data))
		s.settle("term", a.Term())
		return
	}
	var published int64
	if v := h.Get(events.HeaderPublishedAt); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			published = n
		}
	}

	ctx, span := s.startSpan(h, e.OrderID, delivered)
	defer span.End()

	s.mu.Lock()
	s.stats.Received++
	if delivered > 1 {
		s.stats.Redeliveries++
	}
	s.mu.Unlock()

	if err := sleep.For(ctx, s.cfg.Consumer.ProcessingTime); err != nil {
		span.SetStatus(otelcodes.Error, "interrupted by shutdown")
		return // unacknowledged: redelivered after AckWait
	}

	s.mu.Lock()
	if s.cfg.Consumer.Idempotent && s.seen[e.OrderID] > 0 {
		s.stats.DuplicatesRecognised++
		s.mu.Unlock()
		span.SetAttributes(attribute.String("fallacies.consumer.outcome", "duplicate_recognised"))
		s.settle("ack", a.Ack())
		return
	}
	s.mu.Unlock()

	if s.cfg.OnApply != nil {
		if err := s.cfg.OnApply(ctx, e); err != nil {
			s.log.Warn("apply event", "order_id", e.OrderID, "err", err)
			span.RecordError(err)
			span.SetStatus(otelcodes.Error, "apply failed")
			s.settle("nak", a.NakWithDelay(nakDelay))
			return
		}
	}

	now := time.Now().UnixNano()
	s.mu.Lock()
	outcome := "applied"
	if s.seen[e.OrderID] > 0 {
		s.stats.DuplicatesApplied++
		outcome = "duplicate_applied"
	}
	app := &consumerv1.Application{
		OrderId:           e.OrderID,
		PublishedUnixNano: published,
		AppliedUnixNano:   now,
		DeliveryCount:     delivered,
	}
	if err := s.store.Append(app); err != nil {
		s.mu.Unlock()
		s.log.Error("record application", "order_id", e.OrderID, "err", err)
		s.settle("nak", a.NakWithDelay(nakDelay))
		return
	}
	s.stats.Applied++
	s.record(app)
	s.mu.Unlock()
	span.SetAttributes(attribute.String("fallacies.consumer.outcome", outcome))
	if published > 0 {
		span.SetAttributes(attribute.Int64("fallacies.consumer.lag_ns", now-published))
	}
	s.settle("ack", a.Ack())
}

// application is one application as the window keeps it: the fields of a
// consumerv1.Application by value, without the message's own state, so a
// window of RetainRecords of them costs one slice and the order ids. The
// message is built only when a List page or Applied asks for it.
type application struct {
	orderID       string
	publishedNano int64
	appliedNano   int64
	deliveryCount uint64
}

func compact(a *consumerv1.Application) application {
	return application{
		orderID:       a.GetOrderId(),
		publishedNano: a.GetPublishedUnixNano(),
		appliedNano:   a.GetAppliedUnixNano(),
		deliveryCount: a.GetDeliveryCount(),
	}
}

func (a application) message() *consumerv1.Application {
	return &consumerv1.Application{
		OrderId:           a.orderID,
		PublishedUnixNano: a.publishedNano,
		AppliedUnixNano:   a.appliedNano,
		DeliveryCount:     a.deliveryCount,
	}
}

// messages builds the messages of apps.
func messages(apps []application) []*consumerv1.Application {
	out := make([]*consumerv1.Application, len(apps))
	for i, a := range apps {
		out[i] = a.message()
	}
	return out
}

// record adds an application to the window and counts it for its order,
// uncounting those that leave the window; s.mu is held (or s is not shared
// yet).
func (s *Server) record(a *consumerv1.Application) {
	s.seen[a.GetOrderId()]++
	s.applied.Append(compact(a), func(old application) {
		if s.seen[old.orderID]--; s.seen[old.orderID] <= 0 {
			delete(s.seen, old.orderID)
		}
	})
}

// settle logs a failed acknowledgement; the server redelivers later.
func (s *Server) settle(what string, err error) {
	if err != nil {
		s.log.Debug("settle message", "op", what, "err", err)
	}
}

// startSpan starts the consumer span of one delivery: a new trace root
// linked to the producer span whose context the headers carry.
func (s *Server) startSpan(h nats.Header, orderID string, delivered uint64) (context.Context, trace.Span) {
	producer := trace.SpanContextFromContext(s.o.Prop().Extract(context.Background(), events.HeaderCarrier(h)))
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", events.SubjectCreated),
			attribute.String("messaging.consumer.group.name", s.cfg.Name),
			attribute.String("messaging.message.id", orderID),
			attribute.Int64("messaging.nats.delivery_count", int64(delivered)),
		),
	}
	if producer.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer}))
	}
	return s.tracer.Start(s.runCtx, spanName, opts...)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() *consumerv1.GetStatsResponse {
	s.mu.Lock()
	st := proto.CloneOf(&s.stats)
	s.mu.Unlock()
	if s.cfg.Versioned != nil {
		s.cfg.Versioned(st)
	}
	return st
}

// Applied returns the applications held (the store.RetainRecords most
// recent), duplicates included, in the order they were applied.
func (s *Server) Applied() []*consumerv1.Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	return messages(s.applied.Held())
}

// GetStats serves Stats.
func (s *Server) GetStats(context.Context, *consumerv1.GetStatsRequest) (*consumerv1.GetStatsResponse, error) {
	return s.Stats(), nil
}

// ListApplied pages through the applications in the order they were applied.
func (s *Server) ListApplied(_ context.Context, req *consumerv1.ListAppliedRequest) (*consumerv1.ListAppliedResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	page, next, err := serve.Page(s.applied, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &consumerv1.ListAppliedResponse{Applications: messages(page), NextPageToken: next}, nil
}
