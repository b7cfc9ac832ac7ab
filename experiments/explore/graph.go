package explore

import (
	"cmp"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/internal/semconv"
	"github.com/fallacies/fallacies/tracing"
)

// Graph is what a fault-free baseline showed the system depends on: every
// link (a proxy, the unit a fault targets) with the gRPC methods called
// and the NATS subjects published or consumed across it, and how often
// each lay in the lineage of a successful order.
type Graph struct {
	Orders    int    `json:"orders"`    // order traces captured
	Successes int    `json:"successes"` // of them answered OK
	Edges     []Edge `json:"edges"`     // every proxy of the topology, used or not, by name
}

// Edge is one link of the graph: a proxy, the caller and callee it joins,
// and what crossed it.
type Edge struct {
	Name string `json:"name"` // the proxy
	From string `json:"from"` // the calling service ("" when nothing crossed it)
	To   string `json:"to"`
	// Lineage is the share of successful orders whose lineage (the
	// order's trace and the consumer spans linked to its publishes)
	// crossed the edge; Successes counts them.
	Lineage   float64 `json:"lineage"`
	Successes int     `json:"successes"`
	Calls     []Call  `json:"calls"`
	// P99 is the 99th percentile of the spans on the edge (client calls,
	// publishes, deliveries), in the baseline.
	P99 time.Duration `json:"p99_ns"`
}

// Call is one method or subject on an edge.
type Call struct {
	Name  string `json:"name"`  // full gRPC method (user.v1.UserService/GetUser) or NATS subject
	Type  string `json:"type"`  // grpc, publish or consume
	Count int    `json:"count"` // spans of it in the baseline
	// InSuccess counts the successful orders whose lineage holds it.
	InSuccess int `json:"in_success"`
}

// Edge returns the named edge.
func (g *Graph) Edge(name string) (Edge, bool) {
	i := slices.IndexFunc(g.Edges, func(e Edge) bool { return e.Name == name })
	if i < 0 {
		return Edge{}, false
	}
	return g.Edges[i], true
}

// Used lists the edges some successful order depended on.
func (g *Graph) Used() []Edge {
	var out []Edge
	for _, e := range g.Edges {
		if e.Successes > 0 {
			out = append(out, e)
		}
	}
	return out
}

// hop is one span placed on an edge.
type hop struct {
	edge, call, typ, from, to string
}

// BuildGraph builds the graph from a baseline's spans and the proxies of
// its topology (name → listen address). A client span is placed on the
// proxy its server address is (else on its fallacies.link attribute); a
// publish on the NATS proxy of its service, a delivery on the NATS proxy
// of the consumer (nats-<service>, the topology's naming).
func BuildGraph(spans []tracing.Span, proxies map[string]string) *Graph {
	byAddr := map[string]string{}
	for name, addr := range proxies {
		byAddr[addr] = name
	}
	place := func(s tracing.Span) (hop, bool) {
		switch s.Kind {
		case tracing.KindClient:
			method := s.Attrs["rpc.method"]
			if svc := s.Attrs["rpc.service"]; svc != "" && method != "" && !strings.Contains(method, "/") {
				method = svc + "/" + method
			}
			if method == "" && strings.Contains(s.Name, "/") {
				method = s.Name
			}
			edge := ""
			if addr := s.Attrs["server.address"]; addr != "" {
				edge = byAddr[net.JoinHostPort(addr, s.Attrs["server.port"])]
			}
			if edge == "" {
				edge = s.Attrs[semconv.Link]
			}
			if edge == "" || method == "" {
				return hop{}, false
			}
			return hop{edge: edge, call: method, typ: "grpc", from: s.Service, to: tracing.Callee(s)}, true
		case tracing.KindProducer:
			return hop{edge: "nats-" + s.Service, call: subject(s), typ: "publish", from: s.Service, to: "nats"}, true
		case tracing.KindConsumer:
			return hop{edge: "nats-" + s.Service, call: subject(s), typ: "consume", from: "nats", to: s.Service}, true
		}
		return hop{}, false
	}

	edges := map[string]*Edge{}
	for name := range proxies {
		edges[name] = &Edge{Name: name}
	}
	edgeOf := func(name string) *Edge {
		e := edges[name]
		if e == nil {
			e = &Edge{Name: name}
			edges[name] = e
		}
		return e
	}
	durations := map[string][]time.Duration{}
	callIndex := map[[3]string]int{} // edge, call, type → index in its Calls
	count := func(h hop, d time.Duration) {
		e := edgeOf(h.edge)
		if e.From == "" {
			e.From, e.To = h.from, h.to
		}
		k := [3]string{h.edge, h.call, h.typ}
		i, ok := callIndex[k]
		if !ok {
			i = len(e.Calls)
			callIndex[k] = i
			e.Calls = append(e.Calls, Call{Name: h.call, Type: h.typ})
		}
		e.Calls[i].Count++
		durations[h.edge] = append(durations[h.edge], d)
	}
	consumersOf := map[string][]tracing.Span{} // producer span id → deliveries linked to it
	for _, s := range spans {
		if h, ok := place(s); ok {
			count(h, s.Duration())
		}
		if s.Kind == tracing.KindConsumer {
			for _, l := range s.Links {
				consumersOf[l.SpanID] = append(consumersOf[l.SpanID], s)
			}
		}
	}

	g := &Graph{}
	for _, t := range tracing.OrderTraces(tracing.Group(spans)) {
		g.Orders++
		if t.Root.Error {
			continue
		}
		g.Successes++
		seenEdge, seenCall := map[string]bool{}, map[[3]string]bool{}
		var lineage []tracing.Span
		for _, s := range t.Spans {
			lineage = append(lineage, s)
			if s.Kind == tracing.KindProducer {
				lineage = append(lineage, consumersOf[s.SpanID]...)
			}
		}
		for _, s := range lineage {
			h, ok := place(s)
			if !ok {
				continue
			}
			if !seenEdge[h.edge] {
				seenEdge[h.edge] = true
				edgeOf(h.edge).Successes++
			}
			k := [3]string{h.edge, h.call, h.typ}
			if !seenCall[k] {
				seenCall[k] = true
				if i, ok := callIndex[k]; ok {
					edges[h.edge].Calls[i].InSuccess++
				}
			}
		}
	}
	for _, e := range edges {
		if g.Successes > 0 {
			e.Lineage = float64(e.Successes) / float64(g.Successes)
		}
		e.P99 = percentile(durations[e.Name], 0.99)
		slices.SortFunc(e.Calls, func(a, b Call) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name)) })
		g.Edges = append(g.Edges, *e)
	}
	slices.SortFunc(g.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(b.Lineage, a.Lineage), strings.Compare(a.Name, b.Name))
	})
	return g
}

// subject is the NATS subject of a publish or delivery span: its
// messaging.destination.name attribute, else its name's first word.
func subject(s tracing.Span) string {
	if d := s.Attrs["messaging.destination.name"]; d != "" {
		return d
	}
	name, _, _ := strings.Cut(s.Name, " ")
	return name
}

// percentile returns the q-quantile of ds (nearest rank); 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
