package faults

// ResetPeer resets connections (TCP RST) after timeout.
const ResetPeer Kind = "reset_peer"

// MaxResetPeerMillis is the longest reset_peer timeout: Toxiproxy's
// reset_peer toxic sleeps without listening for its removal, so the
// removal of the fault waits for the timeout to pass.
const MaxResetPeerMillis = 5 * 1000

func init() { register(resetPeer{}) }

type resetPeer struct{}

func (resetPeer) Spec() Spec {
	return Spec{Kind: ResetPeer, Target: TargetProxy, Directional: true,
		Doc:      "reset the connection (TCP RST) after timeout",
		Synonyms: []string{"reset", "rst", "reset-peer"},
		Attrs: []Attr{
			{Name: "timeout", Unit: Millis, Max: MaxResetPeerMillis, Required: true, Example: "300ms"},
		}}
}

// OnProxy implements ProxyKind: Toxiproxy's reset_peer toxic.
func (resetPeer) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "reset_peer", Attributes: attrs}
}
