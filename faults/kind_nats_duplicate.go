package faults

// NATSDuplicate sends a share of a link's messages of a subject twice, the
// copy right behind the message.
const NATSDuplicate Kind = "nats-duplicate"

func init() { register(natsDuplicate{}) }

type natsDuplicate struct{}

func (natsDuplicate) Spec() Spec {
	return Spec{Kind: NATSDuplicate, Target: TargetNATS, Directional: true,
		Doc:      "send messages of a subject twice (deliveries downstream, publishes upstream)",
		Synonyms: []string{"duplicate", "dup", "redeliver", "twice"},
		Attrs:    []Attr{subjectAttr, messageProbabilityAttr}}
}

// OnMessage implements MessageKind.
func (natsDuplicate) OnMessage(f Fault) MessageAction { return messageAction(f) }
