package faults

// SlowClose delays the close of a connection.
const SlowClose Kind = "slow_close"

func init() { register(slowClose{}) }

type slowClose struct{}

func (slowClose) Spec() Spec {
	return Spec{Kind: SlowClose, Target: TargetProxy, Directional: true,
		Doc:      "delay closing the connection",
		Synonyms: []string{"slow-close"},
		Attrs: []Attr{
			// A delay of 0 would do nothing.
			{Name: "delay", Unit: Millis, Min: 1, Max: MaxAttrMillis, Required: true, Example: "300ms"},
		}}
}

// OnProxy implements ProxyKind: Toxiproxy's slow_close toxic.
func (slowClose) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "slow_close", Attributes: attrs}
}
