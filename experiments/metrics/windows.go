package metrics

import (
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
)

// windowsFamily: the PlaceOrder requests sent while a fault was on a
// proxy, whatever the phase: one figure for the whole run per proxy.
var windowsFamily = Family{
	Name: "fault windows",
	Metrics: []check.MetricInfo{
		{Name: "while.<proxy>.order.requests", WholeRun: true, Type: check.TypeCount, Doc: "PlaceOrder requests sent while a fault was on the proxy"},
		{Name: "while.<proxy>.order.success_rate", WholeRun: true, Type: check.TypeRatio, Doc: "their successful share"},
		{Name: "while.<proxy>.order.latency.p50", WholeRun: true, Type: check.TypeDuration, Doc: "their median latency"},
		{Name: "while.<proxy>.order.latency.p99", WholeRun: true, Type: check.TypeDuration, Doc: "their 99th percentile latency"},
	},
	Compute: func(r *Run, out *Values) {
		for target, ws := range faultWindows(r.Faults) {
			var lat []time.Duration
			ok := 0
			for _, a := range r.History {
				if !inAny(ws, a.Intended) {
					continue
				}
				lat = append(lat, a.Latency)
				if a.Outcome == check.OutcomeAcknowledged {
					ok++
				}
			}
			prefix := "while." + target + ".order."
			out.SetRun(prefix+"requests", count(len(lat)))
			if len(lat) == 0 {
				continue
			}
			slices.Sort(lat)
			out.SetRun(prefix+"success_rate", check.NumberValue(float64(ok)/float64(len(lat))))
			out.SetRun(prefix+"latency.p50", check.DurationValue(Quantile(lat, 0.50)))
			out.SetRun(prefix+"latency.p99", check.DurationValue(Quantile(lat, 0.99)))
		}
	},
}

// window is a span of wall time, [from, to).
type window struct{ from, to time.Time }

func (w window) has(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }

func inAny(ws []window, t time.Time) bool {
	for _, w := range ws {
		if w.has(t) {
			return true
		}
	}
	return false
}

// faultWindows returns the windows of the faults on each target.
func faultWindows(fs []Fault) map[string][]window {
	out := map[string][]window{}
	for _, f := range fs {
		out[f.Target] = append(out[f.Target], window{f.Start, f.End})
	}
	return out
}
