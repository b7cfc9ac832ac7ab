package faults

// PacketCorrupt flips a bit in the payload of some packets.
const PacketCorrupt Kind = "packet-corrupt"

func init() { register(packetCorrupt{}) }

type packetCorrupt struct{}

func (packetCorrupt) Spec() Spec {
	return Spec{Kind: PacketCorrupt, Target: TargetProxy, Directional: true,
		Doc:      "flip one bit of the TCP payload of packets carrying data",
		Synonyms: []string{"corrupt", "corruption", "bitflip"},
		Attrs: []Attr{
			probability("share of data packets corrupted"),
			{Name: "checksum", Unit: Choice, Choices: []string{"keep", "fix"}, Max: 1,
				Doc: "keep: the TCP checksum no longer matches and the receiver drops the packet (it acts as loss); fix: the checksum is recomputed and the flipped bit reaches the application"},
		}}
}

// OnPacket implements PacketKind.
func (packetCorrupt) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{CorruptPPM: attrs["probability"], FixChecksum: attrs["checksum"] == 1}
}
