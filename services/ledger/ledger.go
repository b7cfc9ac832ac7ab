// Package ledger is the ledger consumer: for every orders.created event it
// appends an entry to an in-memory ledger and sets the user's account to
// the state the event carries (the user's orders so far and their total,
// versioned by the per-user sequence order assigned). With ledger.ordering
// version an account takes a state only when its version is above the one
// applied, so a late or repeated old event changes nothing; with arrival
// the last event to arrive wins, and an old one sets the account back. The
// consumer engine does the rest (idempotency, counting, serving what was
// applied).
package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/consumer"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

// Name is the durable consumer name and the stats name.
const Name = "ledger"

// Entry is one line of the ledger.
type Entry struct {
	OrderID     string
	UserID      string
	AmountCents int64
	ChargeID    string
	At          time.Time // when it was appended
}

// Account is a user's account as the ledger holds it: the state of the
// user's orders (how many, their total) at version Seq.
type Account struct {
	Seq        int64
	TotalCents int64
}

// Server is the ledger consumer. Serve, Shutdown, Stats, Applied and Ready
// come from the consumer engine.
type Server struct {
	*consumer.Server
	ordering config.Ordering

	mu      sync.Mutex
	entries *store.Recent[Entry] // the store.RetainRecords most recent
	// accounts is each user's applied state, newest the newest version
	// received for it; users are the user service's profiles (bounded).
	accounts, newest           map[string]Account
	staleApplied, staleSkipped int64
}

// New validates the configuration and builds the consumer. It starts
// nothing and does no I/O.
func New(cfg config.Consumer, natsURL string, mode config.PublishMode, o serve.Options) (*Server, error) {
	s := &Server{entries: store.NewRecent[Entry](store.RetainRecords), ordering: cfg.Ordering,
		accounts: map[string]Account{}, newest: map[string]Account{}}
	c, err := consumer.New(consumer.Config{
		Name:      Name,
		NATSURL:   natsURL,
		Mode:      mode,
		Consumer:  cfg,
		OnApply:   s.appendEntry,
		Versioned: s.versioned,
	}, o)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", Name, err)
	}
	s.Server = c
	return s, nil
}

func (s *Server) appendEntry(_ context.Context, e events.OrderCreated) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries.Append(Entry{OrderID: e.OrderID, UserID: e.UserID, AmountCents: e.AmountCents, ChargeID: e.ChargeID, At: time.Now()}, nil)
	s.applyState(e)
	return nil
}

// applyState sets the user's account to the state the event carries: by
// version, or as it arrives (ledger.ordering). s.mu is held.
func (s *Server) applyState(e events.OrderCreated) {
	if e.UserSeq <= 0 {
		return // an event without state (published by an older order)
	}
	state := Account{Seq: e.UserSeq, TotalCents: e.UserTotalCents}
	if state.Seq > s.newest[e.UserID].Seq {
		s.newest[e.UserID] = state
	}
	cur, ok := s.accounts[e.UserID]
	stale := ok && state.Seq <= cur.Seq
	switch {
	case !stale:
		s.accounts[e.UserID] = state
	case s.ordering == config.OrderingArrival:
		s.accounts[e.UserID] = state // the account goes back (or stays, for a copy of the same version)
		if state.Seq < cur.Seq {
			s.staleApplied++
		}
	default:
		if state.Seq < cur.Seq {
			s.staleSkipped++
		}
	}
}

// versioned fills the stats of the accounts: stale events applied and
// skipped, and the accounts now behind the newest state received.
func (s *Server) versioned(st *consumerv1.GetStatsResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.StaleApplied, st.StaleSkipped = s.staleApplied, s.staleSkipped
	for user, n := range s.newest {
		if s.accounts[user].Seq < n.Seq {
			st.KeysBehind++
		}
	}
}

// Accounts returns a copy of the users' accounts as applied.
func (s *Server) Accounts() map[string]Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.accounts)
}

// Entries returns a copy of the entries held (the store.RetainRecords most
// recent) in the order they were appended.
func (s *Server) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries.Held())
}
