package faults

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// CallKind is the optional capability of a call-level kind: faults/toxiproxy
// applies it through the gRPC layer (faults/grpclayer) it puts between the
// fault's proxy and the service, which sees each call where a toxic sees
// only the bytes of a connection every call shares.
type CallKind interface {
	// OnCall says what a fault of the kind does to the calls of its link;
	// its attributes are checked and complete.
	OnCall(f Fault) CallAction
}

// CallAction is what a call-level fault does to the calls of its link.
type CallAction struct {
	Method      string        // full method name, service/method; "" for every method
	Probability float64       // share of the calls (with Attempts: of the logical requests) it acts on, (0, 1]
	Code        uint32        // the gRPC status code a grpc-error answers with
	Message     string        // and its message
	Attempts    int           // act on only the first Attempts attempts of each logical request; 0: every attempt
	Delay       time.Duration // a grpc-delay holds each call this long, ± Jitter drawn once per call
	Jitter      time.Duration
}

// TargetGRPC is a gRPC link by the name of its proxy: a call-level fault's
// target.
const TargetGRPC TargetKind = "grpc-link"

// GRPCLinks lists the proxies that carry gRPC calls: the targets of a
// call-level fault.
func GRPCLinks() []string { return []string{ProxyUser, ProxyPayment, ProxyPayment1, ProxyPayment2} }

// GRPCCodes lists the gRPC status codes by number, as written in files.
func GRPCCodes() []string {
	return slices.Clone(grpcCodes)
}

var grpcCodes = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

func init() {
	targets[TargetGRPC] = target{
		rank:  3,
		names: GRPCLinks,
		doc:   "The gRPC link (by its proxy's name) whose calls the fault acts on.",
		unknown: func(k Kind, name string, names []string) (string, string) {
			return fmt.Sprintf("%q is not a gRPC link", name), "a " + string(k) + " fault targets a gRPC link: " + strings.Join(names, ", ")
		},
		// The gRPC layer runs where the proxies run (the layer host of
		// faults/toxiproxy): every topology has it.
		topology: anyTopology,
	}
}

// Attributes shared by the call-level kinds.
var (
	methodAttr = Attr{Name: "method", Unit: Text, Pattern: `^[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*$`, Example: "payment.v1.PaymentService/Charge",
		Doc: "full method name, service/method (payment.v1.PaymentService/Charge); every method when unset"}
	probabilityAttr = Attr{Name: "probability", Unit: Fraction, Default: FractionOne, Min: 1, Max: FractionOne,
		Doc: "share of the calls acted on (with attempts: of the logical requests), 0 to 1"}
	attemptsAttr = Attr{Name: "attempts", Unit: Count, Max: 100,
		Doc: "act on only the first N attempts of each logical request (keyed by the request message, which every retry resends); 0: every attempt"}
)

// callAction fills the attributes every call-level kind shares.
func callAction(f Fault) CallAction {
	return CallAction{Method: f.Text["method"], Probability: float64(f.Attrs["probability"]) / FractionOne,
		Attempts: int(f.Attrs["attempts"])}
}
