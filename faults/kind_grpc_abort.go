package faults

// GRPCAbort forwards a share of a link's calls and resets their stream
// (RST_STREAM) in the middle of the response; the connection and its other
// calls go on.
const GRPCAbort Kind = "grpc-abort"

func init() { register(grpcAbort{}) }

type grpcAbort struct{}

func (grpcAbort) Spec() Spec {
	return Spec{Kind: GRPCAbort, Target: TargetGRPC,
		Doc:      "forward calls and reset their stream in the middle of the response",
		Synonyms: []string{"abort", "reset-stream", "rst"},
		Attrs:    []Attr{methodAttr, probabilityAttr, attemptsAttr}}
}

// OnCall implements CallKind.
func (grpcAbort) OnCall(f Fault) CallAction { return callAction(f) }
