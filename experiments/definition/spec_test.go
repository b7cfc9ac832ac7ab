package definition

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
)

// head is a valid experiment without faults or hypotheses: five lines.
const head = `name: x
fallacy: latency-is-zero
description: d
load: { rate: 10/s, duration: 30s }
variants: { naive: {} }
`

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error, formatted, in order
	}{
		{"empty file", ``, []string{
			"x.yaml:1:1: empty file (an experiment needs name, fallacy, description, load and variants)"}},
		{"only a comment", "# nothing here\n", []string{
			"x.yaml:1:1: empty file (an experiment needs name, fallacy, description, load and variants)"}},
		{"not a mapping", "- a\n- b\n", []string{
			"x.yaml:1:1: want a mapping of name, fallacy, description, load, variants, faults and hypotheses, got a list"}},
		{"a scalar document", "hello\n", []string{
			`x.yaml:1:1: want a mapping of name, fallacy, description, load, variants, faults and hypotheses, got the string "hello"`}},
		{"syntax error", "name: x\n  bad: [\n", []string{
			"x.yaml:2:6: invalid YAML: mapping values are not allowed in this context"}},
		{"two documents", head + "---\nname: y\n", []string{
			"x.yaml:6:1: a second document (an experiment file holds one document; remove the ---)"}},
		{"missing required fields", "name: x\n", []string{
			"x.yaml:1:1: description: missing (one line on what the experiment shows)",
			"x.yaml:1:1: fallacy: missing (one of latency-is-zero, network-is-reliable, bandwidth-is-infinite, network-is-secure, topology-doesnt-change, one-administrator, transport-cost-is-zero, network-is-homogeneous, messaging, failure-propagation)",
			"x.yaml:1:1: load: missing (write e.g. load: { rate: 50/s, duration: 30s })",
			"x.yaml:1:1: variants: missing (write e.g. variants: { naive: {} })"}},
		{"unknown top-level key", head + "hypothesis: []\n", []string{
			"x.yaml:6:1: hypothesis: unknown key (did you mean hypotheses?)"}},
		{"duplicate key", head + "name: y\n", []string{
			"x.yaml:6:1: name: duplicate key (first set at line 1)"}},
		{"bad name", strings.Replace(head, "name: x", "name: My_Exp", 1), []string{
			`x.yaml:1:7: name: "My_Exp" is not a valid name (lower-case letters, digits and -, e.g. latency)`}},
		{"name is a number", strings.Replace(head, "name: x", "name: 42", 1), []string{
			`x.yaml:1:7: name: want a string, got the number 42 (quote it: "42")`}},
		{"unknown fallacy", strings.Replace(head, "latency-is-zero", "latency-is-0", 1), []string{
			`x.yaml:2:10: fallacy: "latency-is-0" is not a fallacy (did you mean latency-is-zero?)`}},
		{"two-line description", strings.Replace(head, "description: d", "description: \"a\\nb\"", 1), []string{
			"x.yaml:3:14: description: more than one line (keep it to one line; details belong in docs/)"}},
		{"unknown topology", head + "topology: kubernetes\n", []string{
			`x.yaml:6:11: topology: "kubernetes" is not a topology (known: embedded, processes, compose)`}},
		{"seed not a number", head + "seed: abc\n", []string{
			`x.yaml:6:7: seed: want a whole number, got the string "abc"`}},
		{"load is a list", strings.Replace(head, "load: { rate: 10/s, duration: 30s }", "load: [1]", 1), []string{
			"x.yaml:4:7: load: want a mapping, got a list"}},
		{"load missing rate and duration", strings.Replace(head, "{ rate: 10/s, duration: 30s }", "{ users: 5 }", 1), []string{
			"x.yaml:4:7: load.duration: missing (write e.g. duration: 30s)",
			"x.yaml:4:7: load.rate: missing (write e.g. rate: 50/s)"}},
		{"bad rate", strings.Replace(head, "rate: 10/s", "rate: 10/h", 1), []string{
			`x.yaml:4:15: load.rate: "10/h" is not a rate (write e.g. 50/s or 3000/m)`}},
		{"zero rate", strings.Replace(head, "rate: 10/s", "rate: 0", 1), []string{
			"x.yaml:4:15: load.rate: must be more than 0 (write e.g. 50/s)"}},
		{"duration without unit", strings.Replace(head, "duration: 30s", "duration: 30", 1), []string{
			`x.yaml:4:31: load.duration: "30" is not a duration (write e.g. 30s)`}},
		{"negative duration", strings.Replace(head, "duration: 30s", "duration: -30s", 1), []string{
			"x.yaml:4:31: load.duration: -30s is negative (durations are >= 0)"}},
		{"unknown load key and bad users", strings.Replace(head, "duration: 30s", "duration: 30s, user: 5, max_in_flight: 0", 1), []string{
			"x.yaml:4:36: load.user: unknown key (did you mean users?)",
			"x.yaml:4:60: load.max_in_flight: 0 is less than 1"}},
		{"mix of zero", strings.Replace(head, "duration: 30s", "duration: 30s, mix: { place_order: 0 }", 1), []string{
			"x.yaml:4:41: load.mix: the shares add up to 0 (write e.g. mix: { place_order: 0.8, get_order: 0.2 })"}},
		{"rate steps out of order", strings.Replace(head, "duration: 30s", "duration: 30s, steps: [ {at: 20s, rate: 5}, {at: 10s, rate: 5}, {at: 40s, rate: 1} ]", 1), []string{
			"x.yaml:4:70: load.steps[1].at: 10s is not after the previous step (20s) (list steps in time order)",
			"x.yaml:4:90: load.steps[2].at: 40s is not before the end of the load (duration 30s)"}},
		{"no variant", strings.Replace(head, "{ naive: {} }", "{}", 1), []string{
			"x.yaml:5:11: variants: no variant (write e.g. variants: { naive: {} })"}},
		{"unknown knob", strings.Replace(head, "naive: {}", "naive: { order.user.timeot: 1s }", 1), []string{
			"x.yaml:5:22: variants.naive.order.user.timeot: unknown knob (did you mean order.user.timeout?)"}},
		{"bad knob value", strings.Replace(head, "naive: {}", "naive: { order.user.timeout: 1 }", 1), []string{
			`x.yaml:5:42: variants.naive.order.user.timeout: "1" is not a duration (want e.g. 100ms, 2s, or off)`}},
		{"bad enum knob", strings.Replace(head, "naive: {}", "naive: { order.user.fallback: cache }", 1), []string{
			`x.yaml:5:43: variants.naive.order.user.fallback: "cache" is not one of off, cached-profile`}},
		{"knob without value", strings.Replace(head, "naive: {}", "naive: { order.user.breaker: }", 1), []string{
			"x.yaml:5:42: variants.naive.order.user.breaker: want a bool value, got nothing (write on or off)"}},
		{"knob out of its range", strings.Replace(head, "naive: {}", "naive: { order.user.retries: 11 }", 1), []string{
			"x.yaml:5:42: variants.naive.order.user.retries: 11 is out of range, need 0 to 10"}},
		{"knob near the int64 limit", strings.Replace(head, "naive: {}", "naive: { order.user.bulkhead: 9223372036854775807 }", 1), []string{
			"x.yaml:5:43: variants.naive.order.user.bulkhead: 9223372036854775807 is out of range, need 0 to 100000"}},
		{"system does not validate", strings.Replace(head, "naive: {}", "naive: { order.payment.hedge_after: 30ms }", 1), []string{
			"x.yaml:5:13: variants.naive: order.payment.hedge_after: 30ms needs payment.replicas of at least 2 (got 0): a hedge goes to another replica"}},
		{"fault of unknown kind", head + "faults:\n  - { at: 1s, target: user, kind: lag }\n", []string{
			`x.yaml:7:35: faults[0].kind: "lag" is not a fault kind (did you mean latency?)`}},
		{"fault on unknown proxy", head + "faults:\n  - { at: 1s, target: usr, kind: latency, latency: 1ms }\n", []string{
			`x.yaml:7:23: faults[0].target: "usr" is not a proxy (proxies: user, user-http, payment, nats-order, nats-notification, nats-ledger, payment-1, payment-2, nats-payment)`}},
		{"fault missing target and at", head + "faults:\n  - { kind: partition }\n", []string{
			"x.yaml:7:5: faults[0].at: missing (write e.g. at: 10s)",
			"x.yaml:7:5: faults[0].target: missing (write e.g. target: user)"}},
		{"latency without latency", head + "faults:\n  - { at: 1s, target: user, kind: latency, jitter: 5ms }\n", []string{
			"x.yaml:7:5: faults[0].latency: missing (a latency fault needs latency, e.g. latency: 300ms)"}},
		{"attribute as a bare number", head + "faults:\n  - { at: 1s, target: user, kind: latency, latency: \"300\" }\n", []string{
			`x.yaml:7:53: faults[0].latency: "300" is not a duration (write e.g. 300ms)`}},
		{"attribute of another kind", head + "faults:\n  - { at: 1s, target: user, kind: latency, latency: 1ms, rate: 5 }\n", []string{
			"x.yaml:7:58: faults[0].rate: rate is not an attribute of a latency fault (it takes latency, jitter)"}},
		{"unknown fault key", head + "faults:\n  - { at: 1s, target: user, kind: partition, durtion: 5s }\n", []string{
			"x.yaml:7:46: faults[0].durtion: unknown key (did you mean direction?)"}},
		{"bandwidth rate negative", head + "faults:\n  - { at: 1s, target: user, kind: bandwidth, rate: -5 }\n", []string{
			"x.yaml:7:52: faults[0].rate: -5 is less than 0"}},
		{"bad direction and toxicity", head + "faults:\n  - { at: 1s, target: user, kind: latency, latency: 1ms, direction: down, toxicity: 1.5 }\n", []string{
			`x.yaml:7:69: faults[0].direction: "down" is not a direction (did you mean downstream?)`,
			"x.yaml:7:85: faults[0].toxicity: 1.5 is not in (0, 1] (the share of connections affected, e.g. 0.5)"}},
		{"direction on a partition", head + "faults:\n  - { at: 1s, target: user, kind: partition, direction: upstream }\n", []string{
			"x.yaml:7:46: faults[0].direction: direction does not apply to a partition fault"}},
		{"fault beyond the load", head + "faults:\n  - { at: 25s, for: 10s, target: user, kind: partition }\n", []string{
			"x.yaml:7:21: faults[0].for: the fault ends at 35s, after the end of the load (duration 30s) (shorten it, or leave for out to last until the end)"}},
		{"fault starts after the load", head + "faults:\n  - { at: 30s, target: user, kind: partition }\n", []string{
			"x.yaml:7:11: faults[0].at: 30s is not before the end of the load (duration 30s)"}},
		{"for of zero", head + "faults:\n  - { at: 1s, for: 0s, target: user, kind: partition }\n", []string{
			"x.yaml:7:20: faults[0].for: must be more than 0 (leave for out to last until the end of the run)"}},
		{"overlapping faults", head + "faults:\n  - { at: 5s, for: 10s, target: user, kind: latency, latency: 1ms, direction: both }\n  - { at: 10s, for: 5s, target: user, kind: latency, latency: 2ms, direction: upstream }\n", []string{
			"x.yaml:8:5: faults[1]: overlaps faults[0] (latency on user, both directions, 5s to 15s) (two faults of one kind on one target and direction would collide; end one before the other starts)"}},
		{"process fault on the embedded topology", head + "faults:\n  - { at: 1s, for: 1s, target: payment, kind: kill }\n", []string{
			"x.yaml:7:47: faults[0].kind: a kill fault needs a service process, which the embedded topology does not have (add topology: processes (or compose))"}},
		{"process fault on a proxy", head + "topology: processes\nfaults:\n  - { at: 1s, for: 1s, target: nats-order, kind: pause }\n", []string{
			`x.yaml:8:32: faults[0].target: "nats-order" is not a service (a pause fault targets a service: order, user, payment, notification, ledger)`}},
		{"container fault on the processes topology", head + "topology: processes\nfaults:\n  - { at: 1s, for: 1s, target: payment, kind: container-pause }\n", []string{
			"x.yaml:8:47: faults[0].kind: a container-pause fault needs a container, which only the compose topology has (add topology: compose)"}},
		{"container fault on the default topology", head + "faults:\n  - { at: 1s, target: nats, kind: container-kill }\n", []string{
			"x.yaml:7:35: faults[0].kind: a container-kill fault needs a container, which only the compose topology has (add topology: compose)"}},
		{"container fault on a proxy", head + "topology: compose\nfaults:\n  - { at: 1s, for: 1s, target: nats-order, kind: container-disconnect }\n", []string{
			`x.yaml:8:32: faults[0].target: "nats-order" is not a compose service (a container-disconnect fault targets a container: order, user, payment, notification, ledger, toxiproxy, nats)`}},
		{"duplicate fault names", head + "faults:\n  - { name: a, at: 1s, for: 1s, target: user, kind: partition }\n  - { name: a, at: 5s, for: 1s, target: payment, kind: partition }\n", []string{
			`x.yaml:8:13: faults[1].name: "a" names another fault too (fault names are unique in an experiment)`}},
		{"steps and for", head + "faults:\n  - { at: 1s, for: 5s, target: user, kind: latency, steps: [ {for: 1s, latency: 1ms} ] }\n", []string{
			"x.yaml:7:15: faults[0].for: a fault with steps takes no for (give each step its for)"}},
		{"step without for and latency", head + "faults:\n  - { at: 1s, target: user, kind: latency, steps: [ {latency: 1ms}, {for: 1s} ] }\n", []string{
			"x.yaml:7:53: faults[0].steps[0].for: missing (every step but the last needs a for)",
			"x.yaml:7:69: faults[0].steps[1].latency: missing (a latency fault needs latency, e.g. latency: 300ms)"}},
		{"steps beyond the load", head + "faults:\n  - { at: 20s, target: user, kind: latency, steps: [ {for: 5s, latency: 1ms}, {for: 6s, latency: 2ms} ] }\n", []string{
			"x.yaml:7:85: faults[0].steps[1].for: the fault ends at 31s, after the end of the load (duration 30s) (shorten it, or leave for out to last until the end)"}},
		{"faults not a list", head + "faults: { at: 1s }\n", []string{
			"x.yaml:6:9: faults: want a list, got a mapping (write e.g. faults: [ { at: 10s, for: 10s, target: user, kind: latency, latency: 300ms } ])"}},
		{"hypothesis missing check, bad when", head + "hypotheses:\n  - { when: sometimes }\n", []string{
			"x.yaml:7:5: hypotheses[0].check: missing (write e.g. check: \"order.success_rate >= 99%\")",
			`x.yaml:7:13: hypotheses[0].when: "sometimes" is not a phase (known: before, during, after, always)`}},
		{"hypothesis on unknown variant", head + "hypotheses:\n  - { when: before, variant: nave, check: \"order.errors == 0\" }\n", []string{
			`x.yaml:7:30: hypotheses[0].variant: "nave" is not a variant of this experiment (variants: naive)`}},
		{"check with unknown metric", head + "hypotheses:\n  - { when: always, check: \"order.latncy.p99 < 1s\" }\n", []string{
			"x.yaml:7:29: hypotheses[0].check: unknown metric order.latncy.p99 (did you mean order.latency.p99, order.latency.p90 or order.latency.p999?)"}},
		{"check with a duration compared to a number", head + "hypotheses:\n  - { when: always, check: \"events.lost == 0 and order.latency.p99 < 150\" }\n", []string{
			"x.yaml:7:70: hypotheses[0].check: order.latency.p99 is a duration: write 150ms"}},
		{"check in a plain block scalar", head + "hypotheses:\n  - when: always\n    check: order.latency.p99 <\n", []string{
			"x.yaml:8:31: hypotheses[0].check: expected a value after < but the expression ends (write e.g. order.latency.p99 < 150ms)"}},
		{"fault on a replica a variant does not run", head + "faults:\n  - { at: 5s, for: 1s, target: payment-1, kind: partition }\n", []string{
			`x.yaml:7:32: faults[0].target: variant naive has no link "payment-1": it runs 1 payment replica(s) (set payment.replicas: 2 or more in every variant)`}},
		{"fault counter of an undeclared fault", head + "faults:\n  - { name: lossy, at: 5s, for: 1s, target: payment, kind: packet-loss, probability: 1% }\nhypotheses:\n  - { when: always, check: \"fault.lossy.dropped > 0 and fault.losy.rto_timeouts > 0\" }\n", []string{
			`x.yaml:9:28: hypotheses[0].check: fault.losy.rto_timeouts reads the counters of fault "losy", which this experiment does not declare (faults: lossy)`}},
		{"during without faults", head + "hypotheses:\n  - { when: during, check: \"order.errors == 0\" }\n", []string{
			"x.yaml:7:13: hypotheses[0].when: there is no during phase without a fault (add a fault, or use when: before or always)"}},
		{"no before phase", head + "faults:\n  - { at: 0s, for: 10s, target: user, kind: partition }\nhypotheses:\n  - { when: before, check: \"order.errors == 0\" }\n", []string{
			"x.yaml:9:13: hypotheses[0].when: there is no before phase: the first fault starts at 0s (start it later to measure the steady state)"}},
		{"no after phase for a metric", head + "faults:\n  - { at: 5s, target: user, kind: partition }\nhypotheses:\n  - { when: during, check: \"order.errors <= after.order.errors\" }\n", []string{
			"x.yaml:9:28: hypotheses[0].check: after.order.errors reads the after phase, but there is no after phase: the last fault lasts until the end of the load (give it a for, or make the load longer)"}},
		{"whole-run metric in a phase", head + "hypotheses:\n  - { when: before, check: \"payments.ghost == 0\" }\n", []string{
			"x.yaml:7:29: hypotheses[0].check: payments.ghost is one figure for the whole run: it cannot be checked when: before (check it in a hypothesis with when: always; a metric of a phase reads there with its prefix, e.g. before.order.success_rate)"}},
		{"whole-run metric with a phase prefix", head + "hypotheses:\n  - { when: always, check: \"order.success_rate >= 99% and during.while.user.order.requests > 0\" }\n", []string{
			"x.yaml:7:59: hypotheses[0].check: while.user.order.requests is one figure for the whole run: it has no during value (write while.user.order.requests in a hypothesis with when: always)"}},
		{"abort not a bool", head + "hypotheses:\n  - { when: always, check: \"events.lost == 0\", abort: yes }\n", []string{
			`x.yaml:7:55: hypotheses[0].abort: want true or false, got the string "yes"`}},
		{"hypotheses item not a mapping", head + "hypotheses:\n  - events.lost == 0\n", []string{
			"x.yaml:7:5: hypotheses[0]: want a mapping, got the string \"events.lost == 0\""}},
		{"message-level fault on an encrypted variant", strings.Replace(head, "variants: { naive: {} }", "variants: { naive: {}, secure: { security.mtls: on } }", 1) +
			"faults:\n  - { at: 1s, for: 2s, target: nats-ledger, kind: nats-drop }\n  - { at: 1s, for: 2s, target: nats-ledger, kind: latency, latency: 10ms }\n", []string{
			"x.yaml:7:5: faults[0]: a nats-drop fault reads the link's NATS protocol, which security.mtls: on encrypts (variant secure) (leave security.mtls off in an experiment with call-level or message-level faults)"}},
		{"nats fault on a gRPC link", head + "faults:\n  - { at: 1s, for: 2s, target: payment, kind: nats-reorder, subject: \"orders.>.x\" }\n", []string{
			`x.yaml:7:32: faults[0].target: "payment" is not a NATS link (a nats-reorder fault targets a NATS link: nats-order, nats-notification, nats-ledger, nats-payment)`,
			`x.yaml:7:70: faults[0].subject: "orders.>.x" is not a valid subject (e.g. orders.created)`}},
		{"merge key", head + "x: &a { y: 1 }\nhypotheses:\n  - { <<: *a, when: always, check: \"events.lost == 0\" }\n", []string{
			"x.yaml:6:1: x: unknown key (known: name, fallacy, description, topology, seed, load, variants, faults, hypotheses)",
			"x.yaml:8:7: hypotheses[0]: merge keys (<<) are not supported (write the keys out)"}},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d bad files", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse("x.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", e)
			}
			if e != nil {
				t.Errorf("Parse returned an experiment with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v is not Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Errors.Error() = %q", err.Error())
			}
		})
	}
}

// TestParseAllErrors checks that problems all over a file are reported in
// one go, sorted by position, and that Error carries the parts.
func TestParseAllErrors(t *testing.T) {
	src := `name: Bad Name
fallacy: latency-is-zero
description: d
load: { rate: 50/x, duration: 30s, drain: -1s }
variants:
  naive: { order.user.timeout: soon }
  resilient: { order.user.retry: 3 }
faults:
  - { at: 10s, for: 30s, target: user, kind: latency, latency: 300 }
  - { at: 1s, target: nowhere, kind: partition }
hypotheses:
  - { when: during, variant: other, check: "order.success_rate >= 99" }
extra: true
`
	_, err := Parse("experiments/x.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v is not Errors", err, err)
	}
	want := []string{
		`experiments/x.yaml:1:7: name: "Bad Name" is not a valid name (lower-case letters, digits and -, e.g. latency)`,
		`experiments/x.yaml:4:15: load.rate: "50/x" is not a rate (write e.g. 50/s or 3000/m)`,
		`experiments/x.yaml:4:43: load.drain: -1s is negative (durations are >= 0)`,
		`experiments/x.yaml:6:32: variants.naive.order.user.timeout: "soon" is not a duration (want e.g. 100ms, 2s, or off)`,
		`experiments/x.yaml:7:16: variants.resilient.order.user.retry: unknown knob (did you mean order.user.retries?)`,
		`experiments/x.yaml:9:64: faults[0].latency: "300" is not a duration (write e.g. 300ms)`,
		`experiments/x.yaml:10:23: faults[1].target: "nowhere" is not a proxy (proxies: user, user-http, payment, nats-order, nats-notification, nats-ledger, payment-1, payment-2, nats-payment)`,
		`experiments/x.yaml:12:30: hypotheses[0].variant: "other" is not a variant of this experiment (variants: naive, resilient)`,
		`experiments/x.yaml:12:67: hypotheses[0].check: order.success_rate is a ratio: write 99% or 0.99`,
		`experiments/x.yaml:13:1: extra: unknown key (known: name, fallacy, description, topology, seed, load, variants, faults, hypotheses)`,
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	first := errs[0]
	if first.File != "experiments/x.yaml" || first.Line != 1 || first.Col != 7 || first.Path != "name" || first.Hint == "" {
		t.Errorf("first error = %+v", first)
	}
}

func TestParseGood(t *testing.T) {
	src := `# yaml-language-server: $schema=./schema.json
name: steps-and-mix
fallacy: network-is-reliable
description: a bit of everything
topology: processes
seed: 7
load:
  rate: 3000/m
  duration: 1m
  max_in_flight: 20
  timeout: 500ms
  drain: 0s
  users: 3
  mix: { place_order: 3, get_order: 1 }
  steps: [ { at: 10s, rate: 100/s }, { at: 20s, rate: 0 } ]
variants:
  naive:
  resilient: &r { order.user.timeout: 100ms, order.user.retries: 2, order.publish_mode: core, notification.idempotent: off }
  copy: *r
faults:
  - { name: slow-user, at: 10s, for: 10s, target: user, kind: latency, latency: 300ms, jitter: 50ms, direction: downstream, toxicity: 0.5 }
  - { at: 5s, target: user, kind: latency, jitter: 1ms, direction: upstream, steps: [ {for: 5s, latency: 100ms}, {for: 5s, latency: 200ms, toxicity: 0.25}, {latency: 400ms} ] }
  - { at: 30s, for: 2s, target: payment, kind: kill }
  - { at: 40s, target: nats-ledger, kind: slicer, delay: 2ms }
  - { at: 40s, for: 1s, target: payment, kind: partition }
  - { at: 45s, for: 1s, target: payment, kind: partition }
hypotheses:
  - { when: before, check: "order.success_rate >= 99%" }
  - when: during
    variant: naive
    check: 'order.latency.p50 >= 300ms'
    abort: true
    name: the fault bit
  - { when: always, check: "order.latency.p99 < 2 * before.order.latency.p99" }
`
	e, err := Parse("good.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if e.Path != "good.yaml" || e.Name != "steps-and-mix" || e.Fallacy != "network-is-reliable" || e.Description != "a bit of everything" || e.Topology != "processes" || e.Seed != 7 {
		t.Errorf("header = %q %q %q %q %q %d", e.Path, e.Name, e.Fallacy, e.Description, e.Topology, e.Seed)
	}
	wantLoad := Workload{Rate: 50, Duration: time.Minute, MaxInFlight: 20, Timeout: 500 * time.Millisecond, Drain: 0, Users: 3,
		Mix: Mix{PlaceOrder: 0.75, GetOrder: 0.25}, Steps: []RateStep{{10 * time.Second, 100}, {20 * time.Second, 0}}}
	if !equalLoad(e.Load, wantLoad) {
		t.Errorf("load = %+v, want %+v", e.Load, wantLoad)
	}
	if len(e.Variants) != 3 || e.Variants[0].Name != "naive" || e.Variants[1].Name != "resilient" || e.Variants[2].Name != "copy" {
		t.Fatalf("variants = %+v", e.Variants)
	}
	if e.Variants[0].System != config.Default() || len(e.Variants[0].Knobs) != 0 {
		t.Errorf("naive = %+v, want the default system", e.Variants[0])
	}
	r := e.Variants[1]
	wantKnobs := []Knob{{"order.user.timeout", "100ms"}, {"order.user.retries", "2"}, {"order.publish_mode", "core"}, {"notification.idempotent", "off"}}
	if !slices.Equal(r.Knobs, wantKnobs) {
		t.Errorf("knobs = %v, want %v", r.Knobs, wantKnobs)
	}
	if r.System.Order.User.Timeout != 100*time.Millisecond || r.System.Order.User.Retries != 2 || r.System.Order.PublishMode != config.PublishCore || r.System.Notification.Idempotent {
		t.Errorf("resilient system = %+v", r.System)
	}
	if e.Variants[2].System != r.System {
		t.Errorf("alias variant differs: %+v", e.Variants[2].System)
	}

	wantFaults := []faults.Fault{
		{Name: "slow-user", Kind: faults.Latency, Target: "user", Direction: faults.Downstream, Toxicity: 0.5, Attrs: map[string]int64{"latency": 300, "jitter": 50}, At: 10 * time.Second, For: 10 * time.Second},
		{Name: "latency-user-1", Kind: faults.Latency, Target: "user", Direction: faults.Upstream, Toxicity: 1, Attrs: map[string]int64{"latency": 100, "jitter": 1}, At: 5 * time.Second, For: 5 * time.Second},
		{Name: "latency-user-2", Kind: faults.Latency, Target: "user", Direction: faults.Upstream, Toxicity: 0.25, Attrs: map[string]int64{"latency": 200, "jitter": 1}, At: 10 * time.Second, For: 5 * time.Second},
		{Name: "latency-user-3", Kind: faults.Latency, Target: "user", Direction: faults.Upstream, Toxicity: 1, Attrs: map[string]int64{"latency": 400, "jitter": 1}, At: 15 * time.Second},
		{Name: "kill-payment", Kind: faults.Kill, Target: "payment", Direction: faults.Both, Toxicity: 1, Attrs: map[string]int64{}, At: 30 * time.Second, For: 2 * time.Second},
		{Name: "slicer-nats-ledger", Kind: faults.Slicer, Target: "nats-ledger", Direction: faults.Downstream, Toxicity: 1, Attrs: map[string]int64{"average_size": 64, "size_variation": 32, "delay": 2000}, At: 40 * time.Second},
		{Name: "partition-payment", Kind: faults.Partition, Target: "payment", Direction: faults.Both, Toxicity: 1, Attrs: map[string]int64{}, At: 40 * time.Second, For: time.Second},
		{Name: "partition-payment-2", Kind: faults.Partition, Target: "payment", Direction: faults.Both, Toxicity: 1, Attrs: map[string]int64{}, At: 45 * time.Second, For: time.Second},
	}
	if len(e.Faults) != len(wantFaults) {
		t.Fatalf("faults = %v", e.Faults)
	}
	for i, f := range e.Faults {
		w := wantFaults[i]
		if f.Name != w.Name || f.Kind != w.Kind || f.Target != w.Target || f.Direction != w.Direction || f.Toxicity != w.Toxicity || f.At != w.At || f.For != w.For || !mapsEqual(f.Attrs, w.Attrs) {
			t.Errorf("fault %d = %+v\nwant %+v", i, f, w)
		}
	}

	if len(e.Hypotheses) != 3 {
		t.Fatalf("hypotheses = %+v", e.Hypotheses)
	}
	h := e.Hypotheses[1]
	if h.Name != "the fault bit" || h.When != During || h.Variant != "naive" || h.Check != "order.latency.p50 >= 300ms" || !h.Abort || h.Line != 31 || h.Col != 13 || h.Expr == nil || h.Expr.String() != h.Check {
		t.Errorf("hypothesis 1 = %+v", h)
	}
	if h := e.Hypotheses[0]; h.Name != h.Check || h.When != Before || h.Variant != "" || h.Abort || h.Line != 28 || h.Col != 29 {
		t.Errorf("hypothesis 0 = %+v", h)
	}

	ph := e.Phases()
	want := Phases{Before: Window{0, 5 * time.Second}, During: Window{5 * time.Second, time.Minute}, After: Window{time.Minute, time.Minute}}
	if ph != want {
		t.Errorf("phases = %+v, want %+v", ph, want)
	}
	if w := e.Window(Always); w != (Window{0, time.Minute}) || !e.Window(After).Empty() || e.Window(During).Empty() {
		t.Errorf("windows: always %v, after %v, during %v", w, e.Window(After), e.Window(During))
	}
}

func equalLoad(a, b Workload) bool {
	return a.Rate == b.Rate && a.Duration == b.Duration && a.Timeout == b.Timeout && a.Drain == b.Drain &&
		a.MaxInFlight == b.MaxInFlight && a.Users == b.Users && a.Mix == b.Mix && slices.Equal(a.Steps, b.Steps)
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestDefaults(t *testing.T) {
	e, err := Parse("d.yaml", []byte(head))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	l := e.Load
	if l.Rate != 10 || l.Duration != 30*time.Second || l.Timeout != 2*time.Second || l.Drain != 5*time.Second || l.MaxInFlight != 1000 || l.Users != 100 || l.Mix != (Mix{PlaceOrder: 1}) || len(l.Steps) != 0 {
		t.Errorf("load defaults = %+v", l)
	}
	if e.Topology != "embedded" || len(e.Faults) != 0 || len(e.Hypotheses) != 0 {
		t.Errorf("defaults: topology %q, faults %v, hypotheses %v", e.Topology, e.Faults, e.Hypotheses)
	}
	// Without faults the whole run is before.
	if ph := e.Phases(); ph.Before != (Window{0, 30 * time.Second}) || !ph.During.Empty() || !ph.After.Empty() {
		t.Errorf("phases without faults = %+v", ph)
	}
	// The default seed is derived from the name: stable, and different
	// for another name.
	e2, err := Parse("d.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	e3, err := Parse("d.yaml", []byte(strings.Replace(head, "name: x", "name: y", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seed == 0 || e.Seed != e2.Seed || e.Seed == e3.Seed || e.Seed < 0 {
		t.Errorf("seeds %d %d %d", e.Seed, e2.Seed, e3.Seed)
	}
}

// TestCatalogue loads every experiment of the repository.
func TestCatalogue(t *testing.T) {
	files, err := LoadDir("..")
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if !slices.Contains(files, filepath.Join("..", "latency.yaml")) {
		t.Errorf("LoadDir = %v, want latency.yaml among them", files)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestLatencyFlagship(t *testing.T) {
	e, err := Load(filepath.Join("..", "latency.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if e.Load.Rate != 50 || e.Load.Duration != 30*time.Second {
		t.Errorf("load = %+v", e.Load)
	}
	naive, ok := e.Variant("naive")
	if !ok || naive.System.Order.User.Timeout != 0 || naive.System.Order.User.Breaker || naive.System.Order.User.Retries != 0 {
		t.Errorf("naive = %+v", naive)
	}
	res, ok := e.Variant("resilient")
	if !ok || res.System.Order.User.Timeout != 100*time.Millisecond || res.System.Order.User.Fallback != config.FallbackCachedProfile {
		t.Errorf("resilient = %+v", res)
	}
	if len(e.Faults) != 1 {
		t.Fatalf("faults = %v", e.Faults)
	}
	f := e.Faults[0]
	if f.Kind != faults.Latency || f.Target != faults.ProxyUser || f.Direction != faults.Downstream || f.At != 10*time.Second || f.For != 10*time.Second || f.Attrs["latency"] != 300 || f.Attrs["jitter"] != 50 {
		t.Errorf("fault = %+v", f)
	}
	ph := e.Phases()
	if ph.Before != (Window{0, 10 * time.Second}) || ph.During != (Window{10 * time.Second, 20 * time.Second}) || ph.After != (Window{20 * time.Second, 30 * time.Second}) {
		t.Errorf("phases = %+v", ph)
	}
	var checks []string
	for _, h := range e.Hypotheses {
		checks = append(checks, string(h.When)+"/"+h.Variant+": "+h.Check)
	}
	for _, want := range []string{
		"before/: order.success_rate >= 99%",
		"during/naive: order.latency.p50 >= 300ms",
		"during/resilient: order.latency.p99 < before.order.latency.p99 + 200ms and order.success_rate >= 99%",
		"always/: events.lost == 0",
		"during/: trace.async_isolated",
		"during/naive: trace.critical_path(order.PlaceOrder) contains user.GetUser",
	} {
		if !slices.Contains(checks, want) {
			t.Errorf("no hypothesis %q in %q", want, checks)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := Load(missing)
	if err == nil || err.Error() != missing+": no such file" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
	var errs Errors
	if errors.As(err, &errs) {
		t.Errorf("an I/O error is not Errors")
	}
	if _, err := LoadDir(dir); err == nil || err.Error() != dir+": no experiment files (*.yaml)" {
		t.Errorf("LoadDir(empty) = %v", err)
	}
	for _, name := range []string{"b.yaml", "a.yaml", "schema.json", "c.yml", "notes.md"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(head), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	files, err := LoadDir(dir)
	if err != nil || !slices.Equal(files, []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}) {
		t.Errorf("LoadDir = %v, %v", files, err)
	}
	if _, err := LoadDir(filepath.Join(dir, "none")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDir(missing) = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if !errors.As(err, &errs) || len(errs) != 4 || errs[0].File != bad {
		t.Errorf("Load(bad) = %v", err)
	}
}

// checkSafe fails when a loaded experiment is outside the documented
// safety limits: load rates, durations and counts, fault schedules,
// directions, toxicities and attribute bounds, expressions.
func checkSafe(t *testing.T, e *Experiment) {
	t.Helper()
	l := e.Load
	if e == nil || len(e.Variants) == 0 || l.Duration <= 0 {
		t.Fatalf("valid experiment without variants or duration: %+v", e)
	}
	if l.Rate <= 0 || l.Rate > MaxLoadRate || l.Duration > MaxLoadDuration || l.Timeout <= 0 || l.Timeout > MaxLoadTimeout ||
		l.Drain < 0 || l.Drain > MaxLoadDrain || l.MaxInFlight < 1 || l.Users < 1 || l.Retries < 0 || l.RetryBackoff < 0 {
		t.Fatalf("load outside the limits: %+v", l)
	}
	for _, s := range l.Steps {
		if s.Rate < 0 || s.Rate > MaxLoadRate || s.At < 0 || s.At >= l.Duration {
			t.Fatalf("rate step outside the limits: %+v", s)
		}
	}
	names := map[string]bool{}
	for _, f := range e.Faults {
		if f.At < 0 || f.For < 0 || f.At+f.For > l.Duration || f.At >= l.Duration {
			t.Fatalf("fault outside the load: %+v", f)
		}
		if names[f.Name] || f.Name == "" {
			t.Fatalf("fault name %q empty or taken twice", f.Name)
		}
		names[f.Name] = true
		spec, ok := faults.Lookup(f.Kind)
		if !ok {
			t.Fatalf("unknown kind %q", f.Kind)
		}
		if f.Toxicity <= 0 || f.Toxicity > 1 || !slices.Contains(directions, string(f.Direction)) {
			t.Fatalf("fault %+v: toxicity or direction out of range", f)
		}
		if len(f.Attrs) != len(spec.Attrs) {
			t.Fatalf("fault %+v: attributes %v, want one per attribute of the kind", f, f.Attrs)
		}
		if name, err := spec.CheckAttrs(f.Attrs); err != nil {
			t.Fatalf("fault %+v: %s: %v", f, name, err)
		}
	}
	for _, h := range e.Hypotheses {
		if h.Expr == nil || len(h.Check) > check.MaxExprLen || h.Line < 1 || h.Col < 1 {
			t.Fatalf("hypothesis %+v", h)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(head))
	f.Add([]byte(""))
	f.Add([]byte("- a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(head + "faults:\n  - { at: 5s, target: user, kind: latency, steps: [ {for: 5s, latency: 100ms}, {latency: 2ms} ] }\nhypotheses:\n  - { when: during, check: \"order.latency.p99 < 2 * before.order.latency.p99\" }\n"))
	f.Add([]byte(head + "faults:\n  - { at: 5s, for: 1s, target: order, kind: kill }\n"))
	f.Add([]byte(head + "faults:\n  - { at: 1s, target: user, kind: slicer, average_size: 16, size_variation: 8, delay: 1ms, direction: up }\n"))
	f.Add([]byte(head + "faults:\n  - { at: 1s, target: user, kind: bandwidth, rate: 10000000 }\n"))
	f.Add([]byte(head + "hypotheses:\n  - when: before\n    check: |\n      events.lost == 0 and\n      order.bogus > 1\n"))
	f.Add([]byte(head + "hypotheses:\n  - { when: before, check: \"events.lost == 0 \\x61nd\n   (order.success_rate >= 99%)\" }\n"))
	f.Add([]byte(head + "faults:\n  - at: 1s\n    target: user\n   kind: latency\n"))
	f.Add([]byte("name: x\x00\n\xff"))
	if data, err := os.ReadFile(filepath.Join("..", "latency.yaml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("f.yaml", data)
		if err == nil {
			checkSafe(t, e)
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > MaxErrors+1 {
			t.Fatalf("error %T %v is not a non-empty Errors of at most %d", err, err, MaxErrors+1)
		}
		src := newSource(data)
		for i, e := range errs {
			if e.Line < 1 || e.Col < 1 || e.Msg == "" {
				t.Fatalf("bad error %+v", e)
			}
			// The position is in the file: a line of it, a column of
			// that line or just past its end.
			if e.Line > len(src.lines) || e.Col > utf8.RuneCountInString(src.line(e.Line))+2 {
				t.Fatalf("error %v outside the file (%d lines; line %d is %q)", e, len(src.lines), e.Line, src.line(e.Line))
			}
			if len(e.Msg) > maxMessage+len("…") || len(e.Hint) > maxMessage+len("…") {
				t.Fatalf("error of %d bytes: %.300v", len(e.Error()), e)
			}
			if i > 0 && (e.Line < errs[i-1].Line || e.Line == errs[i-1].Line && e.Col < errs[i-1].Col) {
				t.Fatalf("errors not sorted: %v", errs)
			}
		}
	})
}
