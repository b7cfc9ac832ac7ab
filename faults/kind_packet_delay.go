package faults

// PacketDelay delays every packet, keeping their order.
const PacketDelay Kind = "packet-delay"

// MaxPacketDelayMillis bounds the packet delays, 10 s: the segment holds
// every delayed packet in memory.
const MaxPacketDelayMillis = 10_000

func init() { register(packetDelay{}) }

type packetDelay struct{}

func (packetDelay) Spec() Spec {
	return Spec{Kind: PacketDelay, Target: TargetProxy, Directional: true,
		Doc: "delay each packet by latency ± jitter, in order",
		Attrs: []Attr{
			{Name: "latency", Unit: Millis, Min: 1, Max: MaxPacketDelayMillis, Required: true, Example: "50ms", Doc: "added delay of each packet"},
			{Name: "jitter", Unit: Millis, Max: MaxPacketDelayMillis, Doc: "± uniform spread; packets still leave in order"},
		}}
}

// OnPacket implements PacketKind.
func (packetDelay) OnPacket(attrs map[string]int64) PacketAction {
	return PacketAction{Delay: millis(attrs["latency"]), Jitter: millis(attrs["jitter"])}
}
