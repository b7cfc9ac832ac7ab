// Package config is the plain-data configuration of the system under test
// and the table of knobs that experiment variants set by name.
//
// Every resilience mechanism can be switched off, so that a "naive" variant
// really is naive: the zero value of Link is a bare gRPC call with no
// deadline, no retries, no breaker, no bulkhead and no fallback.
//
// This package does no I/O and imports nothing beyond the standard library,
// so the experiment loader can validate knob names and values without
// pulling in the services.
package config

import (
	"fmt"
	"time"
)

// System configures every service of one topology.
type System struct {
	Order        Order
	User         User
	Payment      Payment
	Notification Consumer
	Ledger       Consumer
	Security     Security
	Topology     Topology
	Client       Client
}

// Default returns the configuration used when a variant sets no knob: a
// system with no resilience policies, JetStream publishing and idempotent
// consumers.
func Default() System {
	return System{
		Order: Order{
			User:           Link{BackoffBase: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BreakerFailures: 5, BreakerOpenFor: time.Second, BreakerHalfOpen: 1},
			Payment:        Link{BackoffBase: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BreakerFailures: 5, BreakerOpenFor: time.Second, BreakerHalfOpen: 1},
			PublishMode:    PublishJetStream,
			PublishTimeout: 2 * time.Second,
			UserView:       ViewFull,
		},
		User:         User{Users: 100, HistoryBytes: 1024, BalanceCents: 1_000_000_000},
		Notification: Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1},
		Ledger:       Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1},
	}
}

// Order configures the order service.
type Order struct {
	User    Link // policy of the order→user link
	Payment Link // policy of the order→payment link

	PublishMode    PublishMode
	PublishTimeout time.Duration // deadline of a JetStream acked publish
	// PublishRetries re-sends an unacknowledged JetStream publish with the
	// same Nats-Msg-Id; the stream's dedupe window drops the copies.
	PublishRetries int
	// UserView is what order asks user for: the full profile with its
	// history, or the basic one (the lean request of the bandwidth experiment).
	UserView View
	// WaitForNotification, when positive, makes PlaceOrder wait (polling)
	// until notification has applied the order's event, at most this long:
	// the hidden synchronous dependency of the hidden-sync experiment.
	WaitForNotification time.Duration
	// BusinessWork is an artificial in-service delay per PlaceOrder, 0 by default.
	BusinessWork time.Duration
	// UserDiscovery is how order finds user: pinned to the address it was
	// given at start (the zero value), or through the testbed's registry,
	// re-resolved whenever the registry changes.
	UserDiscovery Discovery `json:",omitempty"`
	// UserTransport is how order fetches a profile: protobuf over gRPC
	// through the user proxy (TransportGRPC; "" means the same), or JSON
	// over HTTP/1.1 through the user-http proxy (the transport-cost
	// experiment).
	UserTransport Transport `json:",omitempty"`
	// MaxConcurrent caps the PlaceOrder and GetOrder requests order works
	// on at once, across both methods; the excess waits for a slot in
	// arrival order, like a fixed pool of workers. 0: unlimited.
	MaxConcurrent int `json:",omitempty"`
	// PublishNoDedupe leaves the Nats-Msg-Id header off published events,
	// so that the stream stores every re-sent copy (the duplicate-delivery
	// experiment). The zero value deduplicates.
	PublishNoDedupe bool `json:",omitempty"`
	// ChargeKey is the idempotency key order sends with each Charge: the
	// order id on every attempt (ChargeKeyOrder; "" means the same), or a
	// new key for each attempt (ChargeKeyAttempt), as a client that makes
	// up a request id per call does: a retried charge is then a new charge
	// (the lost-response experiment).
	ChargeKey ChargeKey `json:",omitempty"`
}

// Ordering says how the ledger applies the account state events carry.
type Ordering string

// Orderings.
const (
	OrderingVersion Ordering = "version" // apply a state only when its version is above the applied one
	OrderingArrival Ordering = "arrival" // apply every state as it arrives: the last to arrive wins
)

// ChargeKey says what order uses as a Charge's idempotency key.
type ChargeKey string

// Charge keys.
const (
	ChargeKeyOrder   ChargeKey = "order"   // the order id, the same on every attempt
	ChargeKeyAttempt ChargeKey = "attempt" // a new key for each attempt
)

// Transport is how order talks to user.
type Transport string

// Transports.
const (
	TransportGRPC Transport = "grpc" // protobuf over gRPC (HTTP/2)
	TransportHTTP Transport = "http" // JSON over HTTP/1.1
)

// Discovery is how a client finds the address of a service.
type Discovery string

// Discovery modes.
const (
	DiscoveryPinned   Discovery = "pinned"   // the address given at start, for good
	DiscoveryRegistry Discovery = "registry" // watched in the testbed's registry
)

// Link is the resilience policy of one outgoing gRPC link. Zero values
// switch each mechanism off.
type Link struct {
	Timeout         time.Duration // per attempt deadline; 0: none
	Retries         int           // extra attempts on retryable codes; 0: none
	BackoffBase     time.Duration // first backoff, doubled each retry
	BackoffMax      time.Duration // backoff cap
	Breaker         bool          // gobreaker circuit breaker on the link
	BreakerFailures uint32        // consecutive failures that open the breaker
	BreakerOpenFor  time.Duration // time open before half-open
	BreakerHalfOpen uint32        // calls let through while half-open
	Bulkhead        int           // max calls in flight; excess rejected fast; 0: unlimited
	Fallback        Fallback      // what to do when the call fails
	// RetryBudget caps retries at this percentage of calls, as a token
	// bucket: each call adds RetryBudget/100 of a token (at most
	// RetryBudgetBurst), each retry takes one. 0: no budget.
	RetryBudget int `json:",omitempty"`
	// MinAttemptTime is the least time a retry must have left before the
	// caller's deadline, after its backoff; a retry that would get less is
	// not sent. 0: retry while any time is left.
	MinAttemptTime time.Duration `json:",omitempty"`
	// HedgeAfter, when positive, sends a second attempt to another replica
	// when the first has not answered after this long and takes the first
	// answer (payment link with several replicas only).
	HedgeAfter time.Duration `json:",omitempty"`
}

// RetryBudgetBurst is how many retry tokens a budget holds at most, and
// starts with.
const RetryBudgetBurst = 10

// PublishMode is how order publishes orders.created.
type PublishMode string

// Publish modes.
const (
	PublishJetStream PublishMode = "jetstream" // durable, acked, deduplicated by Nats-Msg-Id
	PublishCore      PublishMode = "core"      // fire-and-forget core NATS
)

// View is how much of a profile order asks for.
type View string

// Views.
const (
	ViewFull  View = "full"
	ViewBasic View = "basic"
)

// Fallback names what a link does when its call fails.
type Fallback string

// Fallbacks.
const (
	FallbackNone          Fallback = ""
	FallbackCachedProfile Fallback = "cached-profile" // last profile seen for the user (user link only)
)

// User configures the user service.
type User struct {
	Users        int   // profiles seeded, ids u-0000 … ; at least 1
	HistoryBytes int   // approximate size of each profile's order history
	BalanceCents int64 // starting balance of every profile
}

// Payment configures the payment service.
type Payment struct {
	// ProcessingTime is an artificial delay inside Charge, so that payment
	// can be slowed from configuration as well as by a fault.
	ProcessingTime time.Duration
	// LedgerFile, when set, keeps the ledger in this file so that a
	// restarted payment process still has it. Set by the topology, not a knob.
	LedgerFile string `json:",omitempty"`
	// Replicas is how many payment servers run, each behind its own proxy
	// (payment, payment-1, payment-2); 0 and 1 both mean one.
	Replicas int `json:",omitempty"`
	// Idempotency is where replicas keep idempotency keys: each its own
	// (local, the zero value), or one store all replicas share (shared: a
	// JetStream key-value bucket), so that a charge retried or hedged on
	// another replica is recognised as the same charge.
	Idempotency Idempotency `json:",omitempty"`
}

// MaxPaymentReplicas bounds Payment.Replicas.
const MaxPaymentReplicas = 3

// Idempotency is where payment keeps its idempotency keys.
type Idempotency string

// Idempotency stores.
const (
	IdempotencyLocal  Idempotency = "local"  // each replica its own
	IdempotencyShared Idempotency = "shared" // one store for all replicas
)

// Client is the load generator's own retry policy in one variant: the
// client team's configuration, which the experiment's load section sets
// for every variant (load.retries) and a variant may override.
type Client struct {
	// Retries is how often the client sends a failed request again; it
	// applies only when RetriesSet (a variant set the knob).
	Retries    int  `json:",omitempty"`
	RetriesSet bool `json:",omitempty"`
	// RetryBackoff is the first client retry backoff; 0: the load's.
	RetryBackoff time.Duration `json:",omitempty"`
}

// Security configures the transport security of every link.
type Security struct {
	// MTLS, when true, encrypts every link with TLS and makes every server
	// require and verify a client certificate issued by the testbed's own
	// certificate authority (gRPC, the user HTTP API and NATS).
	MTLS bool `json:",omitempty"`
}

// Topology configures how the testbed behaves around the services.
type Topology struct {
	// RestartAddress is where a restarted service is found: at the same
	// address (the zero value: its proxy is repointed, as a stable virtual
	// address would hide the move), or at a new one (its proxy moves to a
	// new port and the registry says where; clients that pinned the old
	// address fail).
	RestartAddress RestartAddress `json:",omitempty"`
}

// RestartAddress says whether a restarted service keeps its address.
type RestartAddress string

// Restart address policies.
const (
	AddressSame RestartAddress = "same" // the proxy is repointed
	AddressNew  RestartAddress = "new"  // the proxy moves; the registry says where
)

// Consumer configures an asynchronous consumer (notification or ledger).
type Consumer struct {
	// Idempotent makes the consumer skip an order it already applied and
	// count it as a recognised duplicate; otherwise it applies it again.
	Idempotent bool
	AckWait    time.Duration // JetStream ack wait before redelivery
	MaxDeliver int           // JetStream max deliveries; -1: unlimited
	// ProcessingTime is an artificial delay per event before it is acked.
	ProcessingTime time.Duration
	// Ordering is how the ledger applies the account state an event
	// carries: by its version, skipping a state older than the one applied
	// (OrderingVersion; "" means the same), or as events arrive
	// (OrderingArrival), so that a late old event sets an account back.
	// Only the ledger keeps such state.
	Ordering Ordering `json:",omitempty"`
	// StoreFile, when set, keeps what the consumer applied in this file so
	// that a restarted consumer process still has it. Set by the topology,
	// not a knob.
	StoreFile string `json:",omitempty"`
}

// Validate reports the first setting that cannot work, naming the value.
func (s System) Validate() error {
	for _, r := range linkRules {
		if err := r.get(&s).Validate(r.name); err != nil {
			return err
		}
	}
	switch s.Order.PublishMode {
	case PublishJetStream, PublishCore:
	default:
		return fmt.Errorf("order.publish_mode: %q is not jetstream or core", s.Order.PublishMode)
	}
	switch s.Order.UserView {
	case ViewFull, ViewBasic:
	default:
		return fmt.Errorf("order.user_view: %q is not full or basic", s.Order.UserView)
	}
	switch s.Order.UserTransport {
	case "", TransportGRPC, TransportHTTP:
	default:
		return fmt.Errorf("order.user_transport: %q is not grpc or http", s.Order.UserTransport)
	}
	switch s.Ledger.Ordering {
	case "", OrderingVersion, OrderingArrival:
	default:
		return fmt.Errorf("ledger.ordering: %q is not version or arrival", s.Ledger.Ordering)
	}
	switch s.Order.ChargeKey {
	case "", ChargeKeyOrder, ChargeKeyAttempt:
	default:
		return fmt.Errorf("order.charge_key: %q is not order or attempt", s.Order.ChargeKey)
	}
	if n := s.Order.MaxConcurrent; n < 0 || n > MaxOrderConcurrency {
		return fmt.Errorf("order.max_concurrent: %d, need 0 (unlimited) to %d", n, MaxOrderConcurrency)
	}
	switch s.Order.UserDiscovery {
	case "", DiscoveryPinned, DiscoveryRegistry:
	default:
		return fmt.Errorf("order.user.discovery: %q is not pinned or registry", s.Order.UserDiscovery)
	}
	if r := s.Payment.Replicas; r < 0 || r > MaxPaymentReplicas {
		return fmt.Errorf("payment.replicas: %d, need 1 to %d", r, MaxPaymentReplicas)
	}
	if h := s.Order.Payment.HedgeAfter; h != 0 && s.Payment.Replicas < 2 {
		return fmt.Errorf("order.payment.hedge_after: %v needs payment.replicas of at least 2 (got %d): a hedge goes to another replica", h, s.Payment.Replicas)
	}
	switch s.Payment.Idempotency {
	case "", IdempotencyLocal, IdempotencyShared:
	default:
		return fmt.Errorf("payment.idempotency: %q is not local or shared", s.Payment.Idempotency)
	}
	if s.Client.Retries < 0 || s.Client.Retries > MaxRetries {
		return fmt.Errorf("client.retries: %d, need 0 to %d", s.Client.Retries, MaxRetries)
	}
	if s.Client.RetryBackoff < 0 {
		return fmt.Errorf("client.retry_backoff: %v is negative", s.Client.RetryBackoff)
	}
	switch s.Topology.RestartAddress {
	case "", AddressSame, AddressNew:
	default:
		return fmt.Errorf("topology.restart_address: %q is not same or new", s.Topology.RestartAddress)
	}
	if s.User.Users < 1 || s.User.Users > MaxUsers {
		return fmt.Errorf("user.users: %d, need 1 to %d", s.User.Users, MaxUsers)
	}
	if s.User.HistoryBytes < 0 || s.User.HistoryBytes > MaxHistoryBytes {
		return fmt.Errorf("user.history_bytes: %d, need 0 to %d", s.User.HistoryBytes, MaxHistoryBytes)
	}
	for _, c := range []struct {
		name string
		c    Consumer
	}{{"notification", s.Notification}, {"ledger", s.Ledger}} {
		if c.c.AckWait <= 0 {
			return fmt.Errorf("%s.ack_wait: %v, need a positive duration", c.name, c.c.AckWait)
		}
		if c.c.MaxDeliver == 0 || c.c.MaxDeliver < -1 {
			return fmt.Errorf("%s.max_deliver: %d, need -1 (unlimited) or at least 1", c.name, c.c.MaxDeliver)
		}
	}
	return nil
}
