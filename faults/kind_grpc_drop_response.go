package faults

// GRPCDropResponse forwards a share of a link's calls and never answers
// them: the server executes the call, the client's deadline runs out.
const GRPCDropResponse Kind = "grpc-drop-response"

func init() { register(grpcDropResponse{}) }

type grpcDropResponse struct{}

func (grpcDropResponse) Spec() Spec {
	return Spec{Kind: GRPCDropResponse, Target: TargetGRPC,
		Doc:      "forward calls, let the server execute them, never answer (the client's deadline runs out)",
		Synonyms: []string{"lost-response", "drop-response", "lose-response"},
		Attrs:    []Attr{methodAttr, probabilityAttr, attemptsAttr}}
}

// OnCall implements CallKind.
func (grpcDropResponse) OnCall(f Fault) CallAction { return callAction(f) }
