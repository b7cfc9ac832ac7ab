package faults

// NATSDropAck drops a share of a consumer's acknowledgements of the
// JetStream deliveries of a subject: the server never hears of them and
// redelivers after its ack wait.
const NATSDropAck Kind = "nats-drop-ack"

func init() { register(natsDropAck{}) }

type natsDropAck struct{}

func (natsDropAck) Spec() Spec {
	return Spec{Kind: NATSDropAck, Target: TargetNATS,
		Doc:      "drop a consumer's acks of a subject's JetStream deliveries (redelivered after the ack wait)",
		Synonyms: []string{"drop-ack", "lose-ack", "lost-ack", "ack-loss"},
		Attrs:    []Attr{subjectAttr, messageProbabilityAttr}}
}

// OnMessage implements MessageKind: the acks go upstream, from the
// consumer to the server.
func (natsDropAck) OnMessage(f Fault) MessageAction {
	a := messageAction(f)
	a.Direction = Upstream
	return a
}
