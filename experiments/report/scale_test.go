package report

import (
	"slices"
	"testing"
)

func TestNiceStep(t *testing.T) {
	tests := []struct {
		span float64
		n    int
		want float64
	}{
		{30, 6, 5}, {60, 6, 10}, {120, 6, 20}, {100, 4, 25}, {7, 4, 2}, {0.9, 4, 0.25}, {0, 4, 1},
	}
	for _, tt := range tests {
		if got := niceStep(tt.span, tt.n); got != tt.want {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tt.span, tt.n, got, tt.want)
		}
	}
}

func TestLogY(t *testing.T) {
	tests := []struct {
		min, max float64
		ticks    []float64
	}{
		{1.7, 362, []float64{1, 2, 5, 10, 20, 50, 100, 200, 500}},
		{0.3, 4, []float64{0.2, 0.5, 1, 2, 5}},
		{0.05, 20000, []float64{0.1, 1, 10, 100, 1000, 10000}},
	}
	for _, tt := range tests {
		y := logY(tt.min, tt.max, 200, 0)
		if !approxEqual(y.ticks, tt.ticks) {
			t.Errorf("logY(%v, %v) ticks = %v, want %v", tt.min, tt.max, y.ticks, tt.ticks)
		}
		if y.at(y.lo) != 200 || y.at(y.hi) != 0 {
			t.Errorf("logY(%v, %v) maps [%v, %v] to [%v, %v], want [200, 0]", tt.min, tt.max, y.lo, y.hi, y.at(y.lo), y.at(y.hi))
		}
		if y.at(tt.min) > 200 || y.at(tt.max) < 0 {
			t.Errorf("logY(%v, %v) puts the data outside the plot", tt.min, tt.max)
		}
	}
}

func TestLinearY(t *testing.T) {
	y := linearY(362, 200, 0)
	if !approxEqual(y.ticks, []float64{0, 100, 200, 300, 400}) || y.hi != 400 {
		t.Errorf("linearY(362) ticks = %v, hi %v", y.ticks, y.hi)
	}
	if got := y.at(200); got != 100 {
		t.Errorf("at(200) = %v, want 100", got)
	}
	if got := linearY(0, 200, 0); got.hi <= 0 {
		t.Errorf("linearY(0) has an empty range")
	}
}

func TestLatencyScaleChoice(t *testing.T) {
	r := sampleReport()
	if !latencyScale(r).log {
		t.Errorf("2 ms to 350 ms should use a log scale")
	}
	flat := &Report{Variants: []Variant{{Timeseries: []Second{{Requests: 1, P50Ms: 2, P99Ms: 5}, {T: 1, Requests: 1, P50Ms: 3, P99Ms: 9}}}}}
	if latencyScale(flat).log {
		t.Errorf("2 ms to 9 ms should use a linear scale")
	}
}

func TestBreakerLinks(t *testing.T) {
	bs := []BreakerTransition{
		{Link: "order.payment", From: "closed", To: "open", Offset: 12},
		{Link: "order.user", From: "closed", To: "open", Offset: 11},
		{Link: "order.user", From: "open", To: "half-open", Offset: 16},
		{Link: "order.user", From: "half-open", To: "closed", Offset: 16.5},
	}
	links, segs := breakerLinks(bs, 30)
	if !slices.Equal(links, []string{"order.user", "order.payment"}) {
		t.Errorf("links = %v, want in order of first transition", links)
	}
	want := []breakerSegment{{"closed", 0, 11}, {"open", 11, 16}, {"half-open", 16, 16.5}, {"closed", 16.5, 30}}
	if !slices.Equal(segs["order.user"], want) {
		t.Errorf("order.user segments = %v, want %v", segs["order.user"], want)
	}
	if got := segs["order.payment"]; len(got) != 2 || got[1] != (breakerSegment{"open", 12, 30}) {
		t.Errorf("order.payment segments = %v", got)
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtMs(0.42), "0.42ms"}, {fmtMs(31.25), "31.2ms"}, {fmtMs(312.4), "312ms"}, {fmtMs(1240), "1.24s"},
		{fmtPct(1), "100%"}, {fmtPct(0.9987), "99.87%"}, {fmtPct(0.624), "62.4%"}, {fmtPct(0), "0%"},
		{fmtSec(10), "10s"}, {fmtSec(11.23), "11.2s"},
		{fmtCodes(map[string]int64{"B": 2, "A": 2, "C": 9, "D": 0}, 2), "C 9, A 2 (+1 more)"},
		{fmtCodes(nil, 2), "-"},
		{tickMs(0.5), "0.5ms"}, {tickMs(2000), "2s"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func approxEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		d := a[i] - b[i]
		if d < -1e-9*b[i] || d > 1e-9*b[i] {
			return false
		}
	}
	return true
}
