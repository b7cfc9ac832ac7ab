package faults

// Latency delays each chunk of data by latency ± jitter.
const Latency Kind = "latency"

func init() { register(latency{}) }

type latency struct{}

func (latency) Spec() Spec {
	return Spec{Kind: Latency, Target: TargetProxy, Directional: true,
		Doc:      "delay data by latency ± jitter",
		Synonyms: []string{"delay", "lag", "slow", "slowness", "jitter"},
		Attrs: []Attr{
			{Name: "latency", Unit: Millis, Doc: "added delay", Max: MaxAttrMillis, Required: true, Example: "300ms"},
			{Name: "jitter", Unit: Millis, Doc: "± random spread", Max: MaxAttrMillis},
		}}
}

// OnProxy implements ProxyKind: Toxiproxy's latency toxic.
func (latency) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "latency", Attributes: attrs}
}

// Inert is a fault that is on and changes nothing: a zero delay of the
// latency kind, its one required attribute written as in an experiment
// file. A fault-free control run puts it where a scenario's faults were,
// so that the control has the scenario's phases (before, during, after)
// and its proxies the same toxic added and removed.
func Inert() (kind Kind, attr, value string) { return Latency, "latency", "0s" }
