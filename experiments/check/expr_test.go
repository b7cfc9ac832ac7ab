package check_test

import (
	"errors"
	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/metrics"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseExprGood(t *testing.T) {
	tests := []struct {
		in      string
		str     string // canonical form; "" means same as in
		metrics []string
	}{
		{in: "order.success_rate >= 99%", metrics: []string{"order.success_rate"}},
		{in: "order.success_rate >= 99.5%", metrics: []string{"order.success_rate"}},
		{in: "order.success_rate >= 0.99", metrics: []string{"order.success_rate"}},
		{in: "order.latency.p50>=300ms", str: "order.latency.p50 >= 300ms", metrics: []string{"order.latency.p50"}},
		{in: "get_order.latency.p999 < 1.5s", metrics: []string{"get_order.latency.p999"}},
		{in: "order.latency.max <= 300us", metrics: []string{"order.latency.max"}},
		{in: "order.latency.mean < 300µs", metrics: []string{"order.latency.mean"}},
		{in: "order.latency.p99 < 1m30s", metrics: []string{"order.latency.p99"}},
		{in: "breaker.user.recovery_time == 0", metrics: []string{"breaker.user.recovery_time"}},
		{in: "events.lost == 0", metrics: []string{"events.lost"}},
		{in: "order.errors.DEADLINE_EXCEEDED > 0", metrics: []string{"order.errors.DEADLINE_EXCEEDED"}},
		{in: "order.throughput >= 45", metrics: []string{"order.throughput"}},
		{in: "order.throughput >= 45/s", metrics: []string{"order.throughput"}},
		{in: "order.throughput >= 2700/m", metrics: []string{"order.throughput"}},
		{in: "retry.payment.amplification <= 1.5", metrics: []string{"retry.payment.amplification"}},
		{in: "trace.async_isolated", metrics: []string{"trace.async_isolated"}},
		{in: "not trace.async_isolated", metrics: []string{"trace.async_isolated"}},
		{in: "trace.async_isolated == true", metrics: []string{"trace.async_isolated"}},
		{in: "sniffer.nats-order.plaintext != false", metrics: []string{"sniffer.nats-order.plaintext"}},
		{in: "trace.error_origin == payment", metrics: []string{"trace.error_origin"}},
		{in: "trace.error_origin != 'payment'", str: `trace.error_origin != "payment"`, metrics: []string{"trace.error_origin"}},
		{in: "trace.critical_path(order.PlaceOrder) contains user.GetUser", metrics: []string{"trace.critical_path"}},
		{in: "trace.critical_path(order.PlaceOrder) not contains notification.Apply", metrics: []string{"trace.critical_path"}},
		{in: `trace.critical_path("order.PlaceOrder") contains "user.GetUser"`, str: "trace.critical_path(order.PlaceOrder) contains user.GetUser", metrics: []string{"trace.critical_path"}},
		{in: "order.latency.p99 < 2 * before.order.latency.p99", metrics: []string{"order.latency.p99", "before.order.latency.p99"}},
		{in: "order.latency.p99 >= before.order.latency.p99 + 200ms", metrics: []string{"order.latency.p99", "before.order.latency.p99"}},
		{in: "order.latency.p99 >= 1.5*before.order.latency.p99+0.2s", str: "order.latency.p99 >= 1.5 * before.order.latency.p99 + 0.2s", metrics: []string{"order.latency.p99", "before.order.latency.p99"}},
		{in: "after.order.latency.p99 <= before.order.latency.p99", metrics: []string{"after.order.latency.p99", "before.order.latency.p99"}},
		{in: "order.success_rate >= 99% and events.lost == 0", metrics: []string{"order.success_rate", "events.lost"}},
		{in: "(order.errors == 0 or breaker.user.opened > 0) and not trace.async_isolated", metrics: []string{"order.errors", "breaker.user.opened", "trace.async_isolated"}},
		{in: "events.lost == 0 and events.lost == 0", metrics: []string{"events.lost"}},
		{in: "notification.lag.p99 < 1s or ledger.drain_time < 5s", metrics: []string{"notification.lag.p99", "ledger.drain_time"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := check.ParseExpr(tt.in, metrics.Vocabulary)
			if err != nil {
				t.Fatalf("check.ParseExpr: %v", err)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if got := e.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if got := e.Metrics(); !slices.Equal(got, tt.metrics) {
				t.Errorf("Metrics() = %q, want %q", got, tt.metrics)
			}
			// The canonical form parses to itself.
			e2, err := check.ParseExpr(e.String(), metrics.Vocabulary)
			if err != nil {
				t.Fatalf("reparse %q: %v", e.String(), err)
			}
			if e2.String() != e.String() {
				t.Errorf("reparse: %q != %q", e2.String(), e.String())
			}
		})
	}
}

func TestParseExprBad(t *testing.T) {
	tests := []struct {
		in   string
		col  int
		msg  string
		hint string
	}{
		{"", 1, "empty expression", "write e.g. order.success_rate >= 99%"},
		{"   ", 4, "empty expression", "write e.g. order.success_rate >= 99%"},
		{"order.latency.p99 < 150", 21, "order.latency.p99 is a duration: write 150ms", ""},
		{"order.latency.p99 < 99%", 21, "order.latency.p99 is a duration: write e.g. 150ms", ""},
		{"order.success_rate >= 99", 23, "order.success_rate is a ratio: write 99% or 0.99", ""},
		{"order.success_rate >= 150ms", 23, "order.success_rate is a ratio: write e.g. 99% or 0.99", ""},
		{"order.success_rate >= 120%", 23, "order.success_rate is a ratio: 120% is not between 0% and 100%", ""},
		{"events.lost == 0%", 16, "events.lost is a count: write a number, e.g. 10", ""},
		{"order.throughput > 10ms", 20, "order.throughput is a rate: write e.g. 45/s", ""},
		{"order.throughput > 10/d", 20, `"10/d" is not a rate`, "write e.g. 45/s or 2700/m"},
		{"retry.user.amplification < 2s", 28, "retry.user.amplification is a number: write e.g. 1.5", ""},
		{"order.latency.p99 < 15xs", 21, `"15xs" is not a number or a duration`, "write e.g. 0.5, 99%, 150ms or 45/s"},
		{"order.latency.p99", 1, "order.latency.p99 is a duration: compare it with something", "write e.g. order.latency.p99 < 150ms"},
		{"order.latncy.p99 < 150ms", 1, "unknown metric order.latncy.p99", "did you mean order.latency.p99, order.latency.p90 or order.latency.p999?"},
		{"before.order.latncy.p99 < 150ms", 1, "unknown metric order.latncy.p99", "did you mean order.latency.p99, order.latency.p90 or order.latency.p999?"},
		{"breaker.usr.opened > 0", 1, "unknown metric breaker.usr.opened", "did you mean breaker.user.opened, breaker.user.closed or breaker.user.rejected?"},
		{"order.errors.DEADLINE > 0", 1, "unknown metric order.errors.DEADLINE", "did you mean order.errors.DEADLINE_EXCEEDED, order.errors.DATA_LOSS or order.errors.ABORTED?"},
		{"zzz > 1", 1, "unknown metric zzz", "the metrics are listed in docs/experiments.md"},
		{"order.latency < 1s", 1, "unknown metric order.latency", "did you mean order.latency.max, order.latency.mean or order.latency.p50?"},
		{"notification.lagg.p99 < 1s", 1, "unknown metric notification.lagg.p99", "did you mean notification.lag.p99, notification.lag.p50 or notification.lag.max?"},
		{"trace.foo > 1", 1, "unknown metric trace.foo", "known: trace.critical_path(SPAN), trace.error_origin, trace.error_inherited, trace.retry_amplification.p50, trace.retry_amplification.p99, trace.retry_amplification.max, trace.async_isolated, trace.count"},
		{"trace.async_isolated < 1", 22, "trace.async_isolated is a boolean: < does not apply", "write == or !="},
		{"trace.async_isolated == 1", 25, "trace.async_isolated is a boolean: compare it with true or false", ""},
		{"trace.async_isolated == yes", 25, "trace.async_isolated is a boolean: compare it with true or false", "or write it bare: trace.async_isolated"},
		{"trace.error_origin > payment", 20, "trace.error_origin is a string: > does not apply", "write == or !="},
		{"trace.error_origin == 3", 23, "trace.error_origin is a string: write a name, e.g. payment", ""},
		{"trace.critical_path(order.PlaceOrder) == x", 39, "trace.critical_path is a set: == does not apply", "write e.g. trace.critical_path(order.PlaceOrder) contains user.GetUser"},
		{"trace.critical_path contains x", 1, "trace.critical_path needs an argument", "write e.g. trace.critical_path(order.PlaceOrder)"},
		{"trace.critical_path(order.PlaceOrder contains x", 38, `expected ) but found "contains"`, "trace.critical_path takes one argument"},
		{"trace.critical_path() contains x", 21, `expected the SPAN argument of trace.critical_path but found ")"`, "write e.g. trace.critical_path(order.PlaceOrder)"},
		{"events.lost(x) == 0", 12, "events.lost takes no argument", ""},
		{"events.lost contains x", 13, "events.lost is a count: contains needs a set", ""},
		{"trace.critical_path(order.PlaceOrder) contains", 47, "expected a name after contains but found end of expression", "write e.g. contains user.GetUser"},
		{"events.lost = 0", 13, `"=" is not an operator`, "write == to compare"},
		{"events.lost == 0 && events.duplicated == 0", 18, `"&" is not an operator`, "write and"},
		{"events.lost == 0 || x", 18, `"|" is not an operator`, "write or"},
		{"!trace.async_isolated", 1, `"!" is not an operator`, "write not, or != to compare"},
		{"events.lost == 0 events.duplicated == 0", 18, `unexpected "events.duplicated"`, "expected and, or, or the end of the expression"},
		{"(events.lost == 0", 18, "expected ) but found end of expression", "the ( at column 1 is not closed"},
		{"events.lost == 0)", 17, `unexpected ")"`, "expected and, or, or the end of the expression"},
		{"events.lost ==", 15, "expected a value after == but the expression ends", "write e.g. events.lost == 0"},
		{"events.lost == and", 16, `expected a value but found "and"`, "write e.g. events.lost == 0"},
		{"events.lost == 0 and", 21, "expected a metric but the expression ends", ""},
		{"and events.lost == 0", 1, `expected a metric but found "and"`, ""},
		{"events.lost == 'x", 16, "unterminated string", "close it with '"},
		{"events.lost == 'x'", 16, "events.lost is a count: a quoted string does not apply", "write e.g. events.lost == 0"},
		{"order.latency.p99 < 2 * events.lost", 25, "order.latency.p99 is a duration but events.lost is a count", "compare metrics of one type"},
		{"order.latency.p99 < 2 * before.order.latncy.p99", 25, "unknown metric order.latncy.p99", "did you mean order.latency.p99, order.latency.p90 or order.latency.p999?"},
		{"trace.error_origin == 2 * x", 23, "trace.error_origin is a string: write a name, e.g. payment", ""},
		{"events.lost == 2x * events.lost", 16, `"2x" is not a plain number`, "a factor is written e.g. 2 * before.order.latency.p99"},
		{"order.latency.p99 >= before.order.latency.p99 + x", 49, `expected a value after + but found "x"`, "an offset is written e.g. before.order.latency.p99 + 200ms"},
		{"order.latency.p99 >= before.order.latency.p99 + 200", 49, "order.latency.p99 is a duration: write 200ms", ""},
		{"events.lost == 0 + 1", 18, `unexpected "+"`, "expected and, or, or the end of the expression"},
		{"events.lost == $", 16, `unexpected character '$'`, ""},
		{"événements == 1", 1, `unexpected character 'é'`, ""},
		{"order.latency.p99 < 5µs and x", 29, "unknown metric x", "the metrics are listed in docs/experiments.md"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := check.ParseExpr(tt.in, metrics.Vocabulary)
			if err == nil {
				t.Fatalf("check.ParseExpr(%q, metrics.Vocabulary) = %v, want an error", tt.in, e)
			}
			var ee *check.ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %v is not an *check.ExprError", err, err)
			}
			if ee.Col != tt.col || ee.Msg != tt.msg || ee.Hint != tt.hint {
				t.Errorf("got col %d msg %q hint %q\nwant col %d msg %q hint %q", ee.Col, ee.Msg, ee.Hint, tt.col, tt.msg, tt.hint)
			}
		})
	}
}

type mapEnv map[string]check.Value

func (m mapEnv) Lookup(metric, arg string) (check.Value, bool) {
	if arg != "" {
		metric += "(" + arg + ")"
	}
	v, ok := m[metric]
	return v, ok
}

func TestEval(t *testing.T) {
	env := mapEnv{
		"order.latency.p99":                     check.DurationValue(312400 * time.Microsecond),
		"order.latency.p50":                     check.DurationValue(300 * time.Millisecond),
		"before.order.latency.p99":              check.DurationValue(100 * time.Millisecond),
		"order.success_rate":                    check.NumberValue(0.992),
		"events.lost":                           check.NumberValue(0),
		"order.throughput":                      check.NumberValue(48.46),
		"trace.async_isolated":                  check.BoolValue(true),
		"trace.error_origin":                    check.StringValue("payment"),
		"trace.critical_path(order.PlaceOrder)": check.SetValue("order.PlaceOrder", "user.GetUser"),
		"order.errors":                          check.StringValue("wrong kind"),
		"notification.lag.p99":                  check.DurationValue(800 * time.Nanosecond),
		"retry.user.amplification":              check.NumberValue(1.23456),
		"get_order.latency.p99":                 check.NumberValue(math.NaN()),
	}
	tests := []struct {
		expr     string
		ok       bool
		observed string
		err      string
	}{
		{"order.latency.p99 < 150ms", false, "order.latency.p99 = 312.4ms", ""},
		{"order.latency.p99 < 1s", true, "order.latency.p99 = 312.4ms", ""},
		{"order.latency.p50 >= 300ms", true, "order.latency.p50 = 300ms", ""},
		{"order.latency.p50 == 0.3s", true, "order.latency.p50 = 300ms", ""},
		{"order.success_rate >= 99%", true, "order.success_rate = 99.2%", ""},
		{"order.success_rate >= 99.5%", false, "order.success_rate = 99.2%", ""},
		{"order.success_rate > 0.99", true, "order.success_rate = 99.2%", ""},
		{"events.lost == 0", true, "events.lost = 0", ""},
		{"events.lost != 0", false, "events.lost = 0", ""},
		{"order.throughput >= 45/s", true, "order.throughput = 48.5/s", ""},
		{"order.throughput >= 3000/m", false, "order.throughput = 48.5/s", ""},
		{"trace.async_isolated", true, "trace.async_isolated = true", ""},
		{"not trace.async_isolated", false, "trace.async_isolated = true", ""},
		{"trace.async_isolated == false", false, "trace.async_isolated = true", ""},
		{"trace.error_origin == payment", true, "trace.error_origin = payment", ""},
		{"trace.error_origin != payment", false, "trace.error_origin = payment", ""},
		{"trace.critical_path(order.PlaceOrder) contains user.GetUser", true, "trace.critical_path(order.PlaceOrder) = [order.PlaceOrder, user.GetUser]", ""},
		{"trace.critical_path(order.PlaceOrder) not contains user.GetUser", false, "trace.critical_path(order.PlaceOrder) = [order.PlaceOrder, user.GetUser]", ""},
		{"trace.critical_path(order.PlaceOrder) contains ledger.Apply", false, "trace.critical_path(order.PlaceOrder) = [order.PlaceOrder, user.GetUser]", ""},
		{"order.latency.p99 < 2 * before.order.latency.p99", false, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"order.latency.p99 < 3.5 * before.order.latency.p99", true, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"order.latency.p99 > before.order.latency.p99", true, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"order.latency.p99 >= before.order.latency.p99 + 200ms", true, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"order.latency.p99 >= before.order.latency.p99 + 250ms", false, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"order.latency.p99 >= 2 * before.order.latency.p99 + 0.1s", true, "order.latency.p99 = 312.4ms; before.order.latency.p99 = 100ms", ""},
		{"events.lost == 0 and order.latency.p99 < 150ms", false, "events.lost = 0; order.latency.p99 = 312.4ms", ""},
		{"events.lost == 0 or order.latency.p99 < 150ms", true, "events.lost = 0; order.latency.p99 = 312.4ms", ""},
		{"not (events.lost == 0 and trace.async_isolated)", false, "events.lost = 0; trace.async_isolated = true", ""},
		{"notification.lag.p99 < 1ms", true, "notification.lag.p99 = 0.8µs", ""},
		{"retry.user.amplification < 1.5", true, "retry.user.amplification = 1.235", ""},
		{"get_order.latency.p99 < 1s", false, "get_order.latency.p99 = NaN", ""},
		{"events.duplicated == 0", false, "events.duplicated = (no data)", "metric events.duplicated: no value"},
		{"order.errors == 0", false, "", "metric order.errors: value is a string, want a number"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := check.ParseExpr(tt.expr, metrics.Vocabulary)
			if err != nil {
				t.Fatalf("check.ParseExpr: %v", err)
			}
			ok, observed, err := check.Eval(e, env)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if ok != tt.ok || observed != tt.observed || gotErr != tt.err {
				t.Errorf("check.Eval = %v, %q, %q; want %v, %q, %q", ok, observed, gotErr, tt.ok, tt.observed, tt.err)
			}
		})
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"order.success_rate >= 99%",
		"order.latency.p99 < 2 * before.order.latency.p99",
		"order.latency.p99 >= before.order.latency.p99 + 200ms",
		"trace.critical_path(order.PlaceOrder) contains user.GetUser",
		"not (trace.async_isolated or events.lost == 0) and trace.error_origin != 'payment'",
		"order.throughput >= 2700/m",
		"order.latency.p99 < 1m30µs",
		"(((", "'", "-.5", "a.b.c(", "events.lost == -1e309",
		strings.Repeat("(", 40) + "events.lost == 0" + strings.Repeat(")", 40),
		strings.Repeat("not ", 40) + "trace.async_isolated",
		"order.latency.p99 < 2 * before.order.latency.p99 and (events.lost == 0 or not trace.async_isolated)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := check.ParseExpr(s, metrics.Vocabulary)
		if err != nil {
			var ee *check.ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T is not an *check.ExprError", err)
			}
			if ee.Col < 1 || ee.Col > len([]rune(s))+1 || ee.Msg == "" {
				t.Fatalf("col %d out of range for %q, or no message: %v", ee.Col, s, ee)
			}
			return
		}
		// What parses is within the documented bounds.
		if len(s) > check.MaxExprLen {
			t.Fatalf("accepted %d bytes, more than %d", len(s), check.MaxExprLen)
		}
		if len(e.Metrics()) == 0 {
			t.Fatalf("%q reads no metric", s)
		}
		// A parsed expression prints to a canonical form that parses to itself.
		e2, err := check.ParseExpr(e.String(), metrics.Vocabulary)
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", e.String(), s, err)
		}
		if e2.String() != e.String() {
			t.Fatalf("reparse %q != %q", e2.String(), e.String())
		}
		_, _, _ = check.Eval(e, mapEnv{})
	})
}

// TestParseExprBounds: deep nesting and long expressions are refused with
// a clear error at the place they cross the bound, not a stack overflow
// or minutes of work; at the bound they parse.
func TestParseExprBounds(t *testing.T) {
	atom := "events.lost == 0"
	nest := func(n int, open string) string {
		return strings.Repeat(open, n) + atom + strings.Repeat(")", strings.Count(open, "(")*n)
	}
	tests := []struct {
		name    string
		src     string
		wantCol int // 0: valid
		wantMsg string
	}{
		{"parens at the bound", nest(check.MaxExprDepth, "("), 0, ""},
		{"parens past the bound", nest(check.MaxExprDepth+1, "("), check.MaxExprDepth + 1, "nested more than 32 deep"},
		{"a million parens", nest(1000, "("), check.MaxExprDepth + 1, "nested more than 32 deep"},
		{"nots past the bound", nest(check.MaxExprDepth+1, "not "), 4*check.MaxExprDepth + 1, "nested more than 32 deep"},
		{"mixed", nest(20, "not ("), 5*16 + 1, "nested more than 32 deep"},
		{"too long", strings.Repeat(atom+" and ", 300) + atom, check.MaxExprLen + 1, "more than the limit of 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := check.ParseExpr(tt.src, metrics.Vocabulary)
			if tt.wantCol == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ee *check.ExprError
			if !errors.As(err, &ee) || ee.Col != tt.wantCol || !strings.Contains(ee.Msg, tt.wantMsg) {
				t.Fatalf("err = %v, want col %d: %s", err, tt.wantCol, tt.wantMsg)
			}
		})
	}
}
