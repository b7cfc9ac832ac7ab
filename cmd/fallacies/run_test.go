package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/faults"
)

// skipShort skips a test that runs an experiment or a child process.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs an experiment: skipped with -short")
	}
}

// reportDir returns the one report folder a run wrote under dir.
func reportDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(dir, e.Name()))
		}
	}
	if len(dirs) != 1 {
		t.Fatalf("want one report folder in %s, got %v", dir, dirs)
	}
	return dirs[0]
}

// jsonReport is the part of report.json the tests read.
type jsonReport struct {
	Experiment string `json:"experiment"`
	Passed     bool   `json:"passed"`
	Topology   string `json:"topology"`
	Seed       int64  `json:"seed"`
	Error      string `json:"error"`
	// Interrupted is set when a signal stopped the run.
	Interrupted *struct {
		Reason   string    `json:"reason"`
		At       time.Time `json:"at"`
		ExitCode int       `json:"exit_code"`
	} `json:"interrupted"`
	Variants []struct {
		Name   string `json:"name"`
		Passed bool   `json:"passed"`
		Error  string `json:"error"`
		Phases map[string]struct {
			Requests  int `json:"requests"`
			Successes int `json:"successes"`
		} `json:"phases"`
		Faults []struct {
			Name        string    `json:"name"`
			Start       time.Time `json:"start"`
			StartOffset float64   `json:"start_offset"`
		} `json:"faults"`
		Hypotheses []struct {
			Expr     string `json:"expr"`
			Passed   bool   `json:"passed"`
			Skipped  bool   `json:"skipped"`
			Abort    bool   `json:"abort"`
			Observed string `json:"observed"`
		} `json:"hypotheses"`
		Stopped *struct {
			Hypothesis     string  `json:"hypothesis"`
			Phase          string  `json:"phase"`
			Observed       string  `json:"observed"`
			BreachedOffset float64 `json:"breached_offset"`
			StoppedOffset  float64 `json:"stopped_offset"`
		} `json:"stopped"`
	} `json:"variants"`
}

// assertInterrupted checks the report of a run interrupted with exit code
// code: marked so, the hypotheses not judged, the faults listed, and every
// request made until the interruption counted (at least a quarter of what
// the arrival rate of testdata/long.yaml, 20/s, schedules in the time it
// ran: a loaded machine sends late, but never nothing).
func assertInterrupted(t *testing.T, rep jsonReport, code int) {
	t.Helper()
	if rep.Interrupted == nil || rep.Interrupted.ExitCode != code || rep.Passed || rep.Error != "" {
		t.Fatalf("report: interrupted=%+v passed=%v error=%q; want interrupted with exit code %d, not passed, no testbed error", rep.Interrupted, rep.Passed, rep.Error, code)
	}
	if len(rep.Variants) != 1 || len(rep.Variants[0].Faults) != 1 {
		t.Fatalf("report variants %+v; want one with the one fault", rep.Variants)
	}
	v := rep.Variants[0]
	for _, h := range v.Hypotheses {
		if !h.Skipped {
			t.Errorf("hypothesis %s judged (passed=%v) in an interrupted run", h.Expr, h.Passed)
		}
	}
	f := v.Faults[0]
	loadStart := f.Start.Add(-time.Duration(f.StartOffset * float64(time.Second)))
	ran := rep.Interrupted.At.Sub(loadStart)
	total := 0
	for _, p := range v.Phases {
		total += p.Requests
	}
	if want := int(20 * ran.Seconds() / 4); total == 0 || total < want || v.Phases["before"].Requests == 0 {
		t.Errorf("the interrupted report counts %d requests (before %d) after %v of load at 20/s; want at least %d, some before", total, v.Phases["before"].Requests, ran, max(want, 1))
	}
	t.Logf("interrupted after %v of load: %d requests in the report (%+v)", ran.Round(time.Millisecond), total, v.Phases)
}

// readReport reads the report.json of a report folder, after validating it
// against docs/report.schema.json: every real run the tests make checks
// the published contract.
func readReport(t *testing.T, dir string) jsonReport {
	t.Helper()
	b := schematest.ValidateDir(t, dir)
	var r jsonReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return r
}

// junitCounts reads the totals of junit.xml.
func junitCounts(t *testing.T, dir string) (tests, failures int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("junit.xml: %v", err)
	}
	n := 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				n++
			}
		}
	}
	if n != suites.Failures {
		t.Errorf("junit.xml: failures=%d but %d <failure> elements", suites.Failures, n)
	}
	return suites.Tests, n
}

// TestRunPasses runs a short passing experiment on its own embedded
// topology and reads every file of its report folder.
func TestRunPasses(t *testing.T) {
	skipShort(t)
	reports := t.TempDir()
	r := cli(t, t.Context(), "run", "--quiet", "--reports", reports, "testdata/pass.yaml")
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("--quiet run wrote to stderr: %q", r.stderr)
	}
	dir := reportDir(t, reports)
	for _, f := range []string{"report.json", "junit.xml", "report.html", "traces.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("report folder lacks a non-empty %s (%v)", f, err)
		}
	}
	if !strings.Contains(r.stdout, filepath.Join(dir, "report.html")) {
		t.Errorf("stdout does not point at the report: %s", r.stdout)
	}
	rep := readReport(t, dir)
	if !rep.Passed || rep.Experiment != "cli-pass" || len(rep.Variants) != 1 {
		t.Fatalf("report.json: passed=%v experiment=%q variants=%d", rep.Passed, rep.Experiment, len(rep.Variants))
	}
	v := rep.Variants[0]
	if v.Phases["during"].Requests == 0 || v.Phases["before"].Requests == 0 || v.Phases["after"].Requests == 0 {
		t.Errorf("report.json: a phase with no requests: %+v", v.Phases)
	}
	if len(v.Faults) != 1 || v.Faults[0].Name != "slow-user" {
		t.Errorf("report.json faults: %+v, want slow-user", v.Faults)
	}
	if tests, failures := junitCounts(t, dir); tests != 2 || failures != 0 {
		t.Errorf("junit.xml: %d tests, %d failures; want 2, 0", tests, failures)
	}
	var traces any
	if b, err := os.ReadFile(filepath.Join(dir, "traces.json")); err != nil || json.Unmarshal(b, &traces) != nil {
		t.Errorf("traces.json is not JSON (%v)", err)
	}
}

// TestRunFails runs a short experiment whose hypothesis cannot hold, with
// a suite JUnit file on the side.
func TestRunFails(t *testing.T) {
	skipShort(t)
	reports := t.TempDir()
	suite := filepath.Join(t.TempDir(), "out", "suite.xml")
	r := cli(t, t.Context(), "run", "--quiet", "--reports", reports, "--junit", suite, "--seed", "4242", "testdata/fail.yaml")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	dir := reportDir(t, reports)
	if rep := readReport(t, dir); rep.Passed || len(rep.Variants) != 1 || rep.Variants[0].Passed {
		t.Errorf("report.json says passed=%v", rep.Passed)
	}
	if rep := readReport(t, dir); rep.Seed != 4242 {
		t.Errorf("report.json: seed %d, want 4242 as --seed said", rep.Seed)
	}
	if tests, failures := junitCounts(t, dir); tests != 2 || failures != 1 {
		t.Errorf("junit.xml: %d tests, %d failures; want 2, 1", tests, failures)
	}
	b, err := os.ReadFile(suite)
	if err != nil {
		t.Fatalf("--junit file: %v", err)
	}
	if !strings.Contains(string(b), "impossible") || !strings.Contains(string(b), "<failure") {
		t.Errorf("--junit file does not report the failed hypothesis:\n%s", b)
	}
}

// TestRollback runs experiments against a topology the test holds and
// checks through the Toxiproxy API that no fault outlives the run,
// whichever way it ends.
func TestRollback(t *testing.T) {
	skipShort(t)
	tests := []struct {
		name, file string
		code       int
		applies    int                            // apply records the journal must hold
		prepare    func(t *testing.T, tg *target) // before the run
		output     string                         // part of stdout or stderr
	}{
		{name: "normal end", file: "testdata/pass.yaml", code: exitOK, applies: 1},
		{name: "failed hypothesis", file: "testdata/fail.yaml", code: exitFailed, applies: 1},
		{name: "fault still on at the end", file: "testdata/hold.yaml", code: exitOK, applies: 1},
		{name: "partition still on at the end", file: "testdata/partition.yaml", code: exitOK, applies: 1},
		{
			name: "a fault cannot be applied while another is on", file: "testdata/applyfail.yaml", code: exitTestbed, applies: 2,
			prepare: func(t *testing.T, tg *target) {
				req, err := http.NewRequest(http.MethodDelete, apiURL(tg.ep.ToxiproxyAPI)+"/proxies/payment", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := apiClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					t.Fatalf("delete proxy payment: HTTP %d", resp.StatusCode)
				}
			},
			output: "slow-payment",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startTarget(t)
			if tt.prepare != nil {
				tt.prepare(t, tg)
			}
			reports := t.TempDir()
			r := cli(t, t.Context(), "run", "--quiet", "--reports", reports, "--target", tg.file, tt.file)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "topology target") {
				t.Errorf("the run did not use the target:\n%s", r.stdout)
			}
			if out := r.stdout + r.stderr; !strings.Contains(out, tt.output) {
				t.Errorf("output does not contain %q:\n%s", tt.output, out)
			}
			assertClean(t, tg.ep.ToxiproxyAPI)
			assertJournalClosed(t, tg.file+".journal", tt.applies)
			if rep := readReport(t, reportDir(t, reports)); rep.Topology != "target" {
				t.Errorf("report.json topology %q, want target", rep.Topology)
			}
		})
	}
}

// assertJournalClosed wants the journal to exist, to have seen applied
// faults, and to list none outstanding.
func assertJournalClosed(t *testing.T, path string, minApplied int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	if n := strings.Count(string(b), `"op":"apply"`); n < minApplied {
		t.Errorf("journal %s records %d applies, want at least %d:\n%s", path, n, minApplied, b)
	}
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	out, err := j.Outstanding()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("journal lists %d faults still on: %+v", len(out), out)
	}
}

// TestRollbackOnCancel cancels the context of run while the fault is on.
func TestRollbackOnCancel(t *testing.T) {
	skipShort(t)
	tg := startTarget(t)
	api := tg.ep.ToxiproxyAPI
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan result, 1)
	ended := make(chan struct{})
	reports := t.TempDir()
	go func() {
		defer close(ended)
		done <- cli(t, ctx, "run", "--quiet", "--reports", reports, "--target", tg.file, "testdata/long.yaml")
	}()
	waitFor(t, 20*time.Second, "the slow-user toxic", ended, func() bool { return toxicOn(t, api, "user", "slow-user") })
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context being cancelled")
	}
	if r.code != 130 {
		t.Errorf("exit %d, want 130 (interrupted)\nstderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("stderr does not say the run was interrupted: %q", r.stderr)
	}
	assertClean(t, api)
	// An interrupted run still leaves its report, marked interrupted,
	// with what was measured.
	assertInterrupted(t, readReport(t, reportDir(t, reports)), 130)
	assertJournalClosed(t, tg.file+".journal", 1)
}

// TestRunTargetSaysTraceHypothesesFail runs trace hypotheses against a
// --target: the run says at its start, on stderr, that they will fail and
// why, and each one, asserted or negated, fails with "no value".
func TestRunTargetSaysTraceHypothesesFail(t *testing.T) {
	skipShort(t)
	tg := startTarget(t)
	reports := t.TempDir()
	r := cli(t, t.Context(), "run", "--quiet", "--reports", reports, "--target", tg.file, "testdata/traces.yaml")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"2 trace hypotheses will fail", "consumers off the critical path; consumers on the critical path", "captures no traces: the target exports no spans", "--otlp-endpoint", "run without --target"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	b, err := os.ReadFile(filepath.Join(reportDir(t, reports), "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Variants) != 1 {
		t.Fatalf("report.json: %v, %d variants", err, len(rep.Variants))
	}
	for _, h := range rep.Variants[0].Hypotheses {
		trace := strings.Contains(h.Expr, "trace.")
		if trace && (h.Passed || !strings.Contains(h.Observed, "no value")) {
			t.Errorf("%s: passed %v, observed %q; want failed with no value", h.Name, h.Passed, h.Observed)
		}
		if !trace && !h.Passed {
			t.Errorf("%s failed: %s", h.Name, h.Observed)
		}
	}
}
