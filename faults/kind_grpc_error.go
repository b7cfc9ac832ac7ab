package faults

import "slices"

// GRPCError answers a share of a link's calls with an error status instead
// of forwarding them: the server never sees them.
const GRPCError Kind = "grpc-error"

func init() { register(grpcError{}) }

type grpcError struct{}

func (grpcError) Spec() Spec {
	return Spec{Kind: GRPCError, Target: TargetGRPC,
		Doc:      "answer calls with an error status instead of forwarding them",
		Synonyms: []string{"error", "unavailable", "fail", "status"},
		Attrs: []Attr{methodAttr, probabilityAttr, attemptsAttr,
			{Name: "code", Unit: Text, Values: grpcCodes[1:], Required: true, Example: "UNAVAILABLE", Doc: "gRPC status code"},
			{Name: "message", Unit: Text, Doc: "status message; a default naming the fault when unset"},
		}}
}

// OnCall implements CallKind.
func (grpcError) OnCall(f Fault) CallAction {
	a := callAction(f)
	a.Code = uint32(slices.Index(grpcCodes, f.Text["code"]))
	a.Message = f.Text["message"]
	if a.Message == "" {
		a.Message = "injected by fault " + f.Name
	}
	return a
}
