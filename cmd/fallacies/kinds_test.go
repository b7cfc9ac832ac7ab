package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/fallacies/fallacies/faults"
)

// TestKindsListsTheRegistry checks that fallacies kinds prints every fault
// kind with its target and each attribute with its range, and --json the
// same for tools.
func TestKindsListsTheRegistry(t *testing.T) {
	r := cli(t, t.Context(), "kinds")
	if r.code != exitOK {
		t.Fatalf("kinds: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, re := range []string{
		`(?m)^KIND\s+TARGET\s+DIRECTION\s+WHAT IT DOES`,
		`(?m)^latency\s+proxy\s+yes\s+delay data by latency ± jitter$`,
		`(?m)^\s+latency: 0s to 10m0s, required \(added delay\)$`,
		`(?m)^\s+rate: 1 to 10000000 KB/s, required`,
		`(?m)^\s+size_variation: 0 to 1048575 bytes, default 32 \(less than average_size\)$`,
		`(?m)^partition\s+proxy\s+-\s+disable the proxy`,
		`(?m)^kill\s+process\s+-\s+SIGKILL`,
		`(?m)^container-pause\s+container\s+-\s+docker pause`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("kinds output does not match %s:\n%s", re, r.stdout)
		}
	}

	r = cli(t, t.Context(), "kinds", "--json")
	if r.code != exitOK {
		t.Fatalf("kinds --json: exit %d, stderr %q", r.code, r.stderr)
	}
	var got []kindInfo
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("kinds --json is not a JSON array of kinds: %v\n%s", err, r.stdout)
	}
	want := faults.Specs()
	if len(got) != len(want) {
		t.Fatalf("kinds --json lists %d kinds, want %d", len(got), len(want))
	}
	for i, s := range want {
		g := got[i]
		if g.Kind != string(s.Kind) || g.Target != string(s.Target) || g.Directional != s.Directional || g.Doc != s.Doc || len(g.Attributes) != len(s.Attrs) {
			t.Errorf("kinds --json entry %d = %+v, want %+v", i, g, s)
			continue
		}
		for j, a := range s.Attrs {
			if ga := g.Attributes[j]; ga.Name != a.Name || ga.Unit != string(a.Unit) || ga.Min != a.Min || ga.Max != a.Max || ga.Default != a.Default || ga.Required != a.Required {
				t.Errorf("kinds --json %s attribute %d = %+v, want %+v", s.Kind, j, ga, a)
			}
		}
	}
}
