package faults

// PacketDuplicate delivers some packets twice.
const PacketDuplicate Kind = "packet-duplicate"

func init() { register(packetDuplicate{}) }

type packetDuplicate struct{}

func (packetDuplicate) Spec() Spec {
	return Spec{Kind: PacketDuplicate, Target: TargetProxy, Directional: true,
		Doc:      "deliver packets twice",
		Synonyms: []string{"duplicate", "dup"},
		Attrs:    []Attr{probability("share of packets delivered twice")},
	}
}

// OnPacket implements PacketKind.
func (packetDuplicate) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{DuplicatePPM: attrs["probability"]}
}
