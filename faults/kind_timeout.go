package faults

// Timeout stops all data and closes the connection after timeout (0:
// never).
const Timeout Kind = "timeout"

func init() { register(timeout{}) }

type timeout struct{}

func (timeout) Spec() Spec {
	return Spec{Kind: Timeout, Target: TargetProxy, Directional: true,
		Doc: "stop data, close the connection after timeout (0: never)",
		Attrs: []Attr{
			{Name: "timeout", Unit: Millis, Max: MaxAttrMillis, Required: true, Example: "300ms"},
		}}
}

// OnProxy implements ProxyKind: Toxiproxy's timeout toxic.
func (timeout) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "timeout", Attributes: attrs}
}
