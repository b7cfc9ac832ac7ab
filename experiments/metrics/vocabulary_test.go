package metrics

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/check"
)

func TestLookup(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pattern string
		typ     check.MetricType
	}{
		{"breaker.user.opened", "breaker.<link>.opened", check.TypeCount},
		{"breaker.payment.recovery_time", "breaker.<link>.recovery_time", check.TypeDuration},
		{"get_order.errors.UNAVAILABLE", "<op>.errors.<CODE>", check.TypeCount},
		{"ledger.lag.p50", "<consumer>.lag.p50", check.TypeDuration},
		{"sniffer.nats-ledger.plaintext", "sniffer.<proxy>.plaintext", check.TypeBool},
		{"trace.critical_path", "trace.critical_path", check.TypeSet},
		{"events.lost", "events.lost", check.TypeCount},
	} {
		m, ok := Lookup(tt.name)
		if !ok || m.Name != tt.pattern || m.Type != tt.typ {
			t.Errorf("Lookup(%q) = %+v, %v; want %s %s", tt.name, m, ok, tt.pattern, tt.typ)
		}
	}
	for _, name := range []string{"breaker.order.opened", "order.errors.DeadlineExceeded", "sniffer.nats.plaintext", "order", "", "order.latency.p99.x"} {
		if m, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", name, m)
		}
	}
	// Every concrete expansion is found, and every vocabulary entry parses.
	for _, n := range ConcreteNames() {
		if _, ok := Lookup(n); !ok {
			t.Errorf("expansion %q not found", n)
		}
	}
}

func TestVocabularyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/experiments.md")
	if err != nil {
		t.Fatalf("read format reference: %v", err)
	}
	seen := map[string]bool{}
	for _, m := range All() {
		name := m.Name
		if m.Arg != "" {
			name += "(" + m.Arg + ")"
		}
		if seen[name] {
			t.Errorf("vocabulary lists %s twice", name)
		}
		seen[name] = true
		if m.Doc == "" {
			t.Errorf("%s has no doc", name)
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/experiments.md does not document `%s`", name)
		}
		// Its table row says whether it is a phase's or the whole run's.
		window := "phase"
		if m.WholeRun {
			window = "whole run"
		}
		row := "| `" + name + "` | " + string(m.Type) + " | " + window + " | "
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/experiments.md has no row starting %q", row)
		}
	}
}

// TestCheckWhen binds every whole-run metric of the vocabulary to each
// phase, by when and by prefix, and every phase metric too: only the
// whole-run ones bound to a phase are refused, at their column.
func TestCheckWhen(t *testing.T) {
	for _, name := range ConcreteNames() {
		info, _ := Lookup(name)
		metric := name
		if info.Arg != "" {
			metric += "(order.PlaceOrder)"
		}
		const lead = "order.errors == 0 and "
		for _, when := range []string{"before", "during", "after", "always"} {
			for _, prefix := range []string{"", "before.", "during.", "after."} {
				src := lead + exprSample(prefix+metric, info)
				e, err := check.ParseExpr(src, Vocabulary)
				if err != nil {
					t.Fatalf("%s: %v", src, err)
				}
				err = check.CheckWhen(e, when)
				bound := prefix != "" || when != check.WhenAlways
				if !info.WholeRun || !bound {
					if err != nil {
						t.Errorf("when %s, %s: refused: %v", when, src, err)
					}
					continue
				}
				var xe *check.ExprError
				if !errors.As(err, &xe) {
					t.Errorf("when %s, %s: accepted, want refused", when, src)
					continue
				}
				if want := len(lead) + 1; xe.Col != want {
					t.Errorf("when %s, %s: col %d, want %d", when, src, xe.Col, want)
				}
				if !strings.Contains(xe.Hint, "when: always") || !strings.Contains(xe.Msg, name) {
					t.Errorf("when %s, %s: %v, want the metric named and when: always as the hint", when, src, err)
				}
			}
		}
	}
}

// exprSample is a test of metric that parses for its type.
func exprSample(metric string, info check.MetricInfo) string {
	switch info.Type {
	case check.TypeBool:
		return metric
	case check.TypeString:
		return metric + " == x"
	case check.TypeSet:
		return metric + " contains x"
	}
	return metric + " >= 0"
}
