package main

import (
	"strings"
	"testing"
)

// TestBenchUsage checks that bench refuses bad flags with one clear line
// and exit 2.
func TestBenchUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--reps", "0"}, "reps: 0"},
		{[]string{"bench", "--only", "proxy,nope"}, `section "nope": unknown`},
		{[]string{"bench", "--ghz", "/nonexistent/ghz"}, "--ghz /nonexistent/ghz"},
		{[]string{"bench", "extra"}, `unexpected argument "extra"`},
	} {
		r := cli(t, t.Context(), tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
		}
		oneLine(t, strings.Join(tt.args, " "), r.stderr)
	}
	r := cli(t, t.Context(), "bench", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "BENCHMARKS.md") || !strings.Contains(r.stdout, "-only") {
		t.Errorf("bench --help: exit %d, stdout %q", r.code, r.stdout)
	}
}
