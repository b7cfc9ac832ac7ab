package natslayer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"
)

// Kind is what a rule does to the messages it picks.
type Kind string

// Rule kinds.
const (
	// Drop removes the message from the stream: the other side never sees
	// it.
	Drop Kind = "nats-drop"
	// Duplicate writes the message twice, the copy right behind it.
	Duplicate Kind = "nats-duplicate"
	// Delay holds the message for Latency ± Jitter, drawn per message; the
	// messages a rule delays keep their order among themselves (a message
	// is never released before one the same rule delayed earlier).
	Delay Kind = "nats-delay"
	// Reorder holds the message back for Hold while the messages behind it
	// pass, then releases it: the other side sees it after later ones.
	Reorder Kind = "nats-reorder"
	// DropAck drops a consumer's positive acknowledgements (+ACK, or an
	// empty body, published to a $JS.ACK. reply subject) of the messages
	// whose subject matches: JetStream redelivers them after its ack wait.
	DropAck Kind = "nats-drop-ack"
)

// Flow is the way of the stream a rule acts on.
type Flow uint8

// Flows. A message to the client is a MSG or HMSG (a delivery); a message
// to the server is a PUB or HPUB (a publish).
const (
	ToServer  Flow = 1 << iota // client to server: PUB, HPUB (Toxiproxy's upstream)
	ToClient                   // server to client: MSG, HMSG (Toxiproxy's downstream)
	BothFlows = ToServer | ToClient
)

func (f Flow) String() string {
	switch f {
	case ToServer:
		return "to-server"
	case ToClient:
		return "to-client"
	case BothFlows:
		return "both"
	}
	return fmt.Sprintf("flow(%d)", uint8(f))
}

// Rule is one message-level fault on the layer's link.
type Rule struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Subject is the subject pattern of the messages the rule acts on, as
	// NATS matches it: tokens separated by dots, * for any one token, >
	// as the last token for one or more tokens. Empty matches every
	// subject.
	Subject string `json:"subject,omitempty"`
	// Flow is the way of the stream the rule acts on; 0 is taken as both.
	// DropAck acts on the acks a client sends, whatever Flow says.
	Flow Flow `json:"flow,omitempty"`
	// Probability picks the messages the rule acts on, 0 < p <= 1; 0 is
	// taken as 1.
	Probability float64 `json:"probability,omitempty"`
	// Toxicity is the share of connections (each stream of a connection
	// drawn once) the rule acts on at all, as a Toxiproxy toxic's
	// toxicity; 0 is taken as 1.
	Toxicity float64 `json:"toxicity,omitempty"`
	// Latency and Jitter are Delay's hold, drawn per message.
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	// Hold is how long Reorder holds a message back.
	Hold time.Duration `json:"hold,omitempty"`
}

// Check reports a rule the layer cannot apply.
func (r Rule) Check() error {
	switch r.Kind {
	case Drop, Duplicate, Delay, Reorder, DropAck:
	default:
		return fmt.Errorf("rule %q: unknown kind %q (nats-drop, nats-duplicate, nats-delay, nats-reorder, nats-drop-ack)", r.Name, r.Kind)
	}
	if r.Probability < 0 || r.Probability > 1 {
		return fmt.Errorf("rule %q: probability %g is not in (0, 1]", r.Name, r.Probability)
	}
	if r.Toxicity < 0 || r.Toxicity > 1 {
		return fmt.Errorf("rule %q: toxicity %g is not in (0, 1]", r.Name, r.Toxicity)
	}
	if r.Flow > BothFlows {
		return fmt.Errorf("rule %q: flow %d is not to-server, to-client or both", r.Name, r.Flow)
	}
	if r.Latency < 0 || r.Jitter < 0 || r.Hold < 0 {
		return fmt.Errorf("rule %q: negative latency, jitter or hold", r.Name)
	}
	if r.Kind == Reorder && r.Hold == 0 {
		return fmt.Errorf("rule %q: a reorder needs a hold above zero", r.Name)
	}
	if err := checkSubject(r.Subject); err != nil {
		return fmt.Errorf("rule %q: %w", r.Name, err)
	}
	return nil
}

// checkSubject reports a subject pattern NATS would not accept: an empty
// token, whitespace, or > anywhere but as the last token.
func checkSubject(s string) error {
	if s == "" {
		return nil
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("subject %q holds whitespace", s)
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token", s)
		case t == ">" && i != len(toks)-1:
			return fmt.Errorf("subject %q: > must be the last token", s)
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q: a wildcard must be a whole token (%q)", s, t)
		}
	}
	return nil
}

// SubjectMatches reports whether subject matches pattern as NATS matches a
// subscription: * stands for one token, a final > for one or more.
func SubjectMatches(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch {
		case pt == ">":
			return st != ""
		case pt != "*" && pt != st, st == "":
			return false
		case !pmore || !smore:
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// Counters are what a rule saw: Messages of its subject in its flow
// (for DropAck: acknowledgements of such messages), Faulted those it acted
// on, and for Reorder Overtaken, the messages of its subject that passed a
// message it held.
type Counters struct {
	Messages  int64 `json:"messages"`
	Faulted   int64 `json:"faulted"`
	Overtaken int64 `json:"overtaken,omitempty"`
}

// Map returns the counters by name, the form of a report's counters.
func (c Counters) Map(k Kind) map[string]uint64 {
	m := map[string]uint64{"messages": uint64(c.Messages), "faulted": uint64(c.Faulted)}
	if k == Reorder {
		m["overtaken"] = uint64(c.Overtaken)
	}
	return m
}

// rule is a Rule at work, with its counters.
type rule struct {
	Rule
	messages, faulted, overtaken atomic.Int64
}

func newRule(r Rule) *rule { return &rule{Rule: normalized(r)} }

func normalized(r Rule) Rule {
	if r.Probability == 0 {
		r.Probability = 1
	}
	if r.Toxicity == 0 {
		r.Toxicity = 1
	}
	if r.Flow == 0 {
		r.Flow = BothFlows
	}
	if r.Subject == "" {
		r.Subject = ">"
	}
	return r
}

// matches reports whether the rule looks at a message of subject flowing
// in flow; it does not count it.
func (r *rule) matches(flow Flow, subject string) bool {
	return r.Kind != DropAck && r.Flow&flow != 0 && SubjectMatches(r.Subject, subject)
}

// fires counts a message the rule matches and says whether it acts on it.
func (r *rule) fires() bool {
	r.messages.Add(1)
	if r.Probability < 1 && rand.Float64() >= r.Probability {
		return false
	}
	r.faulted.Add(1)
	return true
}

// delay draws Delay's hold for one message: Latency ± Jitter, uniform,
// never below zero.
func (r *rule) delay() time.Duration {
	d := r.Latency
	if r.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*r.Jitter)+1)) - r.Jitter
	}
	return max(d, 0)
}

func (r *rule) counters() Counters {
	return Counters{Messages: r.messages.Load(), Faulted: r.faulted.Load(), Overtaken: r.overtaken.Load()}
}
