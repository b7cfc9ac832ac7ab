package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// JUnit writes r as JUnit XML: a <testsuites> holding one <testsuite> for
// the experiment, as SuiteJUnit writes for a suite of one.
func JUnit(w io.Writer, r *Report) error {
	return SuiteJUnit(w, &Suite{
		Name:            r.Experiment,
		Reports:         []*Report{r},
		Passed:          r.ExitCode() == 0,
		DurationSeconds: r.DurationSeconds,
	})
}

// SuiteJUnit writes s as JUnit XML, the format CI systems display: one
// <testsuites>, one <testsuite> per experiment, one <testcase> per
// hypothesis per variant with classname "<experiment>.<variant>" and as name
// the hypothesis's name or its expression with its phase. A failed
// hypothesis carries <failure message="observed X, expected EXPR">, a
// skipped one <skipped>, and a testbed failure is an extra test case with
// <error>. An experiment that left no report still has its <testsuite>:
// one "testbed" case with <error> when its testbed failed, one "not run"
// case <skipped> when an interruption kept it from starting.
func SuiteJUnit(w io.Writer, s *Suite) error {
	doc := junitSuites{Name: s.Name, Time: fmtSeconds(s.DurationSeconds)}
	for _, r := range s.Reports {
		ts := junitSuite(Normalize(r))
		doc.Tests += ts.Tests
		doc.Failures += ts.Failures
		doc.Errors += ts.Errors
		doc.Skipped += ts.Skipped
		doc.Suites = append(doc.Suites, ts)
	}
	for _, u := range s.Unreported {
		ts := unreportedSuite(u, s.Interrupted)
		doc.Tests += ts.Tests
		doc.Errors += ts.Errors
		doc.Skipped += ts.Skipped
		doc.Suites = append(doc.Suites, ts)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit %s: %w", s.Name, err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode junit %s: %w", s.Name, err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit %s: %w", s.Name, err)
	}
	return nil
}

type junitSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Skipped  int              `xml:"skipped,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitSkipped `xml:"skipped"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

func junitSuite(r *Report) junitTestSuite {
	ts := junitTestSuite{Name: r.Experiment, Time: fmtSeconds(r.DurationSeconds)}
	if !r.StartedAt.IsZero() {
		// The JUnit schema's timestamp is ISO 8601 without a zone.
		ts.Timestamp = r.StartedAt.UTC().Format("2006-01-02T15:04:05")
	}
	prop := func(name, value string) {
		if value != "" {
			ts.Properties = append(ts.Properties, junitProperty{name, value})
		}
	}
	prop("fallacy", r.Fallacy)
	prop("file", r.File)
	prop("topology", r.Topology)
	prop("seed", strconv.FormatInt(r.Seed, 10))
	prop("started_at", r.StartedAt.Format("2006-01-02T15:04:05.999999999Z07:00"))
	prop("jaeger_ui", r.JaegerUI)
	for _, v := range r.Variants {
		for _, k := range v.Knobs {
			prop("knob."+v.Name+"."+k.Name, k.Value)
		}
	}

	if r.Error != "" {
		ts.Cases = append(ts.Cases, junitCase{
			Classname: r.Experiment, Name: "testbed", Time: "0",
			Error: &junitProblem{Message: oneLine(r.Error), Type: "testbed", Body: r.Error},
		})
	}
	for _, v := range r.Variants {
		class := r.Experiment + "." + v.Name
		if v.Error != "" {
			ts.Cases = append(ts.Cases, junitCase{
				Classname: class, Name: "testbed", Time: "0",
				Error: &junitProblem{Message: oneLine(v.Error), Type: "testbed", Body: v.Error},
			})
		}
		for _, h := range v.Hypotheses {
			c := junitCase{Classname: class, Name: hypothesisTitle(h), Time: "0"}
			switch {
			case h.Skipped:
				c.Skipped = &junitSkipped{Message: h.SkipReason}
			case h.NotJudged():
				c.Skipped = &junitSkipped{Message: "inconclusive: " + h.SkipReason}
			case h.Verdict == VerdictInconclusive:
				// Neither a pass nor a failure: CI shows it apart.
				c.Skipped = &junitSkipped{Message: fmt.Sprintf("inconclusive over %d trials (%s): %s straddles the bound of %s",
					len(h.Trials), trialsHeld(h.Trials), dash(h.Observed), h.Expr)}
			case !h.Passed:
				body := []string{
					"variant:  " + v.Name,
					"phase:    " + h.Phase,
					"expected: " + h.Expr,
					"observed: " + dash(h.Observed),
				}
				if h.Abort {
					body = append(body, "the failure aborted the run")
				}
				c.Failure = &junitProblem{
					Message: fmt.Sprintf("observed %s, expected %s", dash(h.Observed), h.Expr),
					Type:    "hypothesis",
					Body:    strings.Join(body, "\n"),
				}
			}
			ts.Cases = append(ts.Cases, c)
		}
	}
	for _, c := range ts.Cases {
		ts.Tests++
		switch {
		case c.Error != nil:
			ts.Errors++
		case c.Failure != nil:
			ts.Failures++
		case c.Skipped != nil:
			ts.Skipped++
		}
	}
	var sb strings.Builder
	if err := Text(&sb, r); err == nil {
		ts.SystemOut = sb.String()
	}
	return ts
}

// unreportedSuite is the <testsuite> of an experiment that left no
// report (Suite.Unreported); in is the suite's interruption, if any.
func unreportedSuite(u Unreported, in *Interruption) junitTestSuite {
	ts := junitTestSuite{Name: u.Experiment, Time: fmtSeconds(0), Tests: 1}
	if u.File != "" {
		ts.Properties = []junitProperty{{"file", u.File}}
	}
	c := junitCase{Classname: u.Experiment, Name: "testbed", Time: "0"}
	if u.Error != "" {
		c.Error = &junitProblem{Message: oneLine(u.Error), Type: "testbed", Body: u.Error}
		ts.Errors = 1
	} else {
		why := "the suite ended before it started"
		if in != nil {
			why = "the suite was " + in.Reason + " before it started"
		}
		c.Name = "not run"
		c.Skipped = &junitSkipped{Message: why}
		ts.Skipped = 1
	}
	ts.Cases = []junitCase{c}
	return ts
}

// fmtSeconds formats seconds for JUnit's time attributes.
func fmtSeconds(s float64) string {
	return strconv.FormatFloat(finite(s), 'f', 3, 64)
}
