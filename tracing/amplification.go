package tracing

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/internal/semconv"
)

// AttrOrderID is the attribute order sets on its PlaceOrder server span:
// the order the request places. A client that retries PlaceOrder sends the
// same order id again, and every retry is a trace of its own.
const AttrOrderID = semconv.OrderID

// ClientRequest is one request of a client as the services saw it: every
// trace whose root carries the same order id (the first attempt and every
// client-side retry), in order of their start.
type ClientRequest struct {
	OrderID string
	Traces  []Trace
}

// Start is when the request's first trace began.
func (r ClientRequest) Start() time.Time { return r.Traces[0].Root.Start }

// Attempts counts the server spans of service across every trace of the
// request: the attempts that reached it, however many layers retried.
func (r ClientRequest) Attempts(service string) int {
	n := 0
	for _, t := range r.Traces {
		n += RetryAmplification(t, service)
	}
	return n
}

// ClientRequests groups order traces into client requests by the order id
// on their roots, ordered by their first trace's start. A trace whose root
// has no order id is a request of its own (keyed by its trace id).
func ClientRequests(traces []Trace) []ClientRequest {
	idx := map[string]int{}
	var out []ClientRequest
	for _, t := range traces {
		id := t.Root.Attrs[AttrOrderID]
		if id == "" {
			id = "trace:" + t.ID
		}
		i, ok := idx[id]
		if !ok {
			i = len(out)
			idx[id] = i
			out = append(out, ClientRequest{OrderID: id})
		}
		out[i].Traces = append(out[i].Traces, t)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Traces, func(a, b Trace) int { return a.Root.Start.Compare(b.Root.Start) })
	}
	slices.SortStableFunc(out, func(a, b ClientRequest) int { return a.Start().Compare(b.Start()) })
	return out
}

// ClientAmplificationSummary is the distribution over client requests of
// the attempts that reached one service per request.
type ClientAmplificationSummary struct {
	P50  int     `json:"p50"`
	P99  int     `json:"p99"`
	Max  int     `json:"max"`
	Mean float64 `json:"mean"`
	// Requests is how many client requests the figures are over.
	Requests int `json:"requests"`
}

// ClientAmplification returns, for every service with a server span in
// any of the requests, the attempts that reached it per client request:
// the product of every layer's retries (the client's, order's own), where
// trace.retry_amplification sees only one trace, that is one client
// attempt, at a time.
func ClientAmplification(reqs []ClientRequest) map[string]ClientAmplificationSummary {
	services := map[string]bool{}
	for _, r := range reqs {
		for _, t := range r.Traces {
			for _, s := range t.Spans {
				if s.Kind == KindServer {
					services[s.Service] = true
				}
			}
		}
	}
	out := make(map[string]ClientAmplificationSummary, len(services))
	if len(reqs) == 0 {
		return out
	}
	for svc := range services {
		counts := make([]int, len(reqs))
		sum := 0
		for i, r := range reqs {
			counts[i] = r.Attempts(svc)
			sum += counts[i]
		}
		slices.Sort(counts)
		out[svc] = ClientAmplificationSummary{
			P50:      nearestRank(counts, 0.50),
			P99:      nearestRank(counts, 0.99),
			Max:      counts[len(counts)-1],
			Mean:     float64(sum) / float64(len(reqs)),
			Requests: len(reqs),
		}
	}
	return out
}
