package faults

// NATSDrop removes a share of a link's messages of a subject: a delivery
// the client never gets, or a publish the server never sees.
const NATSDrop Kind = "nats-drop"

func init() { register(natsDrop{}) }

type natsDrop struct{}

func (natsDrop) Spec() Spec {
	return Spec{Kind: NATSDrop, Target: TargetNATS, Directional: true,
		Doc:      "drop messages of a subject (deliveries downstream, publishes upstream)",
		Synonyms: []string{"drop", "lose", "message-loss", "drop-message"},
		Attrs:    []Attr{subjectAttr, messageProbabilityAttr}}
}

// OnMessage implements MessageKind.
func (natsDrop) OnMessage(f Fault) MessageAction { return messageAction(f) }
