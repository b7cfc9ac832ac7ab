// Package events defines the asynchronous contract between order and its
// consumers: the ORDERS JetStream stream, the orders.created subject and
// event, the header that carries the order id for deduplication, the key
// value bucket in which notification confirms what it sent, and a carrier
// that moves W3C trace context through NATS message headers.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the asynchronous contract.
const (
	Stream         = "ORDERS"         // JetStream stream holding every order event
	SubjectCreated = "orders.created" // subject of the event published per placed order
	// DedupeWindow is how long the stream remembers a Nats-Msg-Id: a
	// publish retried within it is stored once.
	DedupeWindow = 2 * time.Minute
	// StreamMaxMsgs and StreamMaxBytes bound the stream: beyond either it
	// discards its oldest events, so that a system left running does not
	// keep every event it ever carried. A million events is fifty times the
	// records a service's window keeps (store.Recent), half an hour of
	// saturation, or a consumer partitioned for over half an hour at 500
	// orders/s; the consistency checker reports a run whose own events were
	// discarded as unknown, never as lost (experiments/runner/stream.go).
	StreamMaxMsgs  = 1_000_000
	StreamMaxBytes = 1 << 30
	// SentBucket is the key-value bucket where notification records the
	// orders it sent a notification for, keyed by order id.
	SentBucket = "NOTIFICATIONS_SENT"
	// SentTTL is how long the bucket keeps a key: twice the longest that
	// order waits for one (order.wait_for_notification, at most a minute),
	// and short, so that a system left running keeps the keys of two
	// minutes of orders in memory (each key is a subject of the bucket's
	// in-memory index), not of every order it placed.
	SentTTL = 2 * time.Minute
	// HeaderPublishedAt carries the publish time (Unix nanoseconds) so
	// that consumers can measure their lag.
	HeaderPublishedAt = "Fallacies-Published-At"
)

// OrderCreated is the event published when an order is placed.
//
// It also carries the user's account state after the order (event-carried
// state transfer): UserSeq, the user's orders so far, this one included,
// which versions the state, and UserTotalCents, what they cost. order
// assigns both one user at a time, so a user's versions follow the order
// their events are stored in the stream; a consumer that keeps the state
// applies an event's state only when its version is above the one it
// applied (the ledger, ledger.ordering: version). 0 when not set.
type OrderCreated struct {
	OrderID        string `json:"order_id"`
	UserID         string `json:"user_id"`
	AmountCents    int64  `json:"amount_cents"`
	ChargeID       string `json:"charge_id"`
	UserSeq        int64  `json:"user_seq,omitempty"`
	UserTotalCents int64  `json:"user_total_cents,omitempty"`
}

// Marshal encodes the event.
func (e OrderCreated) Marshal() []byte {
	b, _ := json.Marshal(e) // a struct of strings and ints always encodes
	return b
}

// Unmarshal decodes an event and checks that it names an order.
func Unmarshal(data []byte) (OrderCreated, error) {
	var e OrderCreated
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("decode %s event: %w", SubjectCreated, err)
	}
	if e.OrderID == "" {
		return e, fmt.Errorf("decode %s event: no order_id", SubjectCreated)
	}
	return e, nil
}

// EnsureStream creates the ORDERS stream, or returns it if it exists.
// Every party calls it with the same configuration.
//
// It never updates a stream: nats-server 2.15 has a data race (go test
// -race) between a stream update and a consumer being added to the same
// stream, which is what CreateOrUpdateStream (update first) from one party
// and a consumer starting at the same moment do.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       Stream,
			Subjects:   []string{"orders.>"},
			Storage:    jetstream.FileStorage,
			Duplicates: DedupeWindow,
			MaxMsgs:    StreamMaxMsgs,
			MaxBytes:   StreamMaxBytes,
			Discard:    jetstream.DiscardOld,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, Stream) // another party was first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", Stream, err)
	}
	return s, nil
}

// EnsureSentBucket creates the bucket notification confirms into, or
// returns it if it exists (without updating it; see EnsureStream).
func EnsureSentBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, SentBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: SentBucket, Storage: jetstream.FileStorage, TTL: SentTTL})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, SentBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", SentBucket, err)
	}
	return kv, nil
}

// HeaderCarrier adapts NATS message headers to OpenTelemetry's
// propagation.TextMapCarrier.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces the values of key.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// ConnectOptions are the NATS client options every service uses: reconnect
// forever, quickly, so that a healed partition is noticed within moments;
// buffer publishes while disconnected only for core NATS callers that want it.
func ConnectOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(20*time.Millisecond, 20*time.Millisecond),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(2 * time.Second),
	}
}
