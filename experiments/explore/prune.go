package explore

import (
	"cmp"
	"fmt"
	"slices"
)

// pruner counts skipped scenarios by reason.
type pruner struct {
	byReason map[string]*Pruned
	order    []string
}

func (p *pruner) skip(reason, example string) {
	if p.byReason == nil {
		p.byReason = map[string]*Pruned{}
	}
	r := p.byReason[reason]
	if r == nil {
		r = &Pruned{Reason: reason}
		p.byReason[reason] = r
		p.order = append(p.order, reason)
	}
	r.Count++
	if len(r.Examples) < 3 {
		r.Examples = append(r.Examples, example)
	}
}

func (p *pruner) list() []Pruned {
	var out []Pruned
	for _, r := range p.order {
		out = append(out, *p.byReason[r])
	}
	return out
}

// Reasons a scenario is pruned.
const (
	reasonOnly      = "edge not in --only"
	reasonKinds     = "kind not in --kinds"
	reasonNoLineage = "no successful order crossed the edge in the baseline: nothing depends on it"
	reasonSingle    = "one of its faults fails alone: the pair's failure would be that single's"
	reasonUnjudged  = "one of its faults was not judged alone (budget or steady state)"
	reasonSameEdge  = "both faults on one edge: they take away no alternative from each other"
	reasonSameClass = "an equivalent fault of the same edge (the same effect alone: the same alternative used) is paired instead"
	reasonNoEffect  = "neither fault changed anything alone (no error, no slowdown, no mechanism acted): no alternative was used that the other could take away"
)

// pruneSingles keeps the candidates on edges some successful order
// depended on (and in --only), ordered so that every edge gets its first
// faults early: round robin over the edges by lineage, each edge's
// faults aimed at a method or subject first, then the others, each group
// in an order drawn from the seed.
func (s *search) pruneSingles(all []Candidate) ([]Candidate, []Pruned) {
	var p pruner
	byEdge := map[string][]Candidate{}
	for _, c := range all {
		e, _ := s.res.Graph.Edge(c.Edge)
		switch {
		case len(s.o.Only) > 0 && !slices.Contains(s.o.Only, c.Edge):
			p.skip(reasonOnly, c.ID)
		case len(s.o.Kinds) > 0 && !slices.Contains(s.o.Kinds, c.Kind):
			p.skip(reasonKinds, c.ID)
		case e.Successes == 0:
			p.skip(reasonNoLineage, c.ID)
		default:
			byEdge[c.Edge] = append(byEdge[c.Edge], c)
		}
	}
	var edges []Edge
	for _, e := range s.res.Graph.Edges {
		if cs := byEdge[e.Name]; len(cs) > 0 {
			s.rng.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			// The faults aimed at a method or subject of the lineage first
			// (Filibuster's way), then the connection-level ones.
			slices.SortStableFunc(cs, func(a, b Candidate) int {
				return cmp.Compare(boolInt(b.Targeted), boolInt(a.Targeted))
			})
			edges = append(edges, e)
		}
	}
	s.rng.Shuffle(len(edges), func(i, j int) { edges[i], edges[j] = edges[j], edges[i] })
	slices.SortStableFunc(edges, func(a, b Edge) int { return cmp.Compare(b.Lineage, a.Lineage) })
	var out []Candidate
	for round := 0; len(out) < len(all)-countOf(p); round++ {
		for _, e := range edges {
			if cs := byEdge[e.Name]; round < len(cs) {
				out = append(out, cs[round])
			}
		}
	}
	return out, p.list()
}

func countOf(p pruner) int {
	n := 0
	for _, r := range p.byReason {
		n += r.Count
	}
	return n
}

// prunePairs plans the pairs, LDFI's way: only faults each tolerated
// alone, on two different edges, at least one of which made the system
// use an alternative (a mechanism acted, or orders slowed or failed
// during the window): the pair is the chance to take that alternative
// away. Of the faults of one edge with the same effect (the same
// alternative used), one stands for all. Those where both acted come
// first.
func (s *search) prunePairs(all, singles, tolerated []Candidate) ([]Scenario, []Pruned) {
	var p pruner
	single := map[string]bool{}
	for _, c := range singles {
		single[c.ID] = true
	}
	outcome, acted := map[string]string{}, map[string]bool{}
	equivalent := map[string]string{} // a fault → the fault of its edge with the same effect that represents it
	first := map[[2]string]string{}   // edge, effect class → its first fault
	for _, r := range s.res.Scenarios {
		if len(r.Faults) == 1 {
			outcome[r.ID] = r.Outcome
			acted[r.ID] = r.Effect != ""
			if r.Outcome == Tolerated && r.EffectClass != "" {
				k := [2]string{r.Faults[0].Edge, r.EffectClass}
				if rep, ok := first[k]; ok {
					equivalent[r.ID] = rep
				} else {
					first[k] = r.ID
				}
			}
		}
	}
	var both, one []Scenario
	for i, a := range all {
		for _, b := range all[i+1:] {
			ex := a.ID + " + " + b.ID
			switch {
			case !single[a.ID] || !single[b.ID]:
				if len(s.o.Only) > 0 && (!slices.Contains(s.o.Only, a.Edge) || !slices.Contains(s.o.Only, b.Edge)) {
					p.skip(reasonOnly, ex)
				} else if len(s.o.Kinds) > 0 && (!slices.Contains(s.o.Kinds, a.Kind) || !slices.Contains(s.o.Kinds, b.Kind)) {
					p.skip(reasonKinds, ex)
				} else {
					p.skip(reasonNoLineage, ex)
				}
			case outcome[a.ID] == Failed || outcome[b.ID] == Failed:
				p.skip(reasonSingle, ex)
			case outcome[a.ID] != Tolerated || outcome[b.ID] != Tolerated:
				p.skip(reasonUnjudged, ex)
			case a.Edge == b.Edge:
				p.skip(reasonSameEdge, ex)
			case equivalent[a.ID] != "" || equivalent[b.ID] != "":
				p.skip(reasonSameClass, ex)
			case !acted[a.ID] && !acted[b.ID]:
				p.skip(reasonNoEffect, ex)
			case acted[a.ID] && acted[b.ID]:
				both = append(both, pairOf(a, b))
			default:
				one = append(one, pairOf(a, b))
			}
		}
	}
	s.rng.Shuffle(len(both), func(i, j int) { both[i], both[j] = both[j], both[i] })
	s.rng.Shuffle(len(one), func(i, j int) { one[i], one[j] = one[j], one[i] })
	_ = tolerated
	return append(both, one...), p.list()
}

// pairOf is two faults on at once; both windows are the longer one.
func pairOf(a, b Candidate) Scenario {
	w := max(a.Window, b.Window)
	a.Window, b.Window = w, w
	return Scenario{Faults: []Candidate{a, b}}
}

var _ = fmt.Sprint

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
