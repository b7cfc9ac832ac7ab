package metrics

import (
	"slices"
	"strconv"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/internal/semconv"
)

// Root span attributes order sets about its call of user (see
// services/order: AttrUserBytes, AttrUserCallMicros), read by name.
const (
	attrUserBytes  = semconv.UserBytes
	attrUserCallUS = semconv.UserCallMicros
)

// transportFamily: the cost of order's call of user, from the attributes
// order puts on each PlaceOrder span.
var transportFamily = Family{
	Name: "transport cost",
	Metrics: []check.MetricInfo{
		{Name: "transport.user.bytes_per_call", Traces: true, Type: check.TypeNumber, Doc: "mean bytes of user's answer on the wire per successful call: the protobuf message with its gRPC prefix, or the HTTP/1.1 status line, headers and JSON body"},
		{Name: "transport.user.latency.p50", Traces: true, Type: check.TypeDuration, Doc: "median duration of the user call as order saw it, decoding included"},
		{Name: "transport.user.latency.p99", Traces: true, Type: check.TypeDuration, Doc: "99th percentile duration of the user call"},
	},
	Compute: func(r *Run, out *Values) {
		for _, p := range Phases {
			var bytes, n int
			var calls []time.Duration
			for _, t := range r.Traces.Orders[p] {
				if b, err := strconv.Atoi(t.Root.Attrs[attrUserBytes]); err == nil && b > 0 {
					bytes += b
					n++
				}
				if us, err := strconv.ParseInt(t.Root.Attrs[attrUserCallUS], 10, 64); err == nil && us > 0 {
					calls = append(calls, time.Duration(us)*time.Microsecond)
				}
			}
			if n > 0 {
				out.Set(p, "transport.user.bytes_per_call", check.NumberValue(float64(bytes)/float64(n)))
			}
			if len(calls) > 0 {
				slices.Sort(calls)
				out.Set(p, "transport.user.latency.p50", check.DurationValue(Quantile(calls, 0.50)))
				out.Set(p, "transport.user.latency.p99", check.DurationValue(Quantile(calls, 0.99)))
			}
		}
	},
}
