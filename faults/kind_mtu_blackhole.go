package faults

// MTUBlackhole silently drops the packets larger than an MTU.
const MTUBlackhole Kind = "mtu-blackhole"

func init() { register(mtuBlackhole{}) }

type mtuBlackhole struct{}

func (mtuBlackhole) Spec() Spec {
	return Spec{Kind: MTUBlackhole, Target: TargetProxy, Directional: true,
		Doc:      "drop every packet larger than mtu bytes, silently (a path MTU black hole: small messages pass, large ones hang)",
		Synonyms: []string{"mtu", "pmtu", "path-mtu"},
		Attrs: []Attr{
			{Name: "mtu", Unit: Bytes, Min: 68, Max: 1500, Required: true, Example: "1000", Doc: "largest packet that passes, IP header included (the segment's link MTU is 1500)"},
		}}
}

// OnPacket implements PacketKind.
func (mtuBlackhole) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{MTU: attrs["mtu"]}
}
