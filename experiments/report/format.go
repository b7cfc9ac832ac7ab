package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// fmtMs formats a duration in milliseconds with a precision that suits its
// size: 0.42ms, 2.13ms, 31.2ms, 312ms, 1.24s.
func fmtMs(ms float64) string {
	ms = finite(ms)
	switch a := math.Abs(ms); {
	case a == 0:
		return "0ms"
	case a < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case a < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case a < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case a < 60_000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	default:
		return strconv.FormatFloat(ms/60_000, 'f', 1, 64) + "min"
	}
}

// fmtPct formats a fraction 0–1 as a percentage: 100%, 99.87%, 62.4%.
func fmtPct(f float64) string {
	p := finite(f) * 100
	switch {
	case p == 100 || p == 0:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case p >= 99:
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
}

// fmtSec formats an offset in seconds: 10s, 10.4s.
func fmtSec(s float64) string {
	return strconv.FormatFloat(math.Round(finite(s)*10)/10, 'f', -1, 64) + "s"
}

// fmtNum formats a float without needless digits.
func fmtNum(x float64) string {
	x = finite(x)
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	if math.Abs(x) >= 100 {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

// codeCount is a number of errors with one gRPC code.
type codeCount struct {
	Code  string
	Count int64
}

// topCodes returns the error codes of m, most frequent first, ties by name.
func topCodes(m map[string]int64) []codeCount {
	out := make([]codeCount, 0, len(m))
	for k, n := range m {
		if n > 0 {
			out = append(out, codeCount{k, n})
		}
	}
	slices.SortFunc(out, func(a, b codeCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// fmtCodes formats the top n error codes: "DEADLINE_EXCEEDED 120, UNAVAILABLE 8 (+2 more)".
func fmtCodes(m map[string]int64, n int) string {
	top := topCodes(m)
	if len(top) == 0 {
		return "-"
	}
	parts := make([]string, 0, n)
	for i, c := range top {
		if i == n {
			parts[len(parts)-1] += fmt.Sprintf(" (+%d more)", len(top)-n)
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", c.Code, c.Count))
	}
	return strings.Join(parts, ", ")
}

// fmtAttrs formats fault attributes as name=value, sorted by name.
func fmtAttrs(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// hypothesisTitle is a hypothesis's name, or its expression qualified by its phase.
func hypothesisTitle(h Hypothesis) string {
	if h.Name != "" {
		return h.Name
	}
	return fmt.Sprintf("[%s] %s", h.Phase, h.Expr)
}

// removalNotes says, one sentence per fault of v whose removal failed
// (Fault.RemovalError), what failed and whether the second attempt took
// the fault off.
func removalNotes(v Variant) []string {
	var out []string
	for _, f := range v.Faults {
		if f.RemovalError == "" {
			continue
		}
		outcome := "the second attempt took it off at " + fmtSec(f.EndOffset) + ", so it was on until then"
		if !f.RolledBack {
			outcome = "the second attempt failed too: it may still be on (fallacies reset --journal)"
		}
		out = append(out, fmt.Sprintf("fault %s (%s on %s) did not come off: %s; %s", f.Name, f.Kind, f.Target, oneLine(f.RemovalError), outcome))
	}
	return out
}

// variantVerdict is the one word of variant v of report r, the same in
// every renderer: ERROR when the testbed failed it, INTERRUPTED when a
// signal stopped the run before the variant could pass (its hypotheses
// were not judged), INCONCLUSIVE when it did not pass but no hypothesis
// failed and one was inconclusive (the exit code 4 of a run), FAIL when
// it did not pass otherwise, else PASS.
func variantVerdict(r *Report, v Variant) string {
	switch {
	case v.Error != "":
		return "ERROR"
	case r.Interrupted != nil && !v.Passed:
		return "INTERRUPTED"
	case !v.Passed && inconclusiveOnly(v.Hypotheses):
		return "INCONCLUSIVE"
	case !v.Passed:
		return "FAIL"
	}
	return "PASS"
}

// status is PASS, FAIL, INCONCLUSIVE or SKIP for a hypothesis.
func status(h Hypothesis) string {
	switch {
	case h.Skipped:
		return "SKIP"
	case h.Verdict == VerdictInconclusive:
		return "INCONCLUSIVE"
	case h.Passed:
		return "PASS"
	default:
		return "FAIL"
	}
}

// verdictLine is the sentence under the verdict.
func verdictLine(r *Report) string {
	c := r.Count()
	switch r.ExitCode() {
	case 3:
		msg := r.Error
		if msg == "" {
			for _, v := range r.Variants {
				if v.Error != "" {
					msg = fmt.Sprintf("variant %s: %s", v.Name, v.Error)
					break
				}
			}
		}
		return "the testbed failed: " + msg
	case 1:
		if c.Failed == 0 {
			return "the run did not pass"
		}
		return fmt.Sprintf("%d of %d %s failed%s", c.Failed, c.Total-c.Skipped, checkNoun(c), checksNote(c))
	case 0:
		s := fmt.Sprintf("all %d %s held", c.Passed, checkNoun(c))
		if c.Skipped > 0 {
			s += fmt.Sprintf(" (%d skipped)", c.Skipped)
		}
		return s + checksNote(c)
	case ExitCodeInconclusive:
		if n := notJudged(r); n == c.Inconclusive {
			return fmt.Sprintf("%d of %d %s not judged, none failed%s: a fault came off so late that the after phase was too short to judge; retry",
				n, c.Total-c.Skipped, checkNoun(c), checksNote(c))
		}
		return fmt.Sprintf("%d of %d %s inconclusive over %d trials, none failed%s: an interval straddles its bound; run more trials or retry",
			c.Inconclusive, c.Total-c.Skipped, checkNoun(c), r.Trials, checksNote(c))
	default:
		msg := "interrupted"
		if r.Interrupted != nil {
			msg = r.Interrupted.Reason
		}
		return msg + "; what was measured until then is kept, the hypotheses were not judged"
	}
}

// notJudged counts the hypotheses of r that could not be judged at all
// (Hypothesis.NotJudged).
func notJudged(r *Report) int {
	n := 0
	for _, v := range r.Variants {
		for _, h := range v.Hypotheses {
			if h.NotJudged() {
				n++
			}
		}
	}
	return n
}

// checkNoun names what Counts count: hypotheses when each was checked once,
// else checks (a hypothesis is checked in every variant it applies to).
func checkNoun(c Counts) string {
	if c.Total == c.Hypotheses {
		return "hypotheses"
	}
	return "checks"
}

// checksNote says what the checks are when they are not the hypotheses:
// ": 6 hypotheses × the variants they apply to".
func checksNote(c Counts) string {
	if c.Total == c.Hypotheses {
		return ""
	}
	return fmt.Sprintf(": %d hypotheses × the variants they apply to", c.Hypotheses)
}

// fmtUnit formats a figure in the unit report.json gives it in.
func fmtUnit(x float64, unit string) string {
	switch unit {
	case "ms":
		return fmtMs(x)
	case "fraction":
		return fmtPct(x)
	case "1/s":
		return fmtPerSecond(x)
	}
	return strconv.FormatFloat(finite(x), 'g', 4, 64)
}

// fmtP formats a p-value: 0.032, or <0.001.
func fmtP(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// fmtPerSecond formats a rate per second: "49.9/s".
func fmtPerSecond(r float64) string { return strconv.FormatFloat(finite(r), 'f', 1, 64) + "/s" }

// fmtRateError formats how far an achieved rate is off its target:
// "-0.20%", "+0.01%", or "-" without a target.
func fmtRateError(achieved, target float64) string {
	if finite(target) == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.2f%%", 100*(finite(achieved)/target-1))
}

// mechanismLabels says what each mechanism kind did, for a count.
var mechanismLabels = map[string]string{
	MechanismFallback:         "fallbacks served",
	MechanismRetry:            "retries sent",
	MechanismDeadline:         "deadlines hit",
	MechanismBreakerOpen:      "breaker opens",
	MechanismBreakerRejected:  "calls rejected by the breaker",
	MechanismBulkheadRejected: "calls rejected by the bulkhead",
	MechanismHedge:            "hedges sent",
	MechanismHedgeWon:         "hedges won",
	MechanismDuplicateSkipped: "duplicates skipped",
}

// fmtMechanism says what one mechanism did: "494 fallbacks served on
// order.user".
func fmtMechanism(m Mechanism) string {
	label, ok := mechanismLabels[m.Kind]
	if !ok {
		label = m.Kind
	}
	on := " on "
	if !strings.Contains(m.Where, ".") {
		on = " by " // a consumer, not a link
	}
	s := fmt.Sprintf("%d %s%s%s", m.Count, label, on, m.Where)
	var parts []string
	only := ""
	for _, p := range []string{PhaseBefore, PhaseDuring, PhaseAfter} {
		if n, ok := m.Phases[p]; ok && n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
			only = p
		}
	}
	switch {
	case len(parts) == 1 && m.Phases[only] == m.Count:
		s += ", all " + only + " the fault"
	case len(parts) > 1:
		s += " (" + strings.Join(parts, " · ") + ")"
	}
	return s
}

// noMechanism is what a variant in which no mechanism acted shows.
const noMechanism = "none acted: no fallback, retry, deadline, breaker, bulkhead, hedge or duplicate skip"

// mechanismsKnown reports whether v's mechanisms were read from the
// services: a variant that failed or was aborted before the services were
// read has none, which does not mean none acted.
func mechanismsKnown(v Variant) bool {
	return len(v.Mechanisms) > 0 || (v.Error == "" && v.Consistency.Acknowledged > 0)
}
