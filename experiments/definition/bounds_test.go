package definition

import (
	"strings"
	"testing"

	"github.com/fallacies/fallacies/faults"
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
		{"reset_peer", `kind: reset_peer, timeout: 11m`, "x.yaml:7:56: faults[0].timeout: 11m0s is more than the limit of 10m0s"},
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

// TestSuggestionsByMeaning: a value that means a known one, or begins or
// abbreviates it, is answered with that value, not the nearest spelling
// or the whole list; a duration written with spaces or unit words is
// answered with how to write it.
func TestSuggestionsByMeaning(t *testing.T) {
	tests := []struct {
		fault, want string
	}{
		{`kind: latency, latency: 1ms, direction: down`, `"down" is not a direction (did you mean downstream?)`},
		{`kind: latency, latency: 1ms, direction: dn`, `"dn" is not a direction (did you mean downstream?)`},
		{`kind: latency, latency: 1ms, direction: up`, `"up" is not a direction (did you mean upstream?)`},
		{`kind: latency, latency: 1ms, direction: requests`, `"requests" is not a direction (did you mean upstream?)`},
		{`kind: latency, latency: 1ms, direction: bidirectional`, `"bidirectional" is not a direction (did you mean both?)`},
		{`kind: latency, latency: 1ms, direction: Downstream`, `"Downstream" is not a direction (did you mean downstream?)`},
		{`kind: delay, latency: 1ms`, `"delay" is not a fault kind (did you mean latency?)`},
		{`kind: throttle, rate: 5`, `"throttle" is not a fault kind (did you mean bandwidth?)`},
		{`kind: latency, latency: 300 ms`, `"300 ms" is not a duration (write e.g. 300ms)`},
		{`kind: latency, latency: 2 Seconds`, `"2 Seconds" is not a duration (write e.g. 2s)`},
		{`kind: latency, latency: 300msec`, `"300msec" is not a duration (write e.g. 300ms)`},
		{`kind: latency, latency: 300`, `"300" is not a duration (write e.g. 300ms)`},
		{`kind: latency, ltncy: 3ms`, `unknown key (did you mean latency?)`},
	}
	for _, tt := range tests {
		src := head + "faults:\n  - { at: 1s, target: user, " + tt.fault + " }\n"
		_, err := Parse("x.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v\nwant it to contain %s", tt.fault, err, tt.want)
		}
	}
	h := head + "faults: [ { at: 1s, for: 1s, target: user, kind: latency, latency: 1ms } ]\nhypotheses:\n  - { when: steady, check: \"events.lost == 0\" }\n"
	if _, err := Parse("x.yaml", []byte(h)); err == nil || !strings.Contains(err.Error(), `"steady" is not a phase (did you mean before?)`) {
		t.Errorf("when: steady: err = %v", err)
	}
}

// TestDirectionDefaultsToDownstream: a toxic without direction acts
// downstream, as in Toxiproxy; both must be asked for.
func TestDirectionDefaultsToDownstream(t *testing.T) {
	src := head + "faults:\n  - { at: 1s, for: 1s, target: user, kind: latency, latency: 100ms }\n  - { at: 1s, for: 1s, target: payment, kind: latency, latency: 100ms, direction: both }\n"
	e, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if e.Faults[0].Direction != faults.Downstream || e.Faults[1].Direction != faults.Both {
		t.Errorf("directions %s, %s; want downstream, both", e.Faults[0].Direction, e.Faults[1].Direction)
	}
	if got := e.Faults[0].String(); got != "latency on user (downstream) latency=100ms jitter=0ms" {
		t.Errorf("String() = %q", got)
	}
}
