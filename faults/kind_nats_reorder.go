package faults

import "time"

// NATSReorder holds a share of a link's messages of a subject back for a
// while and releases them after the messages behind them.
const NATSReorder Kind = "nats-reorder"

func init() { register(natsReorder{}) }

type natsReorder struct{}

func (natsReorder) Spec() Spec {
	return Spec{Kind: NATSReorder, Target: TargetNATS, Directional: true,
		Doc:      "hold messages of a subject back and release them after later ones",
		Synonyms: []string{"reorder", "out-of-order", "shuffle"},
		Attrs: []Attr{subjectAttr,
			{Name: "probability", Unit: Fraction, Default: FractionOne / 10, Min: 1, Max: FractionOne,
				Doc: "share of the matching messages held back, 0 to 1, drawn per message"},
			{Name: "hold", Unit: Millis, Default: 100, Min: 1, Max: MaxAttrMillis,
				Doc: "how long a message is held back: the messages of its subject sent meanwhile overtake it"},
		}}
}

// OnMessage implements MessageKind.
func (natsReorder) OnMessage(f Fault) MessageAction {
	a := messageAction(f)
	a.Hold = time.Duration(f.Attrs["hold"]) * time.Millisecond
	return a
}
