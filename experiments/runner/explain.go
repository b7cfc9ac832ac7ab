package runner

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/spec"
)

// This file turns what the services counted into the report's
// explanations: which resilience mechanisms acted (so that a reader sees
// why one variant's figures differ from another's), and each consumer's
// progress second by second (so that "the asynchronous path does not
// inherit the latency" can be seen).
//
//	order GetStats, per link ──▶ fallbacks, retries, deadlines, breaker opens/rejections, bulkhead, hedges
//	consumer GetStats        ──▶ duplicates skipped
//	ORDERS stream timestamps ──┬─▶ published per second
//	consumer applications    ──┴─▶ applied per second, backlog in events and in age

// mechanisms lists the resilience mechanisms that acted during the run,
// by the services' own counters less what they counted before the load
// (before may be nil: a fresh system counted nothing), in
// report.MechanismKinds order then by place. A mechanism that never acted
// is left out.
func mechanisms(obs *observation, before *counters) []report.Mechanism {
	if obs == nil {
		return nil
	}
	if before == nil {
		before = &counters{}
	}
	var out []report.Mechanism
	add := func(kind, where string, n, was int64) {
		if n-was > 0 {
			out = append(out, report.Mechanism{Kind: kind, Where: where, Count: n - was})
		}
	}
	if obs.order != nil {
		for _, l := range obs.order.GetLinks() {
			b := before.links[l.GetLink()] // nil reads as zeros
			where := "order." + l.GetLink()
			add(report.MechanismFallback, where, l.GetFallbacks(), b.GetFallbacks())
			add(report.MechanismRetry, where, l.GetRetries(), b.GetRetries())
			add(report.MechanismDeadline, where, l.GetDeadlines(), b.GetDeadlines())
			add(report.MechanismBreakerOpen, where, l.GetBreakerOpened(), b.GetBreakerOpened())
			add(report.MechanismBreakerRejected, where, l.GetBreakerRejected(), b.GetBreakerRejected())
			add(report.MechanismBulkheadRejected, where, l.GetBulkheadRejected(), b.GetBulkheadRejected())
			add(report.MechanismHedge, where, l.GetHedgesSent(), b.GetHedgesSent())
			add(report.MechanismHedgeWon, where, l.GetHedgesWon(), b.GetHedgesWon())
		}
	}
	for _, name := range slices.Sorted(mapKeys(obs.stats)) {
		add(report.MechanismDuplicateSkipped, name, obs.stats[name].GetDuplicatesRecognised(), before.consumers[name].GetDuplicatesRecognised())
	}
	slices.SortStableFunc(out, func(a, b report.Mechanism) int {
		return slices.Index(report.MechanismKinds, a.Kind) - slices.Index(report.MechanismKinds, b.Kind)
	})
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// consumerSeries counts, per consumer and per second from start, the
// events published (by the stream's own timestamps, else by the publish
// time each application carries) and the distinct events the consumer
// first applied, and derives its backlog at the end of each second: how
// many published events it had not applied yet, and the age of the oldest
// of them. The series runs to the last second with any event, at least to
// the end of the load.
func consumerSeries(exp *spec.Experiment, obs *observation, start time.Time) []report.ConsumerSeries {
	if obs == nil || len(obs.applied) == 0 {
		return nil
	}
	sec := func(t time.Time) int { return max(0, int(t.Sub(start)/time.Second)) }
	last := int((exp.Load.Duration + time.Second - 1) / time.Second)
	var out []report.ConsumerSeries
	for _, name := range slices.Sorted(mapKeys(obs.applied)) {
		// One publish and one first application per order id.
		published := map[string]time.Time{}
		for id, at := range obs.publishedAt {
			published[id] = at
		}
		applied := map[string]time.Time{}
		for _, a := range obs.applied[name] {
			id, at := a.GetOrderId(), time.Unix(0, a.GetAppliedUnixNano())
			if t, ok := applied[id]; !ok || at.Before(t) {
				applied[id] = at
			}
			if _, ok := published[id]; !ok && a.GetPublishedUnixNano() > 0 {
				published[id] = time.Unix(0, a.GetPublishedUnixNano())
			}
		}
		n := last
		for _, t := range published {
			n = max(n, sec(t)+1)
		}
		for _, t := range applied {
			n = max(n, sec(t)+1)
		}
		n = min(n, last+int(exp.Load.Drain/time.Second)+1) // a stuck consumer's tail stays bounded
		secs := make([]report.ConsumerSecond, n)
		for i := range secs {
			secs[i].T = i
		}
		for id, t := range published {
			if i := sec(t); i < n {
				secs[i].Published++
			}
			if at, ok := applied[id]; ok {
				if i := sec(at); i < n {
					secs[i].Applied++
				}
			}
		}
		// The backlog at the end of each second: O(events × seconds), a
		// few million steps for the largest run the load allows.
		for i := range secs {
			end := start.Add(time.Duration(i+1) * time.Second)
			var oldest time.Time
			for id, t := range published {
				if !t.Before(end) {
					continue
				}
				if at, ok := applied[id]; ok && at.Before(end) {
					continue
				}
				secs[i].LagEvents++
				if oldest.IsZero() || t.Before(oldest) {
					oldest = t
				}
			}
			if secs[i].LagEvents > 0 {
				secs[i].LagMs = ms(end.Sub(oldest))
			}
		}
		out = append(out, report.ConsumerSeries{Consumer: name, Seconds: secs})
	}
	return out
}
