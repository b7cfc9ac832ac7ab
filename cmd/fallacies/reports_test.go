package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
)

// reportsFixture writes, with the report package's own writer, four report
// folders started a minute apart, and beside them entries prune must leave
// alone: a folder named like a report without report.json (a run under
// way), one whose report.json is not a report, one holding a subfolder,
// one with a report.json but another name, and a plain file.
func reportsFixture(t *testing.T) (dir string, newestFirst []string, decoys []string) {
	t.Helper()
	dir = t.TempDir()
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	for i := range 4 {
		start := t0.Add(time.Duration(i) * time.Minute)
		name := "latency-" + start.Format("20060102-150405")
		if err := report.WriteDir(filepath.Join(dir, name), &report.Report{Experiment: "latency", StartedAt: start, Passed: true}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name, "traces.json"), []byte(`{"data":[]}`), 0o644)
		newestFirst = append([]string{name}, newestFirst...)
	}
	mk := func(name string, files map[string]string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(p, f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		decoys = append(decoys, name)
	}
	old := `{"experiment":"latency","started_at":"2020-01-01T00:00:00Z","variants":[]}`
	mk("latency-20200101-000000", map[string]string{"faults.journal": ""})                         // under way
	mk("latency-20200101-000001", map[string]string{"report.json": `{"not":"a report"}`})          // not a report
	mk("latency-20200101-000002", map[string]string{"report.json": old, "mine/notes.txt": "keep"}) // holds a folder
	mk("my-notes", map[string]string{"report.json": old})                                          // another name
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	decoys = append(decoys, "README.txt")
	return dir, newestFirst, decoys
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestReportsPrune(t *testing.T) {
	t.Run("dry run removes nothing", func(t *testing.T) {
		dir, reports, _ := reportsFixture(t)
		before := entries(t, dir)
		r := cli(t, t.Context(), "reports", "prune", "--keep", "1", "--dir", dir, "--dry-run")
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if got := entries(t, dir); !slices.Equal(got, before) {
			t.Errorf("dry run changed the folder: %v, was %v", got, before)
		}
		for _, name := range reports[1:] {
			if !strings.Contains(r.stdout, "would remove "+filepath.Join(dir, name)) {
				t.Errorf("dry run does not say it would remove %s:\n%s", name, r.stdout)
			}
		}
		if strings.Contains(r.stdout, reports[0]) {
			t.Errorf("dry run names the newest folder, which it keeps:\n%s", r.stdout)
		}
	})
	t.Run("keeps the newest, removes only reports", func(t *testing.T) {
		dir, reports, decoys := reportsFixture(t)
		r := cli(t, t.Context(), "reports", "prune", "--dir", dir, "--keep", "2")
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		want := append(slices.Clone(reports[:2]), decoys...)
		slices.Sort(want)
		if got := entries(t, dir); !slices.Equal(got, want) {
			t.Errorf("left %v, want %v", got, want)
		}
		for _, name := range reports[2:] {
			if !strings.Contains(r.stdout, "removed "+filepath.Join(dir, name)) {
				t.Errorf("does not say it removed %s:\n%s", name, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "kept 2 report folders, removed 2 report folders") || !strings.Contains(r.stdout, "left alone 5 other entries") {
			t.Errorf("summary:\n%s", r.stdout)
		}
		// Again: nothing more to remove.
		r = cli(t, t.Context(), "reports", "prune", "--dir", dir, "--keep", "2")
		if r.code != exitOK || !strings.Contains(r.stdout, "removed 0 report folders") {
			t.Errorf("second prune: exit %d\n%s", r.code, r.stdout)
		}
	})
	t.Run("keep 0 removes every report", func(t *testing.T) {
		dir, _, decoys := reportsFixture(t)
		if r := cli(t, t.Context(), "reports", "prune", "--keep", "0", "--dir", dir); r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		want := slices.Clone(decoys)
		slices.Sort(want)
		if got := entries(t, dir); !slices.Equal(got, want) {
			t.Errorf("left %v, want only %v", got, want)
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		dir, _, _ := reportsFixture(t)
		before := entries(t, dir)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"reports"}, "Usage: fallacies reports prune"},
			{[]string{"reports", "tidy"}, `unknown subcommand "tidy"`},
			{[]string{"reports", "prune", "--dir", dir}, "--keep N is required"},
			{[]string{"reports", "prune", "--dir", dir, "--keep", "-1"}, `--keep "-1"`},
			{[]string{"reports", "prune", "--dir", dir, "--keep", "two"}, `--keep "two"`},
			{[]string{"reports", "prune", "--keep", "1", "--dir", filepath.Join(dir, "nope")}, "no such folder"},
			{[]string{"reports", "prune", "--keep", "1", "--dir", dir, "extra"}, `unexpected argument "extra"`},
			{[]string{"reports", "prune", "--keep", "1", "--dir", dir, "--force"}, "-force"},
		} {
			r := cli(t, t.Context(), tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("fallacies %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.want)
			}
		}
		if got := entries(t, dir); !slices.Equal(got, before) {
			t.Errorf("a usage error changed the folder: %v, was %v", got, before)
		}
	})
}
