package payment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

// KeysBucket is the JetStream key-value bucket in which payment replicas
// share their idempotency keys (payment.idempotency: shared).
const KeysBucket = "PAYMENT_KEYS"

// claimTimeout bounds a claim of a key in the shared store, which the
// caller's cancellation does not cut short (Server.process).
const claimTimeout = 5 * time.Second

// Replica says which replica of payment a server is and where replicas
// share their idempotency keys.
//
// With local keys (the default) each replica knows only the charges it
// made itself, so the same charge sent to two replicas (a retry that
// landed elsewhere, a hedge) is made twice. With shared keys a replica
// claims the key in one bucket before it records the charge; a replica
// that finds the key already claimed answers with the charge recorded
// there, replayed:
//
//	Charge(key) ──▶ local ledger? ──▶ processing ──▶ Create(key) in PAYMENT_KEYS
//	                                                   │ created: record the charge here
//	                                                   └ exists:  answer with the other replica's charge, replayed
type Replica struct {
	Index int // 0 for the first replica (behind the proxy "payment")
	// NATSURL is where the shared key store is reached (in the testbed,
	// the proxy nats-payment); required when cfg.Idempotency is shared.
	NATSURL string
}

// NewReplica is New for one replica of several: charge ids carry the
// replica index, and with cfg.Idempotency shared the replica claims every
// key in the shared bucket (connecting to NATS in the background, retrying
// until it is reachable).
func NewReplica(cfg config.Payment, r Replica, o serve.Options) (*Server, error) {
	if r.Index < 0 {
		return nil, fmt.Errorf("payment replica: index %d is negative", r.Index)
	}
	if cfg.Idempotency == config.IdempotencyShared && r.NATSURL == "" {
		return nil, fmt.Errorf("payment replica %d: shared idempotency needs a NATS URL", r.Index)
	}
	s, err := New(cfg, o)
	if err != nil {
		return nil, err
	}
	s.log = s.log.With("replica", r.Index)
	if cfg.Idempotency != config.IdempotencyShared {
		return s, nil
	}
	nc, err := nats.Connect(r.NATSURL, append(events.ConnectOptions("payment-"+strconv.Itoa(r.Index)), events.TLSOptions(o.ClientTLS)...)...)
	if err != nil {
		s.Shutdown(context.Background())
		return nil, fmt.Errorf("payment replica %d: connect nats %s: %w", r.Index, r.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		s.Shutdown(context.Background())
		return nil, fmt.Errorf("payment replica %d: jetstream on %s: %w", r.Index, r.NATSURL, err)
	}
	s.shared = &sharedKeys{replica: r.Index, nc: nc, js: js, lock: make(chan struct{}, 1)}
	return s, nil
}

// sharedKeys is a replica's view of the shared idempotency store.
type sharedKeys struct {
	replica int
	nc      *nats.Conn
	js      jetstream.JetStream

	lock chan struct{} // 1-slot semaphore guarding kv, so waiting honours ctx
	kv   jetstream.KeyValue

	closeOnce sync.Once
}

// chargeID names a charge of this replica: unique across replicas because
// the idempotency key is.
func (k *sharedKeys) chargeID(key string) string {
	return "ch-r" + strconv.Itoa(k.replica) + "-" + key
}

func (k *sharedKeys) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	select {
	case k.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-k.lock }()
	if k.kv != nil {
		return k.kv, nil
	}
	// Look it up first and create it only when missing: every replica
	// does this, and updating a stream others use is not needed.
	kv, err := k.js.KeyValue(ctx, KeysBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = k.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      KeysBucket,
			Description: "payment idempotency keys shared by the replicas: key → charge",
			History:     1,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = k.js.KeyValue(ctx, KeysBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", KeysBucket, err)
	}
	k.kv = kv
	return kv, nil
}

// claim records c under its key in the shared store. It returns nil when
// this replica now owns the key (and must record c), or the charge another
// replica recorded under it. Errors are gRPC statuses.
func (k *sharedKeys) claim(ctx context.Context, c *paymentv1.Charge, req *paymentv1.ChargeRequest) (*paymentv1.Charge, error) {
	kv, err := k.bucket(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "shared idempotency store: %v", err)
	}
	b, err := proto.Marshal(c)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode charge %s: %v", c.ChargeId, err)
	}
	_, err = kv.Create(ctx, c.IdempotencyKey, b)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, status.Errorf(codes.Unavailable, "claim idempotency key %q: %v", c.IdempotencyKey, err)
	}
	e, err := kv.Get(ctx, c.IdempotencyKey)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "read idempotency key %q: %v", c.IdempotencyKey, err)
	}
	other := new(paymentv1.Charge)
	if err := proto.Unmarshal(e.Value(), other); err != nil {
		return nil, status.Errorf(codes.Internal, "decode charge under key %q: %v", c.IdempotencyKey, err)
	}
	if err := sameCharge(c.IdempotencyKey, other.OrderId, other.UserId, other.AmountCents, req); err != nil {
		return nil, err
	}
	return other, nil
}

// release forgets a claim whose charge could not be recorded, so that a
// retry may make it. Best effort: a failure leaves the key claimed.
func (k *sharedKeys) release(ctx context.Context, key string) {
	if k.kv != nil {
		_ = k.kv.Delete(ctx, key)
	}
}

func (k *sharedKeys) close() {
	if k == nil {
		return
	}
	k.closeOnce.Do(k.nc.Close)
}
