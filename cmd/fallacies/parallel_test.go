package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/runner"
)

// suiteDir copies testdata files into a new folder, prefixed with their
// position so that the folder lists them in that order.
func suiteDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s", i+1, f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// reportDirs returns the report folders written under reports.
func reportDirs(t *testing.T, reports string) []string {
	t.Helper()
	entries, err := os.ReadDir(reports)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(reports, e.Name()))
		}
	}
	return dirs
}

// reportsPart is the part of a suite's stdout that prints each report as
// it is done: up to its last "report: FOLDER" line, before the summary.
func reportsPart(stdout string) string {
	i := strings.LastIndex(stdout, "\nreport: ")
	if i < 0 {
		return ""
	}
	end := strings.IndexByte(stdout[i+1:], '\n')
	if end < 0 {
		return stdout
	}
	return stdout[:i+1+end]
}

// TestRunParallel runs a suite of three short experiments with
// --parallel 3: they overlap (the suite's wall time is well below the sum
// of the experiments' own durations), each report prints whole and in
// the suite's order although the last, the shortest, ends first, and the
// exit code is the failed hypothesis's.
func TestRunParallel(t *testing.T) {
	skipShort(t)
	// The last is the shortest: it ends first and must still print last.
	dir := suiteDir(t, "suite-pass.yaml", "suite-fail.yaml", "suite-quiet.yaml")
	order := []string{"cli-suite-pass", "cli-suite-fail", "cli-suite-quiet"}
	reports := t.TempDir()
	r := cli(t, t.Context(), "run", "--parallel", "3", "--reports", reports, dir)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d (a hypothesis failed)\nstdout:\n%s\nstderr:\n%s", r.code, exitFailed, r.stdout, r.stderr)
	}

	// The experiments overlapped: the wall time is well below the sum of
	// the durations their reports give.
	dirs := reportDirs(t, reports)
	if len(dirs) != len(order) {
		t.Fatalf("%d report folders, want %d: %v", len(dirs), len(order), dirs)
	}
	var sum float64
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			DurationSeconds float64 `json:"duration_seconds"`
		}
		if err := json.Unmarshal(b, &rep); err != nil || rep.DurationSeconds <= 0 {
			t.Fatalf("%s: duration %v (%v)", d, rep.DurationSeconds, err)
		}
		sum += rep.DurationSeconds
	}
	if wall := r.took.Seconds(); wall >= 0.8*sum {
		t.Errorf("--parallel 3 took %.1fs, the experiments %.1fs in all: want under 0.8 × that, they did not run at once", wall, sum)
	}

	// Each report whole, in the suite's order: its title, then its
	// report folder's line, before the next one's title. (The suite's
	// summary, after the last report folder's line, repeats them.)
	lines := strings.Split(reportsPart(r.stdout), "\n")
	var seq []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "Experiment "):
			seq = append(seq, "title "+strings.Fields(l)[1])
		case strings.HasPrefix(l, "report: "):
			for _, name := range order {
				if strings.Contains(filepath.Base(filepath.Dir(l)), name) {
					seq = append(seq, "folder "+name)
				}
			}
		}
	}
	var want []string
	for _, name := range order {
		want = append(want, "title "+name, "folder "+name)
	}
	if !slices.Equal(seq, want) {
		t.Errorf("the reports print as %v, want %v\nstdout:\n%s", seq, want, r.stdout)
	}
	if got := suiteOrder(r.stdout); !slices.Equal(got, order) {
		t.Errorf("suite summary lists %v, want %v\n%s", got, order, r.stdout)
	}
	// The progress says how many run at once, and names the experiment
	// of each line.
	if !strings.Contains(r.stderr, "3 experiments, 3 at a time") {
		t.Errorf("stderr does not say how many run at once:\n%s", r.stderr)
	}
	for _, name := range order {
		if !strings.Contains(r.stderr, name+": started") || !strings.Contains(r.stderr, name+": done") {
			t.Errorf("stderr does not say when %s started and was done:\n%s", name, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("stderr redraws a line in place with several experiments at once:\n%q", r.stderr)
	}
}

// TestRunParallelInterrupt stops a --parallel 2 suite while both of its
// first experiments have their fault on: both stop, each report is
// marked interrupted with SIGTERM's exit code and its journal lists no
// fault still on, the third experiment never starts, and the run exits
// 143; the suite's summary says INTERRUPTED and names the experiment not
// run, which the JUnit file lists as skipped.
func TestRunParallelInterrupt(t *testing.T) {
	skipShort(t)
	dir := suiteDir(t, "long.yaml", "long.yaml", "suite-quiet.yaml")
	reports := t.TempDir()
	junit := filepath.Join(t.TempDir(), "junit.xml")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	done := make(chan result, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		done <- cli(t, ctx, "run", "--quiet", "--parallel", "2", "--reports", reports, "--junit", junit, dir)
	}()
	bothOn := func() bool {
		entries, err := os.ReadDir(reports)
		if err != nil {
			return false
		}
		on := 0
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(reports, e.Name(), "faults.journal"))
			if err == nil && strings.Contains(string(b), `"op":"apply"`) {
				on++
			}
		}
		return on == 2
	}
	waitFor(t, 60*time.Second, "both experiments' fault on", ended, bothOn)
	cancel(&runner.Interrupt{Signal: "SIGTERM", ExitCode: 143})
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context being cancelled")
	}
	if r.code != 143 {
		t.Errorf("exit %d, want 143 (interrupted by SIGTERM)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	dirs := reportDirs(t, reports)
	if len(dirs) != 2 {
		t.Fatalf("%d report folders, want 2 (the third experiment must not start): %v", len(dirs), dirs)
	}
	for _, d := range dirs {
		assertInterrupted(t, readReport(t, d), 143)
		assertJournalClosed(t, filepath.Join(d, "faults.journal"), 1)
	}
	if n := strings.Count(reportsPart(r.stdout), "Experiment cli-long"); n != 2 {
		t.Errorf("stdout has %d reports of cli-long, want both:\n%s", n, r.stdout)
	}
	for _, want := range []string{
		`Suite \S+: 3 experiments, 2 reported`,
		`NOT RUN +cli-suite-quiet +not run`,
		`\nINTERRUPTED interrupted by SIGTERM after 2 of 3 experiments; every fault applied was removed\n`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("suite summary does not match %q:\n%s", want, r.stdout)
		}
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<testsuite name="cli-suite-quiet" tests="1" failures="0" errors="0" skipped="1"`,
		`<testcase classname="cli-suite-quiet" name="not run" time="0">`,
		`<skipped message="the suite was interrupted by SIGTERM before it started">`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("junit lacks %q:\n%s", want, b)
		}
	}
}

// TestRunParallelRefused checks that --parallel is refused, before
// anything starts, outside 1 to 8 and where experiments cannot run side
// by side, each time naming the flag and why.
func TestRunParallelRefused(t *testing.T) {
	compose := filepath.Join(t.TempDir(), "compose.yaml")
	b, err := os.ReadFile("testdata/suite-quiet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compose, append([]byte("topology: compose\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // in the error
	}{
		{"zero", []string{"--parallel", "0", "testdata/suite-quiet.yaml"}, []string{"--parallel 0", "1 to 8"}},
		{"too many", []string{"--parallel", "9", "testdata/suite-quiet.yaml"}, []string{"--parallel 9", "1 to 8"}},
		{"target", []string{"--parallel", "2", "--target", "endpoints.json", "testdata/suite-quiet.yaml"}, []string{"--parallel 2 with --target", "one system"}},
		{"console", []string{"--parallel", "2", "--console", "testdata/suite-quiet.yaml"}, []string{"--parallel 2 with --console", "one run at a time"}},
		{"compose flag", []string{"--parallel", "2", "--topology", "compose", "testdata/suite-quiet.yaml"}, []string{"--parallel 2 with --topology compose", "one at a time"}},
		{"compose file", []string{"--parallel", "2", "testdata/suite-pass.yaml", compose}, []string{"--parallel 2", compose, "compose topology", "one experiment at a time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reports := filepath.Join(t.TempDir(), "reports")
			r := cli(t, t.Context(), append([]string{"run", "--reports", reports}, tt.args...)...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", r.code, exitUsage, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if _, err := os.Stat(reports); err == nil {
				t.Errorf("a refused run wrote %s", reports)
			}
		})
	}
}
