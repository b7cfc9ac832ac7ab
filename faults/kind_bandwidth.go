package faults

// Bandwidth caps throughput at rate KB/s per connection.
const Bandwidth Kind = "bandwidth"

// MaxBandwidthKBps is the highest bandwidth rate, 10 GB/s: Toxiproxy
// multiplies it by 100 and slices with the product.
const MaxBandwidthKBps = 10_000_000

func init() { register(bandwidth{}) }

type bandwidth struct{}

func (bandwidth) Spec() Spec {
	return Spec{Kind: Bandwidth, Target: TargetProxy, Directional: true,
		Doc:      "cap throughput per connection",
		Synonyms: []string{"throttle", "throughput", "rate", "bw"},
		Attrs: []Attr{
			{Name: "rate", Unit: KBps, Doc: "kilobytes per second", Min: 1, Max: MaxBandwidthKBps, Required: true, Example: "100"},
		}}
}

// OnProxy implements ProxyKind: Toxiproxy's bandwidth toxic.
func (bandwidth) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "bandwidth", Attributes: attrs}
}
