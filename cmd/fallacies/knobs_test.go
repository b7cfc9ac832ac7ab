package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/fallacies/fallacies/services/config"
)

// TestKnobsShowDefaults checks that fallacies knobs prints each knob's
// default and unit, and --json the same for tools.
func TestKnobsShowDefaults(t *testing.T) {
	r := cli(t, t.Context(), "knobs")
	if r.code != exitOK {
		t.Fatalf("knobs: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, re := range []string{
		`(?m)^KNOB\s+TYPE\s+DEFAULT\s+RANGE\s+WHAT IT DOES$`,
		`(?m)^order\.user\.timeout\s+duration\s+off\s+0s to 10m\s+deadline`,
		`(?m)^order\.user\.backoff\s+duration\s+10ms\s`,
		`(?m)^user\.history_bytes\s+int \(bytes\)\s+1024\s+0 to 4194304\s`,
		`(?m)^order\.user\.breaker\s+on\|off\s+off\s`,
		`(?m)^order\.publish_mode\s+jetstream\|core\s+jetstream\s`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("knobs output does not match %s:\n%s", re, r.stdout)
		}
	}

	r = cli(t, t.Context(), "knobs", "--json")
	if r.code != exitOK {
		t.Fatalf("knobs --json: exit %d, stderr %q", r.code, r.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("knobs --json is not a JSON array of objects: %v\n%s", err, r.stdout)
	}
	want := config.Knobs()
	if len(got) != len(want) {
		t.Fatalf("knobs --json lists %d knobs, want %d", len(got), len(want))
	}
	for i, k := range want {
		g := got[i]
		for _, key := range []string{"name", "type", "default", "doc"} {
			if s, _ := g[key].(string); s == "" {
				t.Errorf("knobs --json: %s has no %q", k.Name, key)
			}
		}
		if g["name"] != k.Name || g["type"] != string(k.Type) || g["default"] != k.Default() || g["doc"] != k.Doc {
			t.Errorf("knobs --json entry %d = %v, want %s %s default %s", i, g, k.Name, k.Type, k.Default())
		}
	}
}
