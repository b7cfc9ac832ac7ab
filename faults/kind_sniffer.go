package faults

// Sniffer records the bytes relayed, to show what a listener on the path
// reads.
const Sniffer Kind = "sniffer"

func init() { register(sniffer{}) }

type sniffer struct{}

func (sniffer) Spec() Spec {
	return Spec{Kind: Sniffer, Target: TargetProxy, Directional: true,
		Doc: "record the bytes relayed (custom toxic of the embedded Toxiproxy)",
	}
}

// OnProxy implements ProxyKind: the sniffer toxic of faults/toxiproxy's
// embedded server, whose recording the injector keeps (Sniffed).
func (sniffer) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "sniffer", Attributes: attrs}
}
