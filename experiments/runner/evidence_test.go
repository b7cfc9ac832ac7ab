package runner

import (
	"github.com/fallacies/fallacies/experiments/metrics"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/tracing"
)

// TestTraceMetricsNeedTraces evaluates every metric computed from traces,
// and its negation, in a phase where no trace was captured: each fails
// with "no value", as a --target run whose system exports its spans
// elsewhere would. The same metrics in a phase with a trace read values,
// so that the failure is the missing evidence and nothing else.
func TestTraceMetricsNeedTraces(t *testing.T) {
	exp := mustParse(t, windowsRun) // before [0, 2 s), during [2 s, 7 s)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	root := tracing.Span{TraceID: "t1", SpanID: "s1", Name: tracing.PlaceOrderSpan, Kind: tracing.KindServer,
		Service: "order", Start: start.Add(3 * time.Second), End: start.Add(3*time.Second + time.Millisecond)}
	ts := traceSet{orders: map[string][]tracing.Trace{
		"during": {{ID: "t1", Root: root, Spans: []tracing.Span{root}}},
		"always": {{ID: "t1", Root: root, Spans: []tracing.Span{root}}},
	}}
	m := metrics.Compute(measured{exp: exp, start: start, load: &load.Result{Start: start}, traces: ts}.run())

	var n int
	for _, info := range metrics.All() {
		if !info.Traces {
			continue
		}
		n++
		name := strings.NewReplacer("<link>", "payment").Replace(info.Name)
		if info.Arg != "" {
			name += "(order.PlaceOrder)"
		}
		var tests []string
		switch info.Type {
		case check.TypeBool:
			tests = []string{name, "not " + name}
		case check.TypeString:
			tests = []string{name + " == none", name + " != none"}
		case check.TypeSet:
			tests = []string{name + " contains order.PlaceOrder", name + " not contains order.PlaceOrder"}
		case check.TypeDuration:
			tests = []string{name + " >= 0", name + " < 0"}
		default:
			tests = []string{name + " >= 0", name + " < 0", name + " == 0"}
		}
		for _, src := range tests {
			e, err := check.ParseExpr(src, metrics.Vocabulary)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			for _, phase := range []string{"before", "after"} {
				ok, observed, err := check.Eval(e, m.Env(phase))
				if ok || err == nil || !strings.Contains(err.Error(), "no value") {
					t.Errorf("%s in %s, without traces: ok %v, observed %q, err %v; want no value", src, phase, ok, observed, err)
				}
			}
		}
		bare, _, _ := strings.Cut(name, "(")
		for _, phase := range []string{"before", "after"} {
			if v, ok := m.Scalars()[phase+"."+bare]; ok {
				t.Errorf("report.json has %s.%s = %v without traces", phase, bare, v)
			}
		}
	}
	if n < 10 {
		t.Fatalf("%d trace metrics in the vocabulary, want the trace family and more", n)
	}
	// With a trace, the trace family reads.
	for _, src := range []string{"trace.count == 1", "trace.async_isolated", "trace.critical_path(order.PlaceOrder) contains order.PlaceOrder"} {
		e, err := check.ParseExpr(src, metrics.Vocabulary)
		if err != nil {
			t.Fatal(err)
		}
		if ok, observed, err := check.Eval(e, m.Env("during")); !ok || err != nil {
			t.Errorf("%s during, with a trace: observed %q, err %v", src, observed, err)
		}
	}
	// A hypothesis reads the same: failed, "no value".
	h := evaluate(mustParse(t, windowsRun+"hypotheses:\n  - { when: before, check: \"trace.async_isolated\" }\n"), "naive", true, m, "")
	if len(h) != 1 || h[0].Passed || !strings.Contains(h[0].Observed, "no value") {
		t.Errorf("hypothesis without traces: %+v", h)
	}
}
