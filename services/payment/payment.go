// Package payment is the payment service: it charges orders and keeps the
// ledger of charges that the consistency checker reads.
//
// Charge is idempotent by its idempotency key. The first call with a key
// records one charge; every later call with the same key, sequential or
// concurrent with the first, returns that charge with replayed set and
// records nothing. A key reused for a different order or amount is refused.
//
//	Charge(key) ──▶ ledger has key? ──yes──▶ first result, replayed
//	                  │ no
//	                  ▼
//	              in flight? ──yes──▶ wait for it ──▶ first result, replayed
//	                  │ no
//	                  ▼
//	              processing time ──▶ record charge ch-N ──▶ result
package payment

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

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/sleep"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

// Server is the payment service. Its methods are safe for concurrent use.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer

	cfg  config.Payment
	log  *slog.Logger
	grpc *serve.Server
	now  func() time.Time

	attempts atomic.Int64

	mu       sync.Mutex
	byKey    map[string]int      // the ledger's positions of the charges by idempotency key
	inflight map[string]*pending // first calls still processing, by key
	// ledger holds the store.RetainRecords most recent charges in charge
	// order; a key whose charge left it is forgotten (a retry that late
	// would be charged again, as with a real provider's bounded key
	// retention).
	ledger *store.Recent[chargeRecord]
	store  *store.Log[*paymentv1.Charge] // the ledger on disk, when configured
	shared *sharedKeys                   // idempotency keys shared by replicas; nil: local

	shutdownOnce sync.Once
}

// pending is a first Charge call for a key that has not finished yet.
type pending struct {
	req  *paymentv1.ChargeRequest
	done chan struct{} // closed when the call recorded its charge or gave up
}

// New validates cfg, reads the ledger file when one is configured, and
// builds the server. It starts nothing.
func New(cfg config.Payment, o serve.Options) (*Server, error) {
	if cfg.ProcessingTime < 0 {
		return nil, fmt.Errorf("payment.processing_time: %v is negative", cfg.ProcessingTime)
	}
	s := &Server{
		cfg:      cfg,
		log:      o.Log().With("service", "payment"),
		grpc:     serve.NewServer(o),
		now:      time.Now,
		byKey:    make(map[string]int),
		inflight: make(map[string]*pending),
		ledger:   store.NewRecent[chargeRecord](store.RetainRecords),
	}
	log, charges, err := store.Open(cfg.LedgerFile, func() *paymentv1.Charge { return new(paymentv1.Charge) })
	if err != nil {
		return nil, fmt.Errorf("payment ledger: %w", err)
	}
	s.store = log
	for _, c := range charges {
		s.record(c)
	}
	paymentv1.RegisterPaymentServiceServer(s.grpc.GRPC, s)
	s.grpc.Health.SetServingStatus(paymentv1.PaymentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Serve serves gRPC on lis until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("serving grpc", "addr", lis.Addr().String())
	if err := s.grpc.GRPC.Serve(lis); err != nil {
		return fmt.Errorf("serve payment grpc on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown stops the gRPC server gracefully, or at once when ctx ends.
// Calls after the first do nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.grpc.Shutdown(ctx)
		s.shared.close()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.store.Close()
	})
	return nil
}

// Charge charges an order once per idempotency key.
func (s *Server) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.ChargeResponse, error) {
	s.attempts.Add(1)
	switch {
	case req.GetOrderId() == "":
		return nil, status.Error(codes.InvalidArgument, `order_id: "" is empty`)
	case req.GetUserId() == "":
		return nil, status.Error(codes.InvalidArgument, `user_id: "" is empty`)
	case req.GetIdempotencyKey() == "":
		return nil, status.Error(codes.InvalidArgument, `idempotency_key: "" is empty`)
	case req.GetAmountCents() <= 0:
		return nil, status.Errorf(codes.InvalidArgument, "amount_cents: %d, need a positive amount", req.GetAmountCents())
	}
	if err := validateCharge(req); err != nil {
		return nil, err
	}
	key := req.GetIdempotencyKey()
	for {
		s.mu.Lock()
		if c, ok := s.charged(key); ok {
			s.mu.Unlock()
			if err := sameCharge(key, c.orderID, c.userID, c.amountCents, req); err != nil {
				return nil, err
			}
			return &paymentv1.ChargeResponse{Charge: c.message(), Replayed: true}, nil
		}
		if p, ok := s.inflight[key]; ok {
			s.mu.Unlock()
			if err := sameCharge(key, p.req.OrderId, p.req.UserId, p.req.AmountCents, req); err != nil {
				return nil, err
			}
			select {
			case <-p.done: // recorded, or the first call gave up: look again
				continue
			case <-ctx.Done():
				return nil, ctxStatus(ctx)
			}
		}
		p := &pending{req: req, done: make(chan struct{})}
		s.inflight[key] = p
		s.mu.Unlock()
		return s.process(ctx, p)
	}
}

// process runs the first call for a key: the processing time, then the
// record. Waiters on p are released either way.
func (s *Server) process(ctx context.Context, p *pending) (*paymentv1.ChargeResponse, error) {
	key := p.req.IdempotencyKey
	err := sleep.For(ctx, s.cfg.ProcessingTime)
	// Replicas sharing their keys claim the key first (outside the lock:
	// it is a round trip to the store); a charge another replica made
	// under it is the answer.
	var claimed, elsewhere *paymentv1.Charge
	if err == nil && s.shared != nil {
		claimed = &paymentv1.Charge{
			ChargeId: s.shared.chargeID(key), OrderId: p.req.OrderId, UserId: p.req.UserId,
			AmountCents: p.req.AmountCents, IdempotencyKey: key, CreatedUnixNano: s.now().UnixNano(),
		}
		// The claim is not cut short by the caller going away (a hedge
		// that lost, a deadline): a claim written to the store whose
		// answer was abandoned would hold the key for a charge nobody
		// records, and the attempt that won would replay it, so the
		// order would be acknowledged with no charge anywhere. Once
		// begun, a claim is seen through, and the charge recorded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
		elsewhere, err = s.shared.claim(cctx, claimed, p.req)
		cancel()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, key)
	defer close(p.done)
	switch {
	case err != nil && claimed == nil && ctx.Err() != nil:
		return nil, ctxStatus(ctx) // gave up before claiming: nothing charged
	case err != nil:
		return nil, err
	case elsewhere != nil:
		return &paymentv1.ChargeResponse{Charge: elsewhere, Replayed: true}, nil
	}
	c := &paymentv1.Charge{
		ChargeId:        "ch-" + strconv.Itoa(s.ledger.Total()+1),
		OrderId:         p.req.OrderId,
		UserId:          p.req.UserId,
		AmountCents:     p.req.AmountCents,
		IdempotencyKey:  key,
		CreatedUnixNano: s.now().UnixNano(),
	}
	if claimed != nil {
		c = claimed
	}
	if err := s.store.Append(c); err != nil {
		// Not recorded, so not charged: the client may retry.
		if claimed != nil {
			s.shared.release(context.WithoutCancel(ctx), key)
		}
		s.log.Error("record charge", "order_id", c.OrderId, "err", err)
		return nil, status.Errorf(codes.Unavailable, "record charge: %v", err)
	}
	s.record(c)
	return &paymentv1.ChargeResponse{Charge: proto.CloneOf(c)}, nil
}

// chargeRecord is one charge as the ledger's window keeps it: the fields of a
// paymentv1.Charge by value, without the message's own state, so a window
// of RetainRecords of them costs one slice and the strings. The message is
// built only when a charge is answered or listed.
type chargeRecord struct {
	chargeID, orderID, userID, key string
	amountCents, createdNano       int64
}

func compact(c *paymentv1.Charge) chargeRecord {
	return chargeRecord{
		chargeID: c.GetChargeId(), orderID: c.GetOrderId(), userID: c.GetUserId(), key: c.GetIdempotencyKey(),
		amountCents: c.GetAmountCents(), createdNano: c.GetCreatedUnixNano(),
	}
}

func (c chargeRecord) message() *paymentv1.Charge {
	return &paymentv1.Charge{
		ChargeId: c.chargeID, OrderId: c.orderID, UserId: c.userID, IdempotencyKey: c.key,
		AmountCents: c.amountCents, CreatedUnixNano: c.createdNano,
	}
}

// messages builds the messages of charges.
func messages(charges []chargeRecord) []*paymentv1.Charge {
	out := make([]*paymentv1.Charge, len(charges))
	for i, c := range charges {
		out[i] = c.message()
	}
	return out
}

// charged returns the charge the ledger holds for key; s.mu is held.
func (s *Server) charged(key string) (chargeRecord, bool) {
	pos, ok := s.byKey[key]
	if !ok {
		return chargeRecord{}, false
	}
	return s.ledger.At(pos)
}

// record adds a charge to the ledger and its key to the index, forgetting
// the keys of the charges that leave the window (unless a later charge
// took the key over); s.mu is held (or s is not shared yet).
func (s *Server) record(c *paymentv1.Charge) {
	pos := s.ledger.Total()
	s.byKey[c.GetIdempotencyKey()] = pos
	dropped := s.ledger.Forgotten() // the position of the next record forgotten
	s.ledger.Append(compact(c), func(old chargeRecord) {
		if s.byKey[old.key] == dropped {
			delete(s.byKey, old.key)
		}
		dropped++
	})
}

// sameCharge refuses a key reused for a different charge.
func sameCharge(key, orderID, userID string, amount int64, req *paymentv1.ChargeRequest) error {
	if orderID != req.OrderId || userID != req.UserId || amount != req.AmountCents {
		return status.Errorf(codes.FailedPrecondition,
			"idempotency_key: %q was used for order %q user %q amount %d, not order %q user %q amount %d",
			key, orderID, userID, amount, req.OrderId, req.UserId, req.AmountCents)
	}
	return nil
}

// ListCharges pages through the ledger in charge order.
func (s *Server) ListCharges(_ context.Context, req *paymentv1.ListChargesRequest) (*paymentv1.ListChargesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	page, next, err := serve.Page(s.ledger, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &paymentv1.ListChargesResponse{Charges: messages(page), NextPageToken: next, Attempts: s.attempts.Load()}, nil
}

// Charges returns a copy of the charges held (the store.RetainRecords most
// recent) in charge order.
func (s *Server) Charges() []*paymentv1.Charge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return messages(s.ledger.Held())
}

// Attempts returns how many Charge calls the server received.
func (s *Server) Attempts() int64 { return s.attempts.Load() }

// ctxStatus converts the end of ctx to a gRPC status.
func ctxStatus(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "charge: deadline exceeded before the charge was recorded")
	}
	return status.Error(codes.Canceled, "charge: canceled before the charge was recorded")
}
