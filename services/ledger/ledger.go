// Package ledger is the ledger consumer: for every orders.created event it
// appends an entry to an in-memory ledger. The consumer engine does the
// rest (idempotency, counting, serving what was applied).
package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

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

// Server is the ledger consumer. Serve, Shutdown, Stats, Applied and Ready
// come from the consumer engine.
type Server struct {
	*consumer.Server

	mu      sync.Mutex
	entries *store.Recent[Entry] // the store.RetainRecords most recent
}

// New validates the configuration and builds the consumer. It starts
// nothing and does no I/O.
func New(cfg config.Consumer, natsURL string, mode config.PublishMode, o serve.Options) (*Server, error) {
	s := &Server{entries: store.NewRecent[Entry](store.RetainRecords)}
	c, err := consumer.New(consumer.Config{
		Name:     Name,
		NATSURL:  natsURL,
		Mode:     mode,
		Consumer: cfg,
		OnApply:  s.appendEntry,
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
	return nil
}

// Entries returns a copy of the entries held (the store.RetainRecords most
// recent) in the order they were appended.
func (s *Server) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries.Held())
}
