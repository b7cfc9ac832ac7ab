package faults

// PacketReorder holds some packets back so that later ones overtake them.
const PacketReorder Kind = "packet-reorder"

func init() { register(packetReorder{}) }

type packetReorder struct{}

func (packetReorder) Spec() Spec {
	return Spec{Kind: PacketReorder, Target: TargetProxy, Directional: true,
		Doc:      "hold packets back so the next ones overtake them",
		Synonyms: []string{"reorder", "out-of-order"},
		Attrs: []Attr{
			probability("share of packets held back"),
			{Name: "delay", Unit: Millis, Default: 10, Min: 1, Max: MaxPacketDelayMillis, Doc: "how long a held packet is held"},
		}}
}

// OnPacket implements PacketKind.
func (packetReorder) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{ReorderPPM: attrs["probability"], ReorderDelay: millis(attrs["delay"])}
}
