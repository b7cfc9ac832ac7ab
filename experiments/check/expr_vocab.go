package check

import (
	"slices"
	"sort"
	"strings"

	"github.com/fallacies/fallacies/faults"
)

// MetricType is the type of a metric's value; it decides which literals a
// hypothesis may compare the metric with.
type MetricType string

// Metric types.
const (
	TypeDuration MetricType = "duration" // compared with durations: 150ms, 1.5s, 300us
	TypeRatio    MetricType = "ratio"    // 0..1, compared with percentages (99%) or fractions (0.99)
	TypeCount    MetricType = "count"    // a whole number of things
	TypeRate     MetricType = "rate"     // per second: 45, 45/s, 2700/m
	TypeNumber   MetricType = "number"   // a plain number
	TypeBool     MetricType = "bool"     // used bare (or with not), or compared with true/false
	TypeString   MetricType = "string"   // compared with == or != and a name
	TypeSet      MetricType = "set"      // tested with contains / not contains
)

// numeric reports whether values of the type are numbers.
func (t MetricType) numeric() bool {
	switch t {
	case TypeDuration, TypeRatio, TypeCount, TypeRate, TypeNumber:
		return true
	}
	return false
}

// MetricInfo describes one entry of the hypothesis vocabulary.
type MetricInfo struct {
	// Name is the metric's name; in a pattern, placeholders in angle
	// brackets (<op>, <link>, <consumer>, <proxy>, <CODE>) stand for one
	// dotted segment each.
	Name string
	Type MetricType
	Doc  string
	// Pattern reports whether Name contains placeholders.
	Pattern bool
	// Arg names the one argument the metric takes in parentheses, as in
	// trace.critical_path(order.PlaceOrder); "" when it takes none.
	Arg string
	// WholeRun reports whether the metric is one figure for the whole run
	// (a fault window, a total counted after the drain, a time measured
	// from the heal) rather than a figure computed from each phase's own
	// window. A whole-run metric is read in a hypothesis with when: always
	// and never bound to a phase (see CheckWhen).
	WholeRun bool
	// Traces reports whether the metric is computed from the spans the
	// runner captured: in a phase without a captured order trace it has
	// no value, whatever it would read on nothing (no evidence, no pass).
	Traces bool
}

// exprPlaceholders maps each placeholder of the vocabulary to the values it
// stands for.
var exprPlaceholders = map[string][]string{
	"<op>":       {"order", "get_order"},
	"<link>":     {"user", "payment"},
	"<consumer>": {"notification", "ledger"},
	"<proxy>":    faults.Proxies(),
	"<CODE>": {"CANCELED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"},
}

// PlaceholderValues returns the values a vocabulary placeholder such as
// "<link>" stands for, or nil for an unknown placeholder.
func PlaceholderValues(placeholder string) []string {
	return slices.Clone(exprPlaceholders[placeholder])
}

// exprVocabulary is the one table of metrics hypotheses can read. The
// format reference (docs/experiments.md) documents every entry; a test
// keeps the two in sync.
var exprVocabulary = []MetricInfo{
	// Requests, per operation: <op> is order (PlaceOrder) or get_order (GetOrder).
	{Name: "<op>.latency.p50", Type: TypeDuration, Doc: "median latency, timed from the intended send time"},
	{Name: "<op>.latency.p90", Type: TypeDuration, Doc: "90th percentile latency"},
	{Name: "<op>.latency.p99", Type: TypeDuration, Doc: "99th percentile latency"},
	{Name: "<op>.latency.p999", Type: TypeDuration, Doc: "99.9th percentile latency"},
	{Name: "<op>.latency.max", Type: TypeDuration, Doc: "highest latency"},
	{Name: "<op>.latency.mean", Type: TypeDuration, Doc: "mean latency"},
	{Name: "<op>.success_rate", Type: TypeRatio, Doc: "successful requests / requests"},
	{Name: "<op>.error_rate", Type: TypeRatio, Doc: "failed requests / requests"},
	{Name: "<op>.requests", Type: TypeCount, Doc: "requests sent"},
	{Name: "<op>.successes", Type: TypeCount, Doc: "requests answered with OK"},
	{Name: "<op>.errors", Type: TypeCount, Doc: "requests answered with an error"},
	{Name: "<op>.dropped", Type: TypeCount, Doc: "requests not sent because max_in_flight was reached"},
	{Name: "<op>.errors.<CODE>", Type: TypeCount, Doc: "requests that failed with this gRPC code, e.g. order.errors.DEADLINE_EXCEEDED"},
	{Name: "<op>.throughput", Type: TypeRate, Doc: "successful requests per second"},
	{Name: "<op>.in_flight.max", Type: TypeCount, Doc: "most requests in flight at once"},

	// Resilience mechanisms of order's links: <link> is user or payment.
	{Name: "breaker.<link>.opened", Type: TypeCount, Doc: "times the circuit breaker opened"},
	{Name: "breaker.<link>.closed", Type: TypeCount, Doc: "times the circuit breaker closed again"},
	{Name: "breaker.<link>.rejected", Type: TypeCount, Doc: "calls the open breaker rejected without sending"},
	{Name: "breaker.<link>.recovery_time", WholeRun: true, Type: TypeDuration, Doc: "from the end of the last fault on the link's proxy (else of the last fault) to the breaker closing"},
	{Name: "breaker.<link>.rejected_latency.p50", Type: TypeDuration, Doc: "median latency, as the client saw it, of the orders the breaker rejected: how fast failing fast is (from order's traces)"},
	{Name: "breaker.<link>.rejected_latency.p99", Type: TypeDuration, Doc: "99th percentile latency of the orders the breaker rejected"},
	{Name: "bulkhead.<link>.rejected", Type: TypeCount, Doc: "calls the bulkhead rejected because the link was full"},
	{Name: "retries.<link>", Type: TypeCount, Doc: "retry attempts sent (not counting first attempts)"},
	{Name: "fallback.<link>", Type: TypeCount, Doc: "calls answered by the fallback"},
	{Name: "retry.<link>.amplification", Type: TypeNumber, Doc: "attempts on the wire per logical call"},

	// Asynchronous consumers: <consumer> is notification or ledger.
	{Name: "<consumer>.applied", Type: TypeCount, Doc: "events applied"},
	{Name: "<consumer>.duplicates_applied", Type: TypeCount, Doc: "events applied again for an order already applied"},
	{Name: "<consumer>.duplicates_recognised", Type: TypeCount, Doc: "duplicates recognised and skipped"},
	{Name: "<consumer>.redeliveries", Type: TypeCount, Doc: "JetStream redeliveries received"},
	{Name: "<consumer>.lag.p50", Type: TypeDuration, Doc: "median time from publish to apply"},
	{Name: "<consumer>.lag.p99", Type: TypeDuration, Doc: "99th percentile time from publish to apply"},
	{Name: "<consumer>.lag.max", Type: TypeDuration, Doc: "longest time from publish to apply"},
	{Name: "<consumer>.drain_time", WholeRun: true, Type: TypeDuration, Doc: "from the end of the last fault on the consumer's proxy (else of the last fault) until it had applied every event published before then"},
	{Name: "<consumer>.lost", Type: TypeCount, Doc: "acknowledged orders sent in the phase that the consumer never applied"},

	// Consistency, from the checker after drain.
	{Name: "orders.acknowledged", WholeRun: true, Type: TypeCount, Doc: "orders the client was told succeeded"},
	{Name: "orders.recovered", WholeRun: true, Type: TypeCount, Doc: "orders whose outcome the client never learned (its own deadline expired) that were nonetheless charged"},
	{Name: "events.published", WholeRun: true, Type: TypeCount, Doc: "orders.created events in the stream"},
	{Name: "events.lost", WholeRun: true, Type: TypeCount, Doc: "acknowledged orders some consumer never applied"},
	{Name: "events.duplicated", WholeRun: true, Type: TypeCount, Doc: "orders some consumer applied more than once"},
	{Name: "payments.lost", WholeRun: true, Type: TypeCount, Doc: "acknowledged orders with no charge"},
	{Name: "payments.duplicated", WholeRun: true, Type: TypeCount, Doc: "orders charged more than once"},
	{Name: "payments.ghost", WholeRun: true, Type: TypeCount, Doc: "charges for orders the client was told failed"},
	{Name: "records.unexpected", WholeRun: true, Type: TypeCount, Doc: "records for orders the load generator never sent"},

	// Fault windows: PlaceOrder requests sent while a fault was on a proxy,
	// whatever the phase: whole-run.
	{Name: "while.<proxy>.order.requests", WholeRun: true, Type: TypeCount, Doc: "PlaceOrder requests sent while a fault was on the proxy"},
	{Name: "while.<proxy>.order.success_rate", WholeRun: true, Type: TypeRatio, Doc: "their successful share"},
	{Name: "while.<proxy>.order.latency.p50", WholeRun: true, Type: TypeDuration, Doc: "their median latency"},
	{Name: "while.<proxy>.order.latency.p99", WholeRun: true, Type: TypeDuration, Doc: "their 99th percentile latency"},

	// Transport cost of order's call of user, from order's spans.
	{Name: "transport.user.bytes_per_call", Type: TypeNumber, Doc: "mean bytes of user's answer on the wire per successful call: the protobuf message with its gRPC prefix, or the HTTP/1.1 status line, headers and JSON body"},
	{Name: "transport.user.latency.p50", Type: TypeDuration, Doc: "median duration of the user call as order saw it, decoding included"},
	{Name: "transport.user.latency.p99", Type: TypeDuration, Doc: "99th percentile duration of the user call"},

	// Security.
	{Name: "sniffer.<proxy>.plaintext", WholeRun: true, Type: TypeBool, Doc: "the secret was seen in clear text on the proxy (needs a sniffer fault)"},
	{Name: "sniffer.<proxy>.bytes", WholeRun: true, Type: TypeCount, Doc: "bytes the sniffer on the proxy recorded"},
	{Name: "rogue.charge_succeeded", WholeRun: true, Type: TypeBool, Doc: "a charge from a client without a valid certificate succeeded"},

	// Topology, administrators, heterogeneity.
	{Name: "recovery.order.time", WholeRun: true, Type: TypeDuration, Doc: "from the start of the first fault to the first PlaceOrder answered OK after the outage it caused (0: nothing failed; the rest of the run: never recovered)"},
	{Name: "payment.attempts", Type: TypeCount, Doc: "Charge calls payment received, on every replica, retries and hedges included"},

	// Traces, from the spans the runner captures.
	{Name: "trace.critical_path", Arg: "SPAN", Type: TypeSet, Doc: `"service.Method" names on the critical path of the slowest root span named SPAN in the phase`},
	{Name: "trace.error_origin", Type: TypeString, Doc: "service whose span first had an error status in failed orders (the most common)"},
	{Name: "trace.error_inherited", Type: TypeRatio, Doc: "failed orders whose root span inherited the error from a descendant"},
	{Name: "trace.retry_amplification.p50", Type: TypeNumber, Doc: "median attempts reaching a service per root request"},
	{Name: "trace.retry_amplification.p99", Type: TypeNumber, Doc: "99th percentile attempts reaching a service per root request"},
	{Name: "trace.retry_amplification.max", Type: TypeNumber, Doc: "most attempts reaching a service per root request"},
	{Name: "trace.async_isolated", Type: TypeBool, Doc: "no consumer span is on the critical path of any order"},
	{Name: "trace.count", Type: TypeCount, Doc: "root spans captured in the phase"},
	// Client amplification joins the traces of one order id (after the
	// other trace metrics, so that hints list those first).
	{Name: "trace.client_amplification.p50", Type: TypeNumber, Doc: "median attempts reaching a service per client request: every trace of one order id (the client's retries included), per phase of its first attempt"},
	{Name: "trace.client_amplification.p99", Type: TypeNumber, Doc: "99th percentile attempts reaching a service per client request"},
	{Name: "trace.client_amplification.max", Type: TypeNumber, Doc: "most attempts reaching a service per client request"},
	{Name: "trace.client_amplification.mean", Type: TypeNumber, Doc: "mean attempts reaching a service per client request"},
}

func init() {
	for i := range exprVocabulary {
		m := &exprVocabulary[i]
		m.Pattern = strings.Contains(m.Name, "<")
		m.Traces = exprFromTraces(m.Name)
	}
}

// exprFromTraces reports whether a metric is computed from captured
// spans: the trace family, the transport cost (from order's span
// attributes) and the latency of breaker rejections (from its events).
func exprFromTraces(name string) bool {
	return strings.HasPrefix(name, "trace.") || strings.HasPrefix(name, "transport.") ||
		strings.HasPrefix(name, "breaker.<link>.rejected_latency.")
}

// Vocabulary returns every metric a hypothesis can read, in documentation
// order.
func Vocabulary() []MetricInfo { return slices.Clone(exprVocabulary) }

// Phase prefixes a metric can carry to read another phase than the
// hypothesis's own.
var exprPhasePrefixes = []string{"before", "during", "after"}

// SplitPhase splits a metric name as written in an expression into its
// phase prefix ("before", "during", "after" or "") and the metric name.
func SplitPhase(metric string) (phase, name string) {
	for _, p := range exprPhasePrefixes {
		if rest, ok := strings.CutPrefix(metric, p+"."); ok {
			return p, rest
		}
	}
	return "", metric
}

// LookupMetric finds a metric (without phase prefix or argument) in the
// vocabulary. A concrete name such as breaker.user.opened matches the
// pattern breaker.<link>.opened, whose MetricInfo is returned.
func LookupMetric(name string) (MetricInfo, bool) {
	segs := strings.Split(name, ".")
	for _, m := range exprVocabulary {
		if exprMatch(m.Name, segs) {
			return m, true
		}
	}
	return MetricInfo{}, false
}

func exprMatch(pattern string, segs []string) bool {
	ps := strings.Split(pattern, ".")
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		if vals, ok := exprPlaceholders[p]; ok {
			if !slices.Contains(vals, segs[i]) {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

// exprConcreteNames expands every pattern of the vocabulary into the
// concrete names it matches.
func exprConcreteNames() []string {
	var out []string
	for _, m := range exprVocabulary {
		names := []string{""}
		for i, seg := range strings.Split(m.Name, ".") {
			vals, ok := exprPlaceholders[seg]
			if !ok {
				vals = []string{seg}
			}
			var next []string
			for _, n := range names {
				for _, v := range vals {
					if i == 0 {
						next = append(next, v)
					} else {
						next = append(next, n+"."+v)
					}
				}
			}
			names = next
		}
		out = append(out, names...)
	}
	return out
}

// exprSimilar returns up to three known metrics closest to name by edit
// distance (a name cut short counts as close).
func exprSimilar(name string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	limit := max(2, len(name)/3)
	all := exprConcreteNames()
	for _, n := range all {
		d := exprDistance(name, n)
		if strings.HasPrefix(n, name) {
			d = 1 // a name cut short: order.latency, order.errors.DEADLINE
		}
		if d <= limit {
			cs = append(cs, cand{n, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for _, c := range cs {
		if len(out) == 3 {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// exprFamily returns the vocabulary entries that share the first segment
// of name, at most eight.
func exprFamily(name string) []string {
	var out []string
	first, _, _ := strings.Cut(name, ".")
	for _, m := range exprVocabulary {
		mf, _, _ := strings.Cut(m.Name, ".")
		if mf == first || (strings.HasPrefix(mf, "<") && slices.Contains(exprPlaceholders[mf], first)) {
			n := m.Name
			if m.Arg != "" {
				n += "(" + m.Arg + ")"
			}
			out = append(out, n)
		}
	}
	if len(out) > 8 {
		out = out[:8]
	}
	return out
}

// exprUnknownHint is the hint for an unknown metric: close names, else
// the metrics of its family, else where the list is.
func exprUnknownHint(name string) string {
	if sim := exprSimilar(name); len(sim) > 0 {
		return "did you mean " + exprOrList(sim) + "?"
	}
	if fam := exprFamily(name); len(fam) > 0 {
		return "known: " + strings.Join(fam, ", ")
	}
	return "the metrics are listed in docs/experiments.md"
}

// exprDistance is the Levenshtein distance between a and b.
func exprDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
