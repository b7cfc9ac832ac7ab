package faults

import "fmt"

// Slicer cuts data into small chunks with delays between them.
const Slicer Kind = "slicer"

// MaxSliceBytes bounds slicer sizes; Toxiproxy reads at most 32 KiB at a
// time, so a larger slice is no slice at all.
const MaxSliceBytes = 1 << 20

func init() { register(slicer{}) }

type slicer struct{}

func (slicer) Spec() Spec {
	return Spec{Kind: Slicer, Target: TargetProxy, Directional: true,
		Doc: "slice data into small chunks with a delay between them",
		Attrs: []Attr{
			{Name: "average_size", Unit: Bytes, Default: 64, Min: 1, Max: MaxSliceBytes},
			{Name: "size_variation", Unit: Bytes, Default: 32, Max: MaxSliceBytes - 1, Doc: "less than average_size"},
			{Name: "delay", Unit: Microseconds, Default: 1000, Max: MaxAttrMillis * 1000},
		}}
}

// Validate implements Validator: a size_variation not less than the
// average_size makes Toxiproxy cut slices of negative length and panic.
func (slicer) Validate(attrs map[string]int64) (string, error) {
	if attrs["size_variation"] >= attrs["average_size"] {
		return "size_variation", fmt.Errorf("size_variation %d is not less than average_size %d", attrs["size_variation"], attrs["average_size"])
	}
	return "", nil
}

// OnProxy implements ProxyKind: Toxiproxy's slicer toxic.
func (slicer) OnProxy(attrs map[string]int64) ProxyAction {
	return ProxyAction{Toxic: "slicer", Attributes: attrs}
}
