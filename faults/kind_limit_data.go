package faults

// LimitData closes the connection after bytes bytes.
const LimitData Kind = "limit_data"

// MaxLimitDataBytes bounds limit_data's bytes, 1 TiB.
const MaxLimitDataBytes = 1 << 40

func init() { register(limitData{}) }

type limitData struct{}

func (limitData) Spec() Spec {
	return Spec{Kind: LimitData, Target: TargetProxy, Directional: true,
		Doc:      "close the connection after bytes",
		Synonyms: []string{"limit-data", "limit"},
		Attrs:    []Attr{{Name: "bytes", Unit: Bytes, Max: MaxLimitDataBytes}},
	}
}

// OnProxy implements ProxyKind: Toxiproxy's limit_data toxic.
func (limitData) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "limit_data", Attributes: attrs}
}
