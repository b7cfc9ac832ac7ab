package runner

import (
	"slices"

	"github.com/fallacies/fallacies/experiments/definition"
)

// selectVariants keeps the variants named in OnlyVariants, all of them
// when it is empty. A --target run ignores the selection (it has no
// variants of its own), as long as the experiment has a selected variant.
func (o Options) selectVariants(vs []definition.Variant) []definition.Variant {
	if len(o.OnlyVariants) == 0 {
		return vs
	}
	var out []definition.Variant
	for _, v := range vs {
		if slices.Contains(o.OnlyVariants, v.Name) {
			out = append(out, v)
		}
	}
	return out
}

// rate applies RateFactor to an arrival rate.
func (o Options) rate(r float64) float64 {
	if o.RateFactor <= 0 {
		return r
	}
	return r * o.RateFactor
}
