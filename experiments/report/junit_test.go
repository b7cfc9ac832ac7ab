package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// Parsed JUnit, declared independently of the writer's types so that a
// wrong tag in the writer shows up here.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name       string `xml:"name,attr"`
	Tests      int    `xml:"tests,attr"`
	Failures   int    `xml:"failures,attr"`
	Errors     int    `xml:"errors,attr"`
	Skipped    int    `xml:"skipped,attr"`
	Time       string `xml:"time,attr"`
	Timestamp  string `xml:"timestamp,attr"`
	Properties []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases     []xCase `xml:"testcase"`
	SystemOut string  `xml:"system-out"`
}

type xCase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Body    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

func parseJUnit(t *testing.T, data []byte) xSuites {
	t.Helper()
	var doc xSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, data)
	}
	return doc
}

func TestJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := JUnit(&buf, sampleReport()); err != nil {
		t.Fatalf("JUnit: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("<?xml")) {
		t.Errorf("junit.xml does not start with an XML declaration")
	}
	doc := parseJUnit(t, buf.Bytes())
	if doc.Tests != 8 || doc.Failures != 1 || doc.Skipped != 1 || doc.Errors != 0 {
		t.Errorf("testsuites counts tests=%d failures=%d skipped=%d errors=%d, want 8, 1, 1, 0", doc.Tests, doc.Failures, doc.Skipped, doc.Errors)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d testsuites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "latency" || s.Tests != 8 || s.Failures != 1 || s.Skipped != 1 || len(s.Cases) != 8 {
		t.Errorf("testsuite %q tests=%d failures=%d skipped=%d cases=%d", s.Name, s.Tests, s.Failures, s.Skipped, len(s.Cases))
	}
	if s.Time != "31.800" || s.Timestamp != "2026-03-14T09:26:53" {
		t.Errorf("time=%q timestamp=%q", s.Time, s.Timestamp)
	}
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["seed"] != "42" || props["fallacy"] != "latency-is-zero" || props["knob.resilient.order.user.timeout"] != "100ms" {
		t.Errorf("properties = %v", props)
	}
	classes := map[string]int{}
	var failed, skipped *xCase
	for i, c := range s.Cases {
		classes[c.Classname]++
		if c.Failure != nil {
			failed = &s.Cases[i]
		}
		if c.Skipped != nil {
			skipped = &s.Cases[i]
		}
	}
	if classes["latency.naive"] != 4 || classes["latency.resilient"] != 4 {
		t.Errorf("classnames = %v, want 4 each of latency.naive and latency.resilient", classes)
	}
	if s.Cases[0].Name != "[before] order.success_rate >= 99%" {
		t.Errorf("unnamed hypothesis case name = %q, want its phase and expression", s.Cases[0].Name)
	}
	if failed == nil || failed.Name != "the fix held" || failed.Classname != "latency.resilient" {
		t.Fatalf("failed case = %+v", failed)
	}
	if want := "observed order.latency.p99 = 142ms, expected order.latency.p99 < 100ms"; failed.Failure.Message != want {
		t.Errorf("failure message = %q, want %q", failed.Failure.Message, want)
	}
	if !strings.Contains(failed.Failure.Body, "phase:    during") {
		t.Errorf("failure body = %q", failed.Failure.Body)
	}
	if skipped == nil || skipped.Skipped.Message != "not checked: the run was stopped at 12.4s by the abort hypothesis order.success_rate >= 99%" {
		t.Errorf("skipped case = %+v", skipped)
	}
	if !strings.Contains(s.SystemOut, "Verdict: FAIL") {
		t.Errorf("system-out lacks the text summary: %q", s.SystemOut)
	}
}

func TestSuiteJUnitWithTestbedErrors(t *testing.T) {
	broken := &Report{Experiment: "partition", Error: "start topology: bind: address already in use",
		Variants: []Variant{{Name: "naive", Error: "inject fault cut: proxy user not found",
			Hypotheses: []Hypothesis{{Expr: "order.success_rate >= 99%", Phase: PhaseBefore, Passed: true, Observed: "100%"}}}}}
	s := &Suite{Name: "ci", Reports: []*Report{sampleReport(), broken}}
	var buf bytes.Buffer
	if err := SuiteJUnit(&buf, s); err != nil {
		t.Fatalf("SuiteJUnit: %v", err)
	}
	doc := parseJUnit(t, buf.Bytes())
	if len(doc.Suites) != 2 {
		t.Fatalf("%d testsuites, want 2", len(doc.Suites))
	}
	if doc.Tests != 11 || doc.Failures != 1 || doc.Skipped != 1 || doc.Errors != 2 {
		t.Errorf("totals tests=%d failures=%d skipped=%d errors=%d, want 11, 1, 1, 2", doc.Tests, doc.Failures, doc.Skipped, doc.Errors)
	}
	p := doc.Suites[1]
	if p.Name != "partition" || p.Errors != 2 || p.Tests != 3 {
		t.Errorf("partition suite errors=%d tests=%d", p.Errors, p.Tests)
	}
	var errs []string
	for _, c := range p.Cases {
		if c.Error != nil {
			errs = append(errs, c.Classname+": "+c.Error.Message)
		}
	}
	want := []string{"partition: start topology: bind: address already in use", "partition.naive: inject fault cut: proxy user not found"}
	if strings.Join(errs, "|") != strings.Join(want, "|") {
		t.Errorf("error cases = %q, want %q", errs, want)
	}
}

// TestSuiteJUnitUnreported: an experiment that left no report is still a
// <testsuite> of the JUnit file: an error when its testbed failed, a
// skipped case when an interruption kept it from starting; the suite's
// summary line names them too.
func TestSuiteJUnitUnreported(t *testing.T) {
	s := &Suite{Name: "ci", Reports: []*Report{sampleReport()},
		Error: "topology: start embedded: listen tcp: address in use",
		Unreported: []Unreported{
			{Experiment: "broken", File: "experiments/broken.yaml", Error: "topology: start embedded: listen tcp: address in use"},
			{Experiment: "later", File: "experiments/later.yaml"},
		}}
	var buf bytes.Buffer
	if err := SuiteJUnit(&buf, s); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<testsuite name="broken" tests="1" failures="0" errors="1" skipped="0"`,
		`<property name="file" value="experiments/broken.yaml"></property>`,
		`<error message="topology: start embedded: listen tcp: address in use" type="testbed">`,
		`<testsuite name="later" tests="1" failures="0" errors="0" skipped="1"`,
		`<skipped message="the suite ended before it started">`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("junit lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := SuiteText(&buf, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Suite ci: 3 experiments, 1 reported", "ERROR    broken", "no report: topology: start embedded", "NOT RUN  later"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("suite text lacks %q:\n%s", want, buf.String())
		}
	}
}
