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

// TestFaultAttributeBounds: every fault attribute is checked against the
// bounds its toxic survives, at the value's position; the bounds
// themselves are accepted, and a slicer's size_variation must stay below
// its average_size, the default included.
func TestFaultAttributeBounds(t *testing.T) {
	tests := []struct {
		name  string
		fault string
		want  string // the error; "" for valid
	}{
		{"latency at the limit", `kind: latency, latency: 10m, jitter: 10m`, ""},
		{"latency over", `kind: latency, latency: 10m1ms`, "x.yaml:7:53: faults[0].latency: 10m0.001s is more than the limit of 10m0s"},
		{"jitter over", `kind: latency, latency: 1ms, jitter: 2562047h`, "x.yaml:7:66: faults[0].jitter: 2562047h0m0s is more than the limit of 10m0s"},
		{"bandwidth zero", `kind: bandwidth, rate: 0`, "x.yaml:7:52: faults[0].rate: 0 KB/s is less than the minimum of 1 KB/s"},
		{"bandwidth at the limit", `kind: bandwidth, rate: 10000000`, ""},
		{"bandwidth overflow", `kind: bandwidth, rate: 92233720368547758`, "x.yaml:7:52: faults[0].rate: 92233720368547758 KB/s is more than the limit of 10000000 KB/s"},
		{"slicer zero size", `kind: slicer, average_size: 0, size_variation: 0`, "x.yaml:7:57: faults[0].average_size: 0 bytes is less than the minimum of 1 bytes"},
		{"slicer variation = size", `kind: slicer, average_size: 8, size_variation: 8`, "x.yaml:7:76: faults[0].size_variation: size_variation 8 is not less than average_size 8"},
		{"slicer default variation", `kind: slicer, average_size: 16`, "x.yaml:7:5: faults[0].size_variation: size_variation 32 is not less than average_size 16"},
		{"slicer huge", `kind: slicer, average_size: 1048577`, "x.yaml:7:57: faults[0].average_size: 1048577 bytes is more than the limit of 1048576 bytes"},
		{"slicer delay", `kind: slicer, delay: 11m`, "x.yaml:7:50: faults[0].delay: 11m0s is more than the limit of 10m0s"},
		{"slicer at the limits", `kind: slicer, average_size: 1048576, size_variation: 1048575, delay: 10m`, ""},
		{"reset_peer", `kind: reset_peer, timeout: 6s`, "x.yaml:7:56: faults[0].timeout: 6s is more than the limit of 5s"},
		{"slow_close zero", `kind: slow_close, delay: 0s`, "x.yaml:7:54: faults[0].delay: 0s is less than the minimum of 1ms"},
		{"limit_data", `kind: limit_data, bytes: 1099511627777`, "x.yaml:7:54: faults[0].bytes: 1099511627777 bytes is more than the limit of 1099511627776 bytes"},
		{"step over", `kind: latency, steps: [ { for: 1s, latency: 1ms }, { latency: 20m } ]`, "x.yaml:7:91: faults[0].steps[1].latency: 20m0s is more than the limit of 10m0s"},
		{"step slicer", `kind: slicer, average_size: 64, steps: [ { for: 1s, average_size: 4 } ]`, "x.yaml:7:70: faults[0].steps[0].size_variation: size_variation 32 is not less than average_size 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + "faults:\n  - { at: 1s, target: user, " + tt.fault + " }\n"
			_, err := Parse("x.yaml", []byte(src))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.want != "" && err == nil:
				t.Fatalf("accepted, want %s", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("err = %v\nwant   %s", err, tt.want)
			}
		})
	}
}
