package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/bench"
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

// TestBenchCheck checks the verdict of --check over a report's targets:
// every missed target named on stderr and exit 1, and nothing but the
// list on stdout without --check.
func TestBenchCheck(t *testing.T) {
	r := &bench.Report{Sections: []*bench.Section{
		{Targets: []bench.Target{{What: "proxy hop adds ≤ 15 µs", Measured: "37.9 µs"}, {What: "bandwidth within 3%", Measured: "-0.6%", Met: true}}},
		{Targets: []bench.Target{{What: "embedded start-to-ready ≤ 500 ms", Measured: "21 ms", Met: true}}},
	}}
	var stdout, stderr bytes.Buffer
	err := checkTargets(&env{stdout: &stdout, stderr: &stderr}, r, true)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFailed || !strings.Contains(err.Error(), "1 of 3 targets missed") {
		t.Errorf("--check with a missed target: %v, want exit %d and 1 of 3 missed", err, exitFailed)
	}
	if want := "target missed: proxy hop adds ≤ 15 µs: 37.9 µs\n"; stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("stderr %q stdout %q, want stderr %q", stderr.String(), stdout.String(), want)
	}

	stdout.Reset()
	stderr.Reset()
	if err := checkTargets(&env{stdout: &stdout, stderr: &stderr}, r, false); err != nil || !strings.Contains(stdout.String(), "target missed: proxy hop") {
		t.Errorf("without --check: %v, stdout %q; want no error and the list", err, stdout.String())
	}
	r.Sections[0].Targets[0].Met = true
	if err := checkTargets(&env{stdout: &stdout, stderr: &stderr}, r, true); err != nil {
		t.Errorf("--check with every target kept: %v", err)
	}
}
