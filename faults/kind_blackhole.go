package faults

// Blackhole accepts connections and never answers.
const Blackhole Kind = "blackhole"

func init() { register(blackhole{}) }

type blackhole struct{}

func (blackhole) Spec() Spec {
	return Spec{Kind: Blackhole, Target: TargetProxy, Directional: true,
		Doc:      "accept and never answer",
		Synonyms: []string{"drop", "hang", "black-hole", "black_hole"},
	}
}

// OnProxy implements ProxyKind: Toxiproxy's timeout toxic with timeout 0,
// which holds the data and never closes.
func (blackhole) OnProxy(map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "timeout", Attributes: map[string]int64{"timeout": 0}}
}
