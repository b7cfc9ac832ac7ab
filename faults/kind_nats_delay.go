package faults

import "time"

// NATSDelay holds a share of a link's messages of a subject for latency ±
// jitter, drawn per message; the messages it holds keep their order.
const NATSDelay Kind = "nats-delay"

func init() { register(natsDelay{}) }

type natsDelay struct{}

func (natsDelay) Spec() Spec {
	return Spec{Kind: NATSDelay, Target: TargetNATS, Directional: true,
		Doc:      "hold messages of a subject for latency ± jitter, drawn per message, in order",
		Synonyms: []string{"message-delay", "slow-message", "delay-message"},
		Attrs: []Attr{subjectAttr, messageProbabilityAttr,
			{Name: "latency", Unit: Millis, Doc: "added delay per message", Max: MaxAttrMillis, Required: true, Example: "200ms"},
			{Name: "jitter", Unit: Millis, Doc: "± uniform spread, drawn per message (a message never overtakes one held before it)", Max: MaxAttrMillis},
		}}
}

// OnMessage implements MessageKind.
func (natsDelay) OnMessage(f Fault) MessageAction {
	a := messageAction(f)
	a.Delay = time.Duration(f.Attrs["latency"]) * time.Millisecond
	a.Jitter = time.Duration(f.Attrs["jitter"]) * time.Millisecond
	return a
}
