package faults

import (
	"fmt"
	"strings"
	"time"
)

// MessageKind is the optional capability of a message-level kind:
// faults/toxiproxy applies it through the NATS layer (faults/natslayer) it
// puts between the fault's proxy and nats-server, which sees each message
// of a subject where a toxic sees only the bytes of a connection every
// subject shares.
type MessageKind interface {
	// OnMessage says what a fault of the kind does to the messages of its
	// link; its attributes are checked and complete.
	OnMessage(f Fault) MessageAction
}

// MessageAction is what a message-level fault does to the messages of its
// link.
type MessageAction struct {
	Subject     string    // subject pattern, NATS wildcards * and >; "" for every subject
	Direction   Direction // upstream: the client's publishes; downstream: deliveries to it; both
	Probability float64   // share of the matching messages it acts on, (0, 1]
	Toxicity    float64   // share of the connections (each stream drawn once) it acts on, (0, 1]
	Delay       time.Duration
	Jitter      time.Duration // nats-delay: Delay ± Jitter, drawn per message
	Hold        time.Duration // nats-reorder: how long a picked message is held back
}

// TargetNATS is a NATS link by the name of its proxy: a message-level
// fault's target.
const TargetNATS TargetKind = "nats-link"

// NATSLinks lists the proxies that carry NATS connections: the targets of
// a message-level fault.
func NATSLinks() []string {
	return []string{ProxyNATSOrder, ProxyNATSNotification, ProxyNATSLedger, ProxyNATSPayment}
}

// init registers the target before the kind files' init use it: files
// initialize in name order, and this one sorts before kind_*.go.
func init() {
	targets[TargetNATS] = target{
		rank:  4,
		names: NATSLinks,
		doc:   "The NATS link (by its proxy's name) whose messages the fault acts on.",
		unknown: func(k Kind, name string, names []string) (string, string) {
			return fmt.Sprintf("%q is not a NATS link", name), "a " + string(k) + " fault targets a NATS link: " + strings.Join(names, ", ")
		},
		// The NATS layer runs on the layer host beside the proxies
		// (faults/toxiproxy), in compose's toxiproxy container too.
		topology: anyTopology,
	}
}

// Attributes shared by the message-level kinds.
var (
	subjectAttr = Attr{Name: "subject", Unit: Text, Pattern: `^([^.*> \t]+|\*)(\.([^.*> \t]+|\*))*(\.>)?$|^>$`, Example: "orders.created",
		Doc: "subject of the messages acted on, NATS wildcards allowed (orders.*, orders.>); every subject when unset"}
	messageProbabilityAttr = Attr{Name: "probability", Unit: Fraction, Default: FractionOne, Min: 1, Max: FractionOne,
		Doc: "share of the matching messages acted on, 0 to 1, drawn per message"}
)

// messageAction fills the attributes every message-level kind shares.
func messageAction(f Fault) MessageAction {
	t := f.Toxicity
	if t == 0 {
		t = 1
	}
	return MessageAction{Subject: f.Text["subject"], Direction: f.Direction, Toxicity: t,
		Probability: float64(f.Attrs["probability"]) / FractionOne}
}
