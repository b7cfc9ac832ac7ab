package faults

import "time"

// GRPCDelay holds the responses of a share of a link's calls for latency
// ± jitter, drawn once per call.
const GRPCDelay Kind = "grpc-delay"

func init() { register(grpcDelay{}) }

type grpcDelay struct{}

func (grpcDelay) Spec() Spec {
	return Spec{Kind: GRPCDelay, Target: TargetGRPC,
		Doc:      "hold calls for latency ± jitter, drawn once per call",
		Synonyms: []string{"call-delay", "slow-call"},
		Attrs: []Attr{methodAttr, probabilityAttr,
			{Name: "latency", Unit: Millis, Doc: "added delay per call", Max: MaxAttrMillis, Required: true, Example: "300ms"},
			{Name: "jitter", Unit: Millis, Doc: "± uniform spread, drawn once per call", Max: MaxAttrMillis},
		}}
}

// OnCall implements CallKind.
func (grpcDelay) OnCall(f Fault) CallAction {
	a := callAction(f)
	a.Delay = time.Duration(f.Attrs["latency"]) * time.Millisecond
	a.Jitter = time.Duration(f.Attrs["jitter"]) * time.Millisecond
	return a
}
