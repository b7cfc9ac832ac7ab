package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// TextOptions tunes the terminal summary.
type TextOptions struct {
	Color bool // colour PASS, FAIL, SKIP and the verdict with ANSI escapes
}

// Text writes the end-of-run summary for a terminal, without colour: the
// faults, per variant a phase table, the hypotheses with observed against
// expected, the consistency accounting, breaker transitions and exemplar
// trace ids, then the verdict.
func Text(w io.Writer, r *Report) error {
	return TextWith(w, r, TextOptions{})
}

// TextWith writes the summary Text writes, with options.
func TextWith(w io.Writer, r *Report, opts TextOptions) error {
	ew := &errWriter{w: w}
	t := textWriter{w: ew, opts: opts}
	t.report(Normalize(r))
	if ew.err != nil {
		return fmt.Errorf("write text report %s: %w", r.Experiment, ew.err)
	}
	return nil
}

// SuiteText writes the summary of every report of s, then one line per
// experiment and the suite's verdict.
func SuiteText(w io.Writer, s *Suite) error {
	return SuiteTextWith(w, s, TextOptions{})
}

// SuiteTextWith writes the summary SuiteText writes, with options.
func SuiteTextWith(w io.Writer, s *Suite, opts TextOptions) error {
	ew := &errWriter{w: w}
	t := textWriter{w: ew, opts: opts}
	for _, r := range s.Reports {
		t.report(Normalize(r))
		fmt.Fprintln(ew)
	}
	planned := len(s.Reports) + len(s.Unreported)
	if len(s.Unreported) == 0 {
		fmt.Fprintf(ew, "Suite %s: %d experiments in %s\n", s.Name, planned, fmtSec(s.DurationSeconds))
	} else {
		fmt.Fprintf(ew, "Suite %s: %d experiments, %d reported, in %s\n", s.Name, planned, len(s.Reports), fmtSec(s.DurationSeconds))
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	failed, inconclusive := 0, 0
	for _, r := range s.Reports {
		c := r.Count()
		switch r.ExitCode() {
		case 0:
		case ExitCodeInconclusive:
			inconclusive++
		default:
			failed++
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d passed\t%d failed\t%d skipped\t%s\n",
			t.paint(r.Verdict()), r.Experiment, c.Passed, c.Failed, c.Skipped, fmtSec(r.DurationSeconds))
	}
	for _, u := range s.Unreported {
		if u.Error != "" {
			fmt.Fprintf(tw, "  %s\t%s\tno report: %s\n", t.paint("ERROR"), u.Experiment, oneLine(u.Error))
		} else {
			fmt.Fprintf(tw, "  %s\t%s\tnot run\n", t.paint("NOT RUN"), u.Experiment)
		}
	}
	tw.Flush()
	verdict := "PASS"
	line := fmt.Sprintf("all %d experiments passed", len(s.Reports))
	switch {
	case s.Error != "":
		// As fallacies run's exit code 3: a testbed failure wins over
		// a failure or an inconclusive report, and its experiment may
		// have no report to count.
		verdict = "ERROR"
		line = "the testbed failed: " + oneLine(s.Error)
	case s.Interrupted != nil:
		// As fallacies run's exit code 130 or 143: the suite did not
		// reach its end, whatever the reports it has say.
		verdict = "INTERRUPTED"
		line = fmt.Sprintf("%s after %d of %d experiments; every fault applied was removed", s.Interrupted.Reason, len(s.Reports), planned)
	case failed > 0 || (!s.Passed && inconclusive == 0):
		// Inconclusive experiments do not make a failed suite
		// inconclusive: one failure is the suite's verdict (exit 1).
		verdict = "FAIL"
		line = fmt.Sprintf("%d of %d experiments did not pass", failed+inconclusive, len(s.Reports))
	case inconclusive > 0:
		// As fallacies run's exit code 4: none failed, one was
		// inconclusive.
		verdict = "INCONCLUSIVE"
		line = fmt.Sprintf("%d of %d experiments inconclusive, none failed", inconclusive, len(s.Reports))
	}
	fmt.Fprintf(ew, "%s %s\n", t.paint(verdict), line)
	if ew.err != nil {
		return fmt.Errorf("write text suite %s: %w", s.Name, ew.err)
	}
	return nil
}

// errWriter remembers the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, nil
}

type textWriter struct {
	w    io.Writer
	opts TextOptions
}

// ANSI colours, all the same length so that coloured cells stay aligned.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// paint colours a status word when colour is on.
func (t *textWriter) paint(word string) string {
	if !t.opts.Color {
		return word
	}
	c := ansiYellow
	switch word {
	case "PASS":
		c = ansiGreen
	case "FAIL", "ERROR", "NO EFFECT", "REMOVAL FAILED":
		c = ansiRed
	}
	return c + word + ansiReset
}

func (t *textWriter) report(r *Report) {
	w := t.w
	title := "Experiment " + r.Experiment
	if r.Fallacy != "" {
		title += " (" + r.Fallacy + ")"
	}
	fmt.Fprintln(w, title)
	if r.Description != "" {
		fmt.Fprintln(w, "  "+oneLine(r.Description))
	}
	meta := []string{}
	if r.File != "" {
		meta = append(meta, "file "+r.File)
	}
	if r.Topology != "" {
		meta = append(meta, "topology "+r.Topology)
	}
	meta = append(meta, fmt.Sprintf("seed %d", r.Seed))
	if !r.StartedAt.IsZero() {
		meta = append(meta, "started "+r.StartedAt.Format("2006-01-02 15:04:05 MST"))
	}
	if r.Trials > 1 {
		meta = append(meta, fmt.Sprintf("%d trials per variant (figures below: trial 1; verdicts: all trials)", r.Trials))
	}
	if r.Control {
		meta = append(meta, "CONTROL: the faults' schedule followed, no fault injected")
	}
	meta = append(meta, "took "+fmtSec(r.DurationSeconds))
	fmt.Fprintln(w, "  "+strings.Join(meta, " · "))

	if faults := reportFaults(r); len(faults) > 0 {
		fmt.Fprintln(w, "\nFaults")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range faults {
			variant := ""
			if f.Variant != "" {
				variant = f.Variant + "\t"
			}
			fmt.Fprintf(tw, "  %s%s\n", variant, faultLine(f.Fault))
		}
		tw.Flush()
	}
	for _, v := range r.Variants {
		t.variant(r, v)
	}
	t.faultEffect(r.FaultEffect)
	fmt.Fprintln(w)
	if r.JaegerUI != "" {
		fmt.Fprintln(w, "Traces: "+r.JaegerUI)
	}
	fmt.Fprintf(w, "Verdict: %s — %s (exit %d)\n", t.paint(r.Verdict()), verdictLine(r), r.ExitCode())
}

func (t *textWriter) variant(r *Report, v Variant) {
	w := t.w
	verdict := variantVerdict(r, v)
	fmt.Fprintf(w, "\nVariant %s  %s\n", v.Name, t.paint(verdict))
	if len(v.Knobs) > 0 {
		kn := make([]string, len(v.Knobs))
		for i, k := range v.Knobs {
			kn[i] = k.Name + "=" + k.Value
		}
		fmt.Fprintln(w, "  knobs: "+strings.Join(kn, " "))
	}
	if v.Error != "" {
		fmt.Fprintln(w, "  error: "+oneLine(v.Error))
	}
	if st := v.Stopped; st != nil {
		fmt.Fprintf(w, "  stopped: abort hypothesis %s breached at %s (%s phase, observed %s); load stopped at %s\n",
			st.Hypothesis, fmtSec(st.BreachedOffset), st.Phase, dash(st.Observed), fmtSec(st.StoppedOffset))
	}

	for _, note := range removalNotes(v) {
		fmt.Fprintln(w, "  "+t.paint("REMOVAL FAILED")+": "+note)
	}
	if lr := v.LateRemoval; lr != nil {
		fmt.Fprintln(w, "  late removal: "+lr.Note)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tREQUESTS\tSUCCESS\tP50\tP99\tMAX\tDROPPED\tERRORS")
	row := func(name string, p Phase) {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", name, p.Requests, fmtPct(p.SuccessRate),
			fmtMs(p.LatencyMs.P50), fmtMs(p.LatencyMs.P99), fmtMs(p.LatencyMs.Max), p.Dropped, fmtCodes(p.Errors, 2))
	}
	for _, ph := range phaseOrder(v.Phases) {
		row(ph, v.Phases[ph])
	}
	for _, op := range sortedKeys(v.Ops) {
		for _, ph := range phaseOrder(v.Ops[op]) {
			row(op+"/"+ph, v.Ops[op][ph])
		}
	}
	tw.Flush()
	if l := v.Load; l.Sent > 0 {
		fmt.Fprintf(w, "  Load: achieved %s of %s (%s) · sent %d · dropped %d · send lag p50 %s p99 %s max %s\n",
			fmtPerSecond(l.AchievedPerSecond), fmtPerSecond(l.TargetPerSecond), fmtRateError(l.AchievedPerSecond, l.TargetPerSecond),
			l.Sent, l.Dropped, fmtMs(l.SendLagMs.P50), fmtMs(l.SendLagMs.P99), fmtMs(l.SendLagMs.Max))
	}
	if mechanismsKnown(v) {
		parts := make([]string, len(v.Mechanisms))
		for i, m := range v.Mechanisms {
			parts[i] = fmtMechanism(m)
		}
		if len(parts) == 0 {
			parts = []string{noMechanism}
		}
		fmt.Fprintln(w, "  Mechanisms: "+strings.Join(parts, " · "))
	}

	if len(v.Hypotheses) > 0 {
		fmt.Fprintln(w, "  Hypotheses")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, h := range v.Hypotheses {
			st := status(h)
			var detail string
			switch st {
			case "SKIP":
				detail = "skipped: " + dash(h.SkipReason)
			case "PASS":
				detail = "observed " + dash(h.Observed)
			case "INCONCLUSIVE":
				if h.NotJudged() {
					detail = h.SkipReason
					break
				}
				detail = fmt.Sprintf("observed %s: the interval straddles the bound (%s)", dash(h.Observed), trialsHeld(h.Trials))
			default:
				detail = fmt.Sprintf("observed %s, expected %s", dash(h.Observed), h.Expr)
				if h.Abort {
					detail += " (aborted the run)"
				}
			}
			name := h.Expr
			if h.Name != "" {
				name = h.Name + ": " + h.Expr
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", t.paint(st), h.Phase, name, detail)
		}
		tw.Flush()
	}

	c := v.Consistency
	fmt.Fprintf(w, "  Consistency: acknowledged %d · lost %d · duplicated %d · ghost %d · recovered %d · unexpected %d\n",
		c.Acknowledged, c.Lost, c.Duplicated, c.Ghost, c.Recovered, c.Unexpected)
	for _, name := range sortedKeys(c.Consumers) {
		cc := c.Consumers[name]
		fmt.Fprintf(w, "    %s: applied %d · lost %d · duplicated %d · unexpected %d\n",
			name, cc.Applied, cc.Lost, cc.Duplicated, cc.Unexpected)
	}
	fmt.Fprintf(w, "    payments: lost %d · duplicated %d · ghost %d\n", c.Payments.Lost, c.Payments.Duplicated, c.Payments.Ghost)

	if len(v.Breakers) > 0 {
		fmt.Fprintln(w, "  Breakers")
		links, _ := breakerLinks(v.Breakers, 0)
		for _, link := range links {
			var parts []string
			for _, b := range v.Breakers {
				if b.Link == link {
					parts = append(parts, fmt.Sprintf("%s→%s at %s", b.From, b.To, fmtSec(b.Offset)))
				}
			}
			fmt.Fprintf(w, "    %s: %s\n", link, strings.Join(parts, ", "))
		}
	}
	if len(v.Exemplars) > 0 {
		fmt.Fprintln(w, "  Exemplar traces")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, e := range v.Exemplars {
			status := "ok"
			if e.Error {
				status = "error"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Phase, e.Kind, e.TraceID, e.Root, fmtMs(e.DurationMs), status, e.JaegerURL)
		}
		tw.Flush()
	}
}

// faultEffect says whether the fault measurably changed the naive
// variant; loudly when it did not.
func (t *textWriter) faultEffect(fe *FaultEffect) {
	if fe == nil {
		return
	}
	w := t.w
	if !fe.Significant {
		fmt.Fprintf(w, "\n%s THE FAULT HAD NO MEASURABLE EFFECT on variant %s: no figure below changed by more than noise, so this run proves nothing about the fault%s\n",
			t.paint("NO EFFECT"), fe.Variant, noteSuffix(fe.Note))
	} else {
		fmt.Fprintf(w, "\nThe fault bit: variant %s changed significantly (family-wise false-alarm rate %s)%s\n", fe.Variant, fmtPct(fe.Alpha), noteSuffix(fe.Note))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range fe.Effects {
		mark := "noise"
		if e.Significant {
			mark = "significant"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s → %s\t%s\tp=%s\t%s\n", e.Metric, e.Compare, fmtUnit(e.Base, e.Unit), fmtUnit(e.Value, e.Unit), mark, fmtP(e.P), e.Method)
	}
	tw.Flush()
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return " (" + note + ")"
}

// inconclusiveOnly reports whether no hypothesis failed and one was
// inconclusive.
func inconclusiveOnly(hs []Hypothesis) bool {
	some := false
	for _, h := range hs {
		switch h.Verdict {
		case VerdictFail:
			return false
		case VerdictInconclusive:
			some = true
		}
	}
	return some
}

// trialsHeld says in how many trials a hypothesis held on its own.
func trialsHeld(ts []HypothesisTrial) string {
	held := 0
	for _, t := range ts {
		if t.Passed {
			held++
		}
	}
	return fmt.Sprintf("held in %d of %d trials", held, len(ts))
}

// faultRow is one fault as one variant ran it: its times, and whether
// it came off, are that variant's own.
type faultRow struct {
	Variant string // "" when the faults read the same in every variant
	Fault
}

// reportFaults returns the faults as the variants ran them. Every variant
// follows the same schedule, but each applies and removes its faults
// itself, so when they came on and off can differ from one variant to the
// next: then every variant's faults are listed, each row naming its
// variant; when they read the same in every variant, they are listed once.
func reportFaults(r *Report) []faultRow {
	var rows []faultRow
	var first []Fault
	same := true
	for _, v := range r.Variants {
		if len(v.Faults) == 0 {
			continue
		}
		if first == nil {
			first = v.Faults
		} else {
			same = same && sameFaults(first, v.Faults)
		}
		for _, f := range v.Faults {
			rows = append(rows, faultRow{Variant: v.Name, Fault: f})
		}
	}
	if same {
		rows = rows[:len(first)]
		for i := range rows {
			rows[i].Variant = ""
		}
	}
	return rows
}

// sameFaults reports whether two variants' faults read the same in the
// faults table: the same faults, on and off at the same shown times.
func sameFaults(a, b []Fault) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if faultLine(a[i]) != faultLine(b[i]) || a[i].RemovalError != b[i].RemovalError {
			return false
		}
	}
	return true
}

// faultLine is a fault's row of the faults table, tab-separated.
func faultLine(f Fault) string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s–%s\t%s", f.Name, f.Kind, f.Target,
		dash(f.Direction), fmtSec(f.StartOffset), fmtSec(f.EndOffset), fmtAttrs(f.Attrs))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine folds whitespace, including newlines, into single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
