package faults

// ResetPeer resets connections (TCP RST) after timeout.
const ResetPeer Kind = "reset_peer"

func init() { register(resetPeer{}) }

type resetPeer struct{}

func (resetPeer) Spec() Spec {
	return Spec{Kind: ResetPeer, Target: TargetProxy, Directional: true,
		Doc:      "reset each connection (TCP RST to both peers) timeout after its first bytes",
		Synonyms: []string{"reset", "rst", "reset-peer"},
		Attrs: []Attr{
			{Name: "timeout", Unit: Millis, Max: MaxAttrMillis, Required: true, Example: "300ms",
				Doc: "from a connection's first bytes on the fault's stream to its reset"},
		}}
}

// OnProxy implements ProxyKind: the reset_peer_rst toxic of faults/toxiproxy's
// embedded server, not Toxiproxy's own reset_peer. Each connection of the
// fault's stream (open before the fault or not; toxicity draws which) is
// aborted with a TCP RST toward both peers timeout after its first bytes
// while the fault is on; the bytes pass meanwhile; removing the fault stops
// the timers at once. Toxiproxy's own toxic reset with FIN the connections
// open before it came, and did not hear its removal during its timeout.
func (resetPeer) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "reset_peer_rst", Attributes: attrs}
}
