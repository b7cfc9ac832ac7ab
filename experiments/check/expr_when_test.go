package check

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckWhen binds every whole-run metric of the vocabulary to each
// phase, by when and by prefix, and every phase metric too: only the
// whole-run ones bound to a phase are refused, at their column.
func TestCheckWhen(t *testing.T) {
	for _, name := range exprConcreteNames() {
		info, _ := LookupMetric(name)
		metric := name
		if info.Arg != "" {
			metric += "(order.PlaceOrder)"
		}
		const lead = "order.errors == 0 and "
		for _, when := range []string{"before", "during", "after", "always"} {
			for _, prefix := range []string{"", "before.", "during.", "after."} {
				src := lead + exprSample(prefix+metric, info)
				e, err := ParseExpr(src)
				if err != nil {
					t.Fatalf("%s: %v", src, err)
				}
				err = CheckWhen(e, when)
				bound := prefix != "" || when != WhenAlways
				if !info.WholeRun || !bound {
					if err != nil {
						t.Errorf("when %s, %s: refused: %v", when, src, err)
					}
					continue
				}
				var xe *ExprError
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
func exprSample(metric string, info MetricInfo) string {
	switch info.Type {
	case TypeBool:
		return metric
	case TypeString:
		return metric + " == x"
	case TypeSet:
		return metric + " contains x"
	}
	return metric + " >= 0"
}
