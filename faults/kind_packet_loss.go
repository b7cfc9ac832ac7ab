package faults

// PacketLoss drops packets, independently or in bursts.
const PacketLoss Kind = "packet-loss"

func init() { register(packetLoss{}) }

type packetLoss struct{}

func (packetLoss) Spec() Spec {
	return Spec{Kind: PacketLoss, Target: TargetProxy, Directional: true,
		Doc:      "drop packets of the link (TCP retransmits them: timeouts, stalls)",
		Synonyms: []string{"loss", "drop", "packet-drop", "lossy"},
		Attrs: []Attr{
			probability("long-run share of packets lost"),
			{Name: "correlation", Unit: PerMillion, Max: 999_999, Doc: "probability that a packet is lost when the one before it was (Gilbert model; bursts of mean length 1/(1-correlation)); 0: independent losses"},
		}}
}

// OnPacket implements PacketKind.
func (packetLoss) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{LossPPM: attrs["probability"], LossCorrelationPPM: attrs["correlation"]}
}
