package main

import (
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
)

// An experiment run from the console (`up --console`) is told by its
// report's verdict: an inconclusive one (exit 4) is INCONCLUSIVE, not
// FAILED; a failed one FAILED; a passed one no error.
func TestVerdictErr(t *testing.T) {
	rep := func(verdicts ...string) *report.Report {
		v := report.Variant{Name: "v", Passed: true}
		for _, w := range verdicts {
			v.Hypotheses = append(v.Hypotheses, report.Hypothesis{Expr: "x", Verdict: w, Passed: w == report.VerdictPass})
			v.Passed = v.Passed && w == report.VerdictPass
		}
		return &report.Report{Experiment: "e", Passed: v.Passed, Trials: 3, Variants: []report.Variant{v}}
	}
	for _, c := range []struct {
		r    *report.Report
		want string // prefix of the error; "" for none
	}{
		{rep(report.VerdictPass), ""},
		{rep(report.VerdictPass, report.VerdictInconclusive), "INCONCLUSIVE: "},
		{rep(report.VerdictInconclusive, report.VerdictFail), "FAILED: "},
	} {
		err := verdictErr(c.r)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s (exit %d): %v, want no error", c.r.Verdict(), c.r.ExitCode(), err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s (exit %d): %v, want %q", c.r.Verdict(), c.r.ExitCode(), err, c.want)
		}
	}
}
