package faults

// Partition disables the proxy: new connections refused, open ones cut.
const Partition Kind = "partition"

func init() { register(partition{}) }

type partition struct{}

func (partition) Spec() Spec {
	return Spec{Kind: Partition, Target: TargetProxy,
		Doc:      "disable the proxy: new connections refused, open ones cut",
		Synonyms: []string{"disconnect", "cut", "split", "down", "disable"},
	}
}

// OnProxy implements ProxyKind: no toxic, the proxy disabled.
func (partition) OnProxy(map[string]int64) ProxyAction { return ProxyAction{Disable: true} }
