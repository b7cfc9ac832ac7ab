package main

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// suiteJUnit is the part of a --junit file the suite tests read.
type suiteJUnit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Cases    []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// deleteProxy removes a proxy from the target's Toxiproxy.
func deleteProxy(t *testing.T, tg *target, name string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, apiURL(tg.ep.ToxiproxyAPI)+"/proxies/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete proxy %s: HTTP %d", name, resp.StatusCode)
	}
}

// TestRunSuite runs folders of experiments as CI does (`fallacies run
// DIR --junit FILE`): the exit code of each combination of outcomes, the
// suite carrying on after a failed hypothesis and after a testbed
// failure, one report folder per experiment, and one JUnit file covering
// every experiment.
func TestRunSuite(t *testing.T) {
	skipShort(t)
	type outcome struct {
		experiment string
		passed     bool
		tests      int // JUnit test cases: hypotheses and testbed failures
		failures   int
		errors     int
	}
	var (
		pass  = outcome{experiment: "cli-suite-pass", passed: true, tests: 2}
		quiet = outcome{experiment: "cli-suite-quiet", passed: true, tests: 1}
		fail  = outcome{experiment: "cli-suite-fail", tests: 2, failures: 1}
		// No hypothesis is evaluated; the failure is a testbed case of the
		// experiment and one of its variant.
		testbed = outcome{experiment: "cli-testbed", tests: 2, errors: 2}
	)
	tests := []struct {
		name   string
		files  []string // in run order
		want   []outcome
		target bool // against a held topology whose user-http proxy is gone
		code   int
	}{
		{"every file passes", []string{"suite-pass.yaml", "suite-quiet.yaml"}, []outcome{pass, quiet}, false, exitOK},
		{"a failed hypothesis, then a pass", []string{"suite-fail.yaml", "suite-pass.yaml"}, []outcome{fail, pass}, false, exitFailed},
		{"a testbed failure, a failed hypothesis, then a pass", []string{"testbed.yaml", "suite-fail.yaml", "suite-pass.yaml"}, []outcome{testbed, fail, pass}, true, exitTestbed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, f := range tt.files {
				b, err := os.ReadFile(filepath.Join("testdata", f))
				if err != nil {
					t.Fatal(err)
				}
				// The folder lists its files by name: the prefix sets the order.
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s", i+1, f)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			reports := t.TempDir()
			junit := filepath.Join(t.TempDir(), "suite.xml")
			args := []string{"run", "--quiet", "--reports", reports, "--junit", junit}
			if tt.target {
				tg := startTarget(t)
				deleteProxy(t, tg, "user-http")
				args = append(args, "--target", tg.file)
			}
			r := cli(t, t.Context(), append(args, dir)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}

			// Every experiment ran, in order, whatever came before it.
			entries, err := os.ReadDir(reports)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]jsonReport{}
			for _, e := range entries {
				rep := readReport(t, filepath.Join(reports, e.Name()))
				byName[rep.Experiment] = rep
			}
			if len(entries) != len(tt.want) || len(byName) != len(tt.want) {
				t.Fatalf("%d report folders for %d experiments: %v", len(entries), len(tt.want), entries)
			}
			for _, w := range tt.want {
				rep, ok := byName[w.experiment]
				if !ok {
					t.Errorf("no report of %s: the suite did not carry on", w.experiment)
					continue
				}
				if rep.Passed != w.passed {
					t.Errorf("%s: passed=%v, want %v", w.experiment, rep.Passed, w.passed)
				}
				if w.errors == 0 && (len(rep.Variants) != 1 || rep.Variants[0].Phases["before"].Requests == 0) {
					t.Errorf("%s did not run: %+v", w.experiment, rep.Variants)
				}
			}
			var order []string
			for _, w := range tt.want {
				order = append(order, w.experiment)
			}
			if got := suiteOrder(r.stdout); !slices.Equal(got, order) {
				t.Errorf("suite summary lists %v, want %v in that order\n%s", got, order, r.stdout)
			}
			// The summary's verdict agrees with the exit code: a testbed
			// failure is ERROR, not FAIL, as exit 3 wins over exit 1.
			lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			var summary string
			for i := len(lines) - 1; i >= 0 && summary == ""; i-- {
				if !strings.HasPrefix(lines[i], "junit: ") {
					summary = lines[i]
				}
			}
			if want := map[int]string{exitOK: "PASS ", exitFailed: "FAIL ", exitTestbed: "ERROR "}[tt.code]; !strings.HasPrefix(summary, want) {
				t.Errorf("suite summary line %q, want it to begin %q as exit %d", summary, want, tt.code)
			}

			// One JUnit file, one test suite per experiment.
			b, err := os.ReadFile(junit)
			if err != nil {
				t.Fatalf("--junit file: %v", err)
			}
			var ju suiteJUnit
			if err := xml.Unmarshal(b, &ju); err != nil {
				t.Fatalf("--junit file: %v\n%s", err, b)
			}
			if len(ju.Suites) != len(tt.want) {
				t.Fatalf("--junit file has %d test suites, want %d:\n%s", len(ju.Suites), len(tt.want), b)
			}
			var tests, failures, errs int
			for i, w := range tt.want {
				s := ju.Suites[i]
				nf, ne := 0, 0
				for _, c := range s.Cases {
					if c.Failure != nil {
						nf++
					}
					if c.Error != nil {
						ne++
					}
				}
				if s.Name != w.experiment || len(s.Cases) != w.tests || s.Tests != w.tests || nf != w.failures || s.Failures != w.failures || ne != w.errors || s.Errors != w.errors {
					t.Errorf("--junit suite %d: %s with %d cases (tests=%d), %d failures (attr %d), %d errors (attr %d); want %s with %d, %d failures, %d errors",
						i, s.Name, len(s.Cases), s.Tests, nf, s.Failures, ne, s.Errors, w.experiment, w.tests, w.failures, w.errors)
				}
				tests, failures, errs = tests+w.tests, failures+w.failures, errs+w.errors
			}
			if ju.Tests != tests || ju.Failures != failures || ju.Errors != errs {
				t.Errorf("--junit totals: tests=%d failures=%d errors=%d; want %d, %d, %d", ju.Tests, ju.Failures, ju.Errors, tests, failures, errs)
			}
		})
	}
}

// suiteOrder returns the experiments of the suite summary's table (the
// lines after "Suite NAME: N experiments"), in its order.
func suiteOrder(stdout string) []string {
	_, table, ok := strings.Cut(stdout, "\nSuite ")
	if !ok {
		return nil
	}
	var out []string
	for _, l := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(l, "  ") {
			break
		}
		out = append(out, f[1])
	}
	return out
}
