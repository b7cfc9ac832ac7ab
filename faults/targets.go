package faults

import (
	"fmt"
	"slices"
	"strings"
)

// TargetKind says what a fault kind applies to.
type TargetKind string

// Target kinds.
const (
	TargetProxy   TargetKind = "proxy"   // a Toxiproxy proxy by name
	TargetProcess TargetKind = "process" // a service process by name
	// TargetContainer is a container of the compose topology by compose
	// service name (see Containers).
	TargetContainer TargetKind = "container"
)

// target is what the loader and the schema know of a target kind.
type target struct {
	rank  int             // its kinds' place in Specs
	names func() []string // the names a fault may target
	doc   string          // the target of such a fault, for the schema
	// unknown says what a name not in names is not, and what is.
	unknown func(k Kind, name string, names []string) (msg, hint string)
	// topology says why a topology cannot have this target, or "".
	topology func(k Kind, topology string) (msg, hint string)
}

var targets = map[TargetKind]target{
	TargetProxy: {
		rank:  0,
		names: Proxies,
		doc:   "The Toxiproxy proxy the fault is put on.",
		unknown: func(_ Kind, name string, names []string) (string, string) {
			return fmt.Sprintf("%q is not a proxy", name), "proxies: " + strings.Join(names, ", ")
		},
		// Every topology has every proxy, and a packet segment runs on
		// the layer host beside them (faults/toxiproxy), compose's too.
		topology: anyTopology,
	},
	TargetProcess: {
		rank:  1,
		names: Services,
		doc:   "The service whose process the fault hits.",
		unknown: func(k Kind, name string, names []string) (string, string) {
			return fmt.Sprintf("%q is not a service", name), "a " + string(k) + " fault targets a service: " + strings.Join(names, ", ")
		},
		topology: func(k Kind, topology string) (string, string) {
			if topology != "embedded" {
				return "", ""
			}
			return fmt.Sprintf("a %s fault needs a service process, which the embedded topology does not have", k), "add topology: processes (or compose)"
		},
	},
	TargetContainer: {
		rank:  2,
		names: Containers,
		doc:   "The compose service whose container the fault hits (topology: compose).",
		unknown: func(k Kind, name string, names []string) (string, string) {
			return fmt.Sprintf("%q is not a compose service", name), "a " + string(k) + " fault targets a container: " + strings.Join(names, ", ")
		},
		topology: func(k Kind, topology string) (string, string) {
			if topology == "compose" {
				return "", ""
			}
			return fmt.Sprintf("a %s fault needs a container, which only the compose topology has", k), "add topology: compose"
		},
	},
}

// anyTopology is the topology check of a target every topology has.
func anyTopology(Kind, string) (string, string) { return "", "" }

// Names returns the names a fault of this target kind may target.
func (t TargetKind) Names() []string { return targets[t].names() }

// Doc describes the target of a fault of this target kind, in one line.
func (t TargetKind) Doc() string { return targets[t].doc }

// CheckName says why name is no target of a kind-k fault (a message and a
// hint listing the targets), or returns "" when it is one.
func (t TargetKind) CheckName(k Kind, name string) (msg, hint string) {
	names := t.Names()
	if slices.Contains(names, name) {
		return "", ""
	}
	return targets[t].unknown(k, name, names)
}

// CheckTopology says why a topology (embedded, processes, compose) has no
// target for a kind-k fault, with a hint, or returns "" when it has.
func (t TargetKind) CheckTopology(k Kind, topology string) (msg, hint string) {
	return targets[t].topology(k, topology)
}

// Proxy names, stable and documented: experiment files target them.
const (
	ProxyUser             = "user"              // order → user (gRPC)
	ProxyUserHTTP         = "user-http"         // order → user (JSON over HTTP)
	ProxyPayment          = "payment"           // order → payment
	ProxyNATSOrder        = "nats-order"        // order → NATS
	ProxyNATSNotification = "nats-notification" // notification → NATS
	ProxyNATSLedger       = "nats-ledger"       // ledger → NATS
	// Proxies that exist only in some configurations.
	ProxyPayment1    = "payment-1"    // order → payment replica 1 (payment.replicas >= 2)
	ProxyPayment2    = "payment-2"    // order → payment replica 2 (payment.replicas >= 3)
	ProxyNATSPayment = "nats-payment" // payment replicas → NATS (payment.idempotency: shared)
)

// Proxies lists every documented proxy name.
func Proxies() []string {
	return []string{ProxyUser, ProxyUserHTTP, ProxyPayment, ProxyNATSOrder, ProxyNATSNotification, ProxyNATSLedger,
		ProxyPayment1, ProxyPayment2, ProxyNATSPayment}
}

// Services lists the services a process fault can target.
func Services() []string {
	return []string{"order", "user", "payment", "notification", "ledger"}
}

// Containers lists the compose services a container fault can target: the
// services and the infrastructure (toxiproxy, nats).
func Containers() []string {
	return append(Services(), "toxiproxy", "nats")
}
