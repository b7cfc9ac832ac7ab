package spec

import (
	"strings"
	"testing"
)

// TestLoadBounds: a load beyond the hard bounds is refused with the field,
// the value, the limit and a hint; a load at the bounds is accepted.
func TestLoadBounds(t *testing.T) {
	const rest = "\nvariants: { naive: {} }\nhypotheses: [ { when: always, check: \"events.lost == 0\" } ]\n"
	tests := []struct {
		name string
		load string
		want []string // substrings of the error; none: valid
	}{
		{"at the bounds", `{ rate: 20000/s, duration: 10m, timeout: 1m, drain: 5m }`, nil},
		{"rate", `{ rate: 20001/s, duration: 30s }`, []string{"load.rate", "20001/s is more than the limit of 20000/s", "lower the rate"}},
		{"rate per minute", `{ rate: 1500000/m, duration: 30s }`, []string{"load.rate", "25000/s is more than the limit"}},
		{"duration", `{ rate: 10/s, duration: 11m }`, []string{"load.duration", "11m0s is longer than the limit of 10m0s", "stops by itself"}},
		{"timeout", `{ rate: 10/s, duration: 30s, timeout: 61s }`, []string{"load.timeout", "limit of 1m0s"}},
		{"drain", `{ rate: 10/s, duration: 30s, drain: 1h }`, []string{"load.drain", "limit of 5m0s"}},
		{"step rate", `{ rate: 10/s, duration: 30s, steps: [ { at: 10s, rate: 50000/s } ] }`, []string{"load.steps[0].rate", "50000/s is more than the limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "name: x\nfallacy: latency-is-zero\ndescription: d\nload: " + tt.load + rest
			_, err := Parse("x.yaml", []byte(src))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted, want refused")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "x.yaml:4:") {
				t.Errorf("err = %v, want it at x.yaml:4:col", err)
			}
		})
	}
}
