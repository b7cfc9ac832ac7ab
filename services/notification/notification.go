// Package notification is the notification consumer: for every
// orders.created event it "sends" a confirmation, which it records in the
// events.SentBucket key-value bucket under the order id, so that order can
// poll whether the notification went out (the hidden synchronous dependency
// of the hidden-sync experiment).
//
//	NATS ──[proxy nats-notification]──▶ consumer engine ──▶ OnApply
//	                                                          │
//	KV NOTIFICATIONS_SENT ◀──[same proxy, own connection]─────┘
//	   key: order id, value: applied time (Unix nanoseconds, decimal)
package notification

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/consumer"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

// Name is the durable consumer name and the stats name.
const Name = "notification"

// putTimeout bounds one write to the bucket.
const putTimeout = 2 * time.Second

// Server is the notification consumer. Stats, Applied and Ready come from
// the consumer engine.
type Server struct {
	*consumer.Server

	natsURL string
	natsTLS *tls.Config // nil: plaintext
	log     *slog.Logger

	mu     sync.Mutex
	closed bool
	nc     *nats.Conn         // the bucket's connection, opened by Serve
	kv     jetstream.KeyValue // the bucket, once ensured

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates the configuration and builds the consumer. It starts
// nothing and does no I/O.
func New(cfg config.Consumer, natsURL string, mode config.PublishMode, o serve.Options) (*Server, error) {
	s := &Server{natsURL: natsURL, natsTLS: o.ClientTLS, log: o.Log().With("service", Name)}
	c, err := consumer.New(consumer.Config{
		Name:     Name,
		NATSURL:  natsURL,
		Mode:     mode,
		Consumer: cfg,
		OnApply:  s.recordSent,
	}, o)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", Name, err)
	}
	s.Server = c
	return s, nil
}

// Serve opens the bucket's connection (it reconnects forever, like the
// consumer's), then consumes and serves gRPC on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if !s.closed && s.nc == nil {
		nc, err := nats.Connect(s.natsURL, append(events.ConnectOptions(Name+"-kv"), events.TLSOptions(s.natsTLS)...)...)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("connect %s bucket to %s: %w", Name, s.natsURL, err)
		}
		s.nc = nc
	}
	s.mu.Unlock()
	return s.Server.Serve(lis)
}

// Shutdown stops the consumer engine, then closes the bucket's
// connection. Calls after the first return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.shutdownErr = s.Server.Shutdown(ctx)
		s.mu.Lock()
		s.closed = true
		nc := s.nc
		s.mu.Unlock()
		if nc != nil {
			nc.Close()
		}
	})
	return s.shutdownErr
}

// recordSent is the side effect of an event: the confirmation in the
// bucket. A failure leaves the event unapplied, so it is retried.
func (s *Server) recordSent(ctx context.Context, e events.OrderCreated) error {
	ctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := kv.Put(ctx, e.OrderID, []byte(value)); err != nil {
		if errors.Is(err, jetstream.ErrInvalidKey) {
			// No retry can fix the key: drop the confirmation, keep the order applied.
			s.log.Warn("order id is not a valid bucket key, notification not recorded", "order_id", e.OrderID)
			return nil
		}
		return fmt.Errorf("record notification for %s in %s: %w", e.OrderID, events.SentBucket, err)
	}
	return nil
}

// bucket returns the sent bucket, creating it on first use.
func (s *Server) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	if s.nc == nil || s.closed {
		return nil, fmt.Errorf("open %s: %s is not serving", events.SentBucket, Name)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("open jetstream for %s: %w", events.SentBucket, err)
	}
	kv, err := events.EnsureSentBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	s.kv = kv
	return kv, nil
}

// SentAt reads when notification confirmed orderID from the bucket; ok is
// false while it has not. It is what order polls.
func SentAt(ctx context.Context, kv jetstream.KeyValue, orderID string) (at time.Time, ok bool, err error) {
	entry, err := kv.Get(ctx, orderID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("read notification for %s: %w", orderID, err)
	}
	ns, err := strconv.ParseInt(string(entry.Value()), 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read notification for %s: value %q is not Unix nanoseconds", orderID, entry.Value())
	}
	return time.Unix(0, ns), true, nil
}
