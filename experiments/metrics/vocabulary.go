package metrics

import (
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/internal/suggest"
)

// families is every metric family, in documentation order
// (docs/experiments.md lists them so; a test keeps the two in step).
var families = []Family{
	requestsFamily,
	linksFamily,
	consumersFamily,
	consistencyFamily,
	windowsFamily,
	transportFamily,
	securityFamily,
	recoveryFamily,
	paymentsFamily,
	tracesFamily,
	faultsFamily,
}

// Families returns every metric family, in documentation order.
func Families() []Family { return slices.Clone(families) }

// placeholders maps each placeholder of a name pattern to the values it
// stands for.
var placeholders = map[string][]string{
	"<op>":       {"order", "get_order"},
	"<link>":     {"user", "payment"},
	"<consumer>": {"notification", "ledger"},
	"<proxy>":    faults.Proxies(),
	"<CODE>": {"CANCELED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"},
}

// named are the placeholders that stand for a name the experiment file
// chooses (a fault's name, a counter its injector records): any segment
// written like a fault name matches them, and the values listed are the
// examples ConcreteNames expands them into.
var named = map[string][]string{
	"<fault>":   {"lossy"},
	"<counter>": {"packets", "dropped", "retransmits", "rto_timeouts", "calls", "faulted"},
}

// namePattern is how a fault's name is written (experiments/definition
// checks the same).
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// PlaceholderValues returns the values a placeholder such as "<link>"
// stands for, or nil for an unknown placeholder.
func PlaceholderValues(placeholder string) []string {
	if vals, ok := placeholders[placeholder]; ok {
		return slices.Clone(vals)
	}
	return slices.Clone(named[placeholder])
}

// all is every metric of every family, in documentation order, with
// Pattern filled in.
var all = func() []check.MetricInfo {
	var out []check.MetricInfo
	for _, f := range families {
		for _, m := range f.Metrics {
			m.Pattern = strings.Contains(m.Name, "<")
			out = append(out, m)
		}
	}
	return out
}()

// All returns every metric a hypothesis can read, in documentation order.
func All() []check.MetricInfo { return slices.Clone(all) }

// Vocabulary is the metrics of every family, as check.ParseExpr reads them.
var Vocabulary check.Vocabulary = vocabulary{}

type vocabulary struct{}

// Lookup implements check.Vocabulary.
func (vocabulary) Lookup(name string) (check.MetricInfo, bool) { return Lookup(name) }

// Near implements check.Vocabulary.
func (vocabulary) Near(name string) (similar, family []string) {
	return similarNames(name), familyOf(name)
}

// Lookup finds a metric (without phase prefix or argument). A concrete
// name such as breaker.user.opened matches the pattern
// breaker.<link>.opened, whose MetricInfo is returned.
func Lookup(name string) (check.MetricInfo, bool) {
	segs := strings.Split(name, ".")
	for _, m := range all {
		if match(m.Name, segs) {
			return m, true
		}
	}
	return check.MetricInfo{}, false
}

func match(pattern string, segs []string) bool {
	ps := strings.Split(pattern, ".")
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		if vals, ok := placeholders[p]; ok {
			if !slices.Contains(vals, segs[i]) {
				return false
			}
		} else if _, ok := named[p]; ok {
			if !namePattern.MatchString(segs[i]) {
				return false
			}
		} else if p != segs[i] {
			return false
		}
	}
	return true
}

// ConcreteNames expands every pattern into the concrete names it matches.
func ConcreteNames() []string {
	var out []string
	for _, m := range all {
		names := []string{""}
		for i, seg := range strings.Split(m.Name, ".") {
			vals, ok := placeholders[seg]
			if !ok {
				vals, ok = named[seg]
			}
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

// similarNames returns up to three known metrics closest to name by edit
// distance (a name cut short counts as close).
func similarNames(name string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	limit := max(2, len(name)/3)
	for _, n := range ConcreteNames() {
		d := suggest.Distance(name, n)
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

// familyOf returns the metrics that share the first segment of name, at
// most eight.
func familyOf(name string) []string {
	var out []string
	first, _, _ := strings.Cut(name, ".")
	for _, m := range all {
		mf, _, _ := strings.Cut(m.Name, ".")
		if mf == first || (strings.HasPrefix(mf, "<") && slices.Contains(placeholders[mf], first)) {
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
