package check

import (
	"fmt"
	"sort"
	"time"
)

// This file is the consistency checker: after a run has drained, it joins
// what the load generator's clients were told (a history of Attempts) with
// what the services recorded (Observed), Jepsen-style, and counts the
// orders that were lost, duplicated, charged although the client was told
// they failed, or recorded although nobody asked for them.
//
// Everything here is a pure function of its arguments: no I/O, no clock.

// Outcome is what a client was told about one attempt to place an order.
// The zero value is not a valid outcome; CheckConsistency treats an attempt
// with an invalid outcome as OutcomeUnknown, the only safe reading of "we
// do not know what happened".
type Outcome int

// The outcomes of an attempt, from the client's point of view.
const (
	// OutcomeAcknowledged: the server answered OK; the order must exist.
	OutcomeAcknowledged Outcome = iota + 1
	// OutcomeFailed: the server answered with a definite error; the order
	// must not have had any effect.
	OutcomeFailed
	// OutcomeUnknown: the client gave up (its own deadline or a cancel)
	// before an answer arrived; the server may or may not have completed it.
	OutcomeUnknown
)

// String returns "acknowledged", "failed" or "unknown", or "outcome(n)"
// for an invalid value.
func (o Outcome) String() string {
	switch o {
	case OutcomeAcknowledged:
		return "acknowledged"
	case OutcomeFailed:
		return "failed"
	case OutcomeUnknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// MarshalText encodes the outcome as its String form, so that histories
// read well in JSON reports.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText decodes the String form of a valid outcome.
func (o *Outcome) UnmarshalText(b []byte) error {
	switch string(b) {
	case "acknowledged":
		*o = OutcomeAcknowledged
	case "failed":
		*o = OutcomeFailed
	case "unknown":
		*o = OutcomeUnknown
	default:
		return fmt.Errorf("decode outcome %q: want acknowledged, failed or unknown", b)
	}
	return nil
}

// rank orders outcomes for merging several attempts at the same order id:
// acknowledged > unknown > failed. Invalid outcomes rank as unknown.
func (o Outcome) rank() int {
	switch o {
	case OutcomeAcknowledged:
		return 3
	case OutcomeFailed:
		return 1
	}
	return 2
}

// normal maps an invalid outcome to OutcomeUnknown.
func (o Outcome) normal() Outcome {
	switch o {
	case OutcomeAcknowledged, OutcomeFailed:
		return o
	}
	return OutcomeUnknown
}

// Attempt is one request to place an order, as the client saw it: the
// input history of the consistency checker. The load generator records one
// per place_order request it sent (dropped arrivals were never sent and
// have no Attempt).
type Attempt struct {
	// OrderID is the id the client chose for the order; it is the key
	// joining the history with what the services recorded.
	OrderID string `json:"order_id"`
	// Outcome is what the client was told.
	Outcome Outcome `json:"outcome"`
	// Code is the gRPC status code name in UPPER_SNAKE form ("OK",
	// "DEADLINE_EXCEEDED", …); for an unknown outcome, the code the client
	// itself produced when it gave up.
	Code string `json:"code"`
	// Intended is when the request was meant to be sent.
	Intended time.Time `json:"intended"`
	// Latency is from Intended to the answer (or to giving up).
	Latency time.Duration `json:"latency"`
}

// Observed is what the services recorded, read after the run has drained.
type Observed struct {
	// Charges maps an order id to the number of charges payment's ledger
	// holds for it.
	Charges map[string]int
	// Applied maps a consumer name ("notification", "ledger") to order id
	// to the number of times that consumer applied the order's event. Every
	// consumer present as a key is checked, even when its map is empty (it
	// then applied nothing); a consumer absent from the map is not checked.
	Applied map[string]map[string]int
	// Published maps an order id to the number of orders.created messages
	// for it in the ORDERS stream; nil when that is not known.
	Published map[string]int
}

// Consistency is the checker's verdict. All counts are of distinct order
// ids; an order id attempted several times counts once, with the best
// outcome any of its attempts got (acknowledged > unknown > failed).
type Consistency struct {
	// Acknowledged counts orders the client was told succeeded.
	Acknowledged int `json:"acknowledged"`
	// Lost counts acknowledged orders with no charge, or that at least one
	// checked consumer never applied; an order missing in several places
	// counts once. Lost = |Payments lost ∪ Events lost|.
	Lost int `json:"lost"`
	// Duplicated counts orders charged more than once, or applied more
	// than once by at least one consumer; each order counts once, whatever
	// its outcome and whether or not it was attempted.
	Duplicated int `json:"duplicated"`
	// Ghost counts orders whose client was told they FAILED (a definite
	// error answer) that were nevertheless charged: money taken for an
	// order the customer believes did not happen.
	Ghost int `json:"ghost"`
	// Recovered counts orders with an UNKNOWN outcome (the client gave up)
	// that were charged: the server completed them after all.
	Recovered int `json:"recovered"`
	// Unexpected counts order ids in the ledger of charges or in any
	// consumer's record that were never attempted; each id counts once.
	Unexpected int `json:"unexpected"`
	// Payments is the accounting of payment's ledger alone.
	Payments PaymentsConsistency `json:"payments"`
	// Consumers holds the accounting of each checked consumer, by name.
	Consumers map[string]ConsumerConsistency `json:"consumers"`
	// Events is the accounting of the event path over all consumers.
	Events EventsConsistency `json:"events"`
}

// PaymentsConsistency is the accounting of payment's ledger.
type PaymentsConsistency struct {
	// Lost counts acknowledged orders with no charge.
	Lost int `json:"lost"`
	// Duplicated counts orders (attempted or not) charged more than once.
	Duplicated int `json:"duplicated"`
	// Ghost counts orders told FAILED that were charged (same as
	// Consistency.Ghost: a ghost is a charge).
	Ghost int `json:"ghost"`
}

// ConsumerConsistency is the accounting of one consumer.
type ConsumerConsistency struct {
	// Applied counts the distinct order ids the consumer applied at least
	// once, attempted or not.
	Applied int `json:"applied"`
	// Lost counts acknowledged orders the consumer never applied.
	Lost int `json:"lost"`
	// Duplicated counts order ids (attempted or not) the consumer applied
	// more than once.
	Duplicated int `json:"duplicated"`
	// Unexpected counts order ids the consumer applied that were never
	// attempted.
	Unexpected int `json:"unexpected"`
}

// EventsConsistency is the accounting of the event path.
type EventsConsistency struct {
	// Lost counts acknowledged orders that at least one checked consumer
	// never applied (the union of the consumers' Lost sets).
	Lost int `json:"lost"`
	// Duplicated counts order ids that at least one consumer applied more
	// than once (the union of the consumers' Duplicated sets).
	Duplicated int `json:"duplicated"`
	// Published is the number of orders.created messages in the ORDERS
	// stream (the sum of Observed.Published, duplicates included); 0 when
	// PublishedKnown is false.
	Published int `json:"published"`
	// PublishedKnown reports whether Observed.Published was provided.
	PublishedKnown bool `json:"published_known"`
}

// CheckConsistency joins the attempts with what the services recorded and
// counts, per the definitions on Consistency and its parts. Attempts with
// an empty OrderID are ignored. Counts of zero or less in Observed mean
// "not recorded". It does not modify its arguments.
func CheckConsistency(attempts []Attempt, obs Observed) Consistency {
	best := make(map[string]Outcome, len(attempts))
	for _, a := range attempts {
		if a.OrderID == "" {
			continue
		}
		o := a.Outcome.normal()
		if cur, ok := best[a.OrderID]; !ok || o.rank() > cur.rank() {
			best[a.OrderID] = o
		}
	}

	var c Consistency
	lost := make(map[string]bool)
	duplicated := make(map[string]bool)
	unexpected := make(map[string]bool)
	eventsLost := make(map[string]bool)
	eventsDup := make(map[string]bool)

	for id, o := range best {
		if o != OutcomeAcknowledged {
			continue
		}
		c.Acknowledged++
		if obs.Charges[id] <= 0 {
			c.Payments.Lost++
			lost[id] = true
		}
	}
	for id, n := range obs.Charges {
		if n <= 0 {
			continue
		}
		if n > 1 {
			c.Payments.Duplicated++
			duplicated[id] = true
		}
		o, attempted := best[id]
		switch {
		case !attempted:
			unexpected[id] = true
		case o == OutcomeFailed:
			c.Payments.Ghost++
		case o == OutcomeUnknown:
			c.Recovered++
		}
	}
	c.Ghost = c.Payments.Ghost

	c.Consumers = make(map[string]ConsumerConsistency, len(obs.Applied))
	for name, applied := range obs.Applied {
		var cc ConsumerConsistency
		for id, o := range best {
			if o == OutcomeAcknowledged && applied[id] <= 0 {
				cc.Lost++
				eventsLost[id] = true
				lost[id] = true
			}
		}
		for id, n := range applied {
			if n <= 0 {
				continue
			}
			cc.Applied++
			if n > 1 {
				cc.Duplicated++
				eventsDup[id] = true
				duplicated[id] = true
			}
			if _, attempted := best[id]; !attempted {
				cc.Unexpected++
				unexpected[id] = true
			}
		}
		c.Consumers[name] = cc
	}

	c.Lost = len(lost)
	c.Duplicated = len(duplicated)
	c.Unexpected = len(unexpected)
	c.Events.Lost = len(eventsLost)
	c.Events.Duplicated = len(eventsDup)
	if obs.Published != nil {
		c.Events.PublishedKnown = true
		for _, n := range obs.Published {
			if n > 0 {
				c.Events.Published += n
			}
		}
	}
	return c
}

// ConsumerNames returns the names of the checked consumers in c, sorted,
// so that reports list them in a stable order.
func (c Consistency) ConsumerNames() []string {
	names := make([]string, 0, len(c.Consumers))
	for n := range c.Consumers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
