package runner

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/experiments/report"
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

// mechanismCounters reads each mechanism's counter from one reading of
// the services' counters, by kind and place.
type mechanismCounter struct {
	kind string
	read func(c *metrics.Counters, where string) int64
}

var mechanismCounters = []mechanismCounter{
	{report.MechanismFallback, func(c *metrics.Counters, w string) int64 { return c.Links[w].Fallbacks }},
	{report.MechanismRetry, func(c *metrics.Counters, w string) int64 { return c.Links[w].Retries }},
	{report.MechanismDeadline, func(c *metrics.Counters, w string) int64 { return c.Links[w].Deadlines }},
	{report.MechanismBreakerOpen, func(c *metrics.Counters, w string) int64 { return c.Links[w].BreakerOpened }},
	{report.MechanismBreakerRejected, func(c *metrics.Counters, w string) int64 { return c.Links[w].BreakerRejected }},
	{report.MechanismBulkheadRejected, func(c *metrics.Counters, w string) int64 { return c.Links[w].BulkheadRejected }},
	{report.MechanismHedge, func(c *metrics.Counters, w string) int64 { return c.Links[w].HedgesSent }},
	{report.MechanismHedgeWon, func(c *metrics.Counters, w string) int64 { return c.Links[w].HedgesWon }},
	{report.MechanismDuplicateSkipped, func(c *metrics.Counters, w string) int64 { return c.Consumers[w].DuplicatesRecognised }},
}

// mechanisms lists the resilience mechanisms that acted during the run,
// by the services' own counters read at the phase boundaries (so that a
// system up before the run, a --target, does not count its earlier runs),
// with the share of each phase, in report.MechanismKinds order then by
// place. A mechanism that never acted is left out; without the readings
// that delimit the run there is nothing to say.
func mechanisms(pc *phaseCounters) []report.Mechanism {
	from, to := pc.window(string(definition.Always))
	if from == nil || to == nil {
		return nil
	}
	var out []report.Mechanism
	for _, mc := range mechanismCounters {
		places := slices.Sorted(mapKeys(to.Links))
		if mc.kind == report.MechanismDuplicateSkipped {
			places = slices.Sorted(mapKeys(to.Consumers))
		}
		for _, where := range places {
			n := metrics.Delta(mc.read(from, where), mc.read(to, where))
			if n <= 0 {
				continue
			}
			m := report.Mechanism{Kind: mc.kind, Where: where, Count: n, Phases: map[string]int64{}}
			if mc.kind != report.MechanismDuplicateSkipped {
				m.Where = "order." + where
			}
			for _, p := range []string{string(definition.Before), string(definition.During), string(definition.After)} {
				if f, t := pc.window(p); f != nil && t != nil {
					m.Phases[p] = metrics.Delta(mc.read(f, where), mc.read(t, where))
				}
			}
			out = append(out, m)
		}
	}
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
func consumerSeries(exp *definition.Experiment, obs *observation, start time.Time) []report.ConsumerSeries {
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
