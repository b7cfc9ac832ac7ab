package explore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
)

// judged is what one run of a scenario showed.
type judged struct {
	outcome string
	failed  []FailedCheck
	effect  string
	class   string // the effect's signature: what failed, slowed, which mechanisms acted where
	note    string
}

// runOnce runs an experiment and judges it: failed when a hypothesis
// other than the steady state failed; unjudged when the steady state
// failed (the machine, not the fault) or the testbed did.
func (s *search) runOnce(ctx context.Context, exp *definition.Experiment) judged {
	rep, err := s.runTimed(ctx, exp, Hooks{})
	if err != nil {
		return judged{outcome: Unjudged, note: err.Error()}
	}
	return judge(rep)
}

// judge reads a run's report: failed when a hypothesis other than the
// steady state failed; unjudged when the steady state failed, the testbed
// did, or, none failing, a hypothesis could not be judged (a fault came
// off so late that the after phase was too short: the runner measures
// the after phase from the removal, report.LateRemoval); tolerated
// otherwise, with the effect the fault visibly had.
func judge(rep *report.Report) judged {
	switch {
	case rep.Interrupted != nil:
		return judged{outcome: Unjudged, note: rep.Interrupted.Reason}
	case rep.Error != "":
		return judged{outcome: Unjudged, note: rep.Error}
	case len(rep.Variants) != 1:
		return judged{outcome: Unjudged, note: "no variant ran"}
	}
	v := rep.Variants[0]
	if v.Error != "" {
		return judged{outcome: Unjudged, note: v.Error}
	}
	j := judged{outcome: Tolerated}
	j.effect, j.class = effectOf(v)
	var notJudged string
	for _, h := range v.Hypotheses {
		if h.Passed || h.Skipped {
			continue
		}
		if h.NotJudged() {
			notJudged = h.SkipReason
			continue
		}
		if h.Name == SteadyState {
			return judged{outcome: Unjudged, note: "steady state failed before the fault: " + h.Observed}
		}
		j.outcome = Failed
		j.failed = append(j.failed, FailedCheck{Name: h.Name, Check: h.Expr, Phase: h.Phase, Observed: h.Observed})
	}
	if j.outcome == Tolerated && notJudged != "" {
		return judged{outcome: Unjudged, note: notJudged}
	}
	return j
}

// effectOf says what a fault visibly did although every hypothesis held:
// orders failed or slowed during it, or a resilience mechanism acted.
func effectOf(v report.Variant) (effect, class string) {
	var out, cls []string
	before, during := v.Phases[string(definition.Before)], v.Phases[string(definition.During)]
	if n := during.Requests - during.Successes; n > 0 {
		out = append(out, fmt.Sprintf("%d orders failed during", n))
		cls = append(cls, "failed")
	}
	if during.LatencyMs.P99 > 2*before.LatencyMs.P99 && during.LatencyMs.P99 > before.LatencyMs.P99+50 {
		out = append(out, fmt.Sprintf("p99 %.0fms → %.0fms", before.LatencyMs.P99, during.LatencyMs.P99))
		cls = append(cls, "slowed")
	}
	for _, m := range v.Mechanisms {
		out = append(out, fmt.Sprintf("%s on %s ×%d", m.Kind, m.Where, m.Count))
		cls = append(cls, m.Kind+"@"+m.Where)
	}
	slices.Sort(cls)
	return strings.Join(out, "; "), strings.Join(cls, ",")
}

// runScenario runs one planned scenario (again once when its steady
// state failed), records it, and, when it failed and its fault-free
// control did not, shrinks it and writes it.
func (s *search) runScenario(ctx context.Context, sc Scenario) ScenarioRun {
	s.progress(sc.ID())
	start := s.o.Now()
	run := ScenarioRun{ID: sc.ID(), Faults: sc.Faults}
	j := s.judgeScenario(ctx, "explore-scenario", sc)
	run.Outcome, run.Failed, run.Effect, run.EffectClass, run.Note = j.outcome, j.failed, j.effect, j.class, j.note
	if j.outcome == Failed {
		if note := s.control(ctx, sc, names(j.failed)); note != "" {
			run.Outcome, run.Note = Unjudged, note
		}
	}
	run.Seconds = s.o.Now().Sub(start).Seconds()
	s.mu.Lock()
	s.res.Counts.Run++
	s.mu.Unlock()
	if run.Outcome == Failed {
		run.Finding, run.Note = s.finding(ctx, sc, j.failed, j.class)
	}
	return run
}

// judgeScenario runs a scenario, once more when its steady state failed
// (the machine's doing).
func (s *search) judgeScenario(ctx context.Context, name string, sc Scenario) judged {
	exp, _, err := s.experiment(name, sc, s.setup)
	if err != nil {
		return judged{outcome: Unjudged, note: err.Error()}
	}
	var j judged
	for attempt := 0; attempt < 2; attempt++ {
		if j = s.runOnce(ctx, exp); j.outcome != Unjudged || ctx.Err() != nil {
			break
		}
	}
	return j
}

// control runs the scenario's fault-free control (Scenario.Control: the
// same phases, every fault made inert) and says why the scenario's
// failure is not the fault's when the control failed one of want too, or
// could not be judged; "" when the control held.
func (s *search) control(ctx context.Context, sc Scenario, want []string) string {
	j := s.judgeScenario(ctx, "explore-control", sc.Control())
	s.mu.Lock()
	s.res.Counts.Controls++
	s.mu.Unlock()
	switch {
	case j.outcome == Unjudged:
		return "failed " + strings.Join(want, ", ") + ", but its fault-free control could not be judged (" + j.note + "): not a finding"
	case j.outcome == Failed && failsAny(j.failed, want):
		var obs []string
		for _, f := range j.failed {
			if slices.Contains(want, f.Name) {
				obs = append(obs, f.Name+": "+f.Observed)
			}
		}
		return "failed " + strings.Join(want, ", ") + ", but its fault-free control failed too (" + strings.Join(obs, "; ") + "): the machine or the system, not the fault; not a finding"
	}
	return ""
}

// names lists the hypotheses' names, sorted.
func names(fs []FailedCheck) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

// failsAny reports whether failed holds one of the hypotheses named want.
func failsAny(failed []FailedCheck, want []string) bool {
	return slices.ContainsFunc(failed, func(f FailedCheck) bool { return slices.Contains(want, f.Name) })
}

// finding shrinks a failing scenario, writes it under findings/, runs
// the written file once more to confirm it and its fault-free control
// to rule the machine out. A failure of an edge set already written
// with the same hypotheses and the same effect (class: orders failed,
// or slowed, which mechanisms acted) is noted, not written again. One
// finding at a time: the other scenarios run on meanwhile.
func (s *search) finding(ctx context.Context, sc Scenario, failed []FailedCheck, class string) (file, note string) {
	s.findMu.Lock()
	defer s.findMu.Unlock()
	want := names(failed)
	s.mu.Lock()
	for _, f := range s.res.Findings {
		if slices.Equal(edgesOf(f.Scenario), edgesOf(sc)) && slices.Equal(f.Want, want) && f.Class == class {
			s.mu.Unlock()
			return "", "the same weakness as " + f.File
		}
	}
	s.mu.Unlock()
	stillFails := func(c Scenario) bool {
		exp, _, err := s.experiment("explore-shrink", c, s.setup)
		if err != nil {
			return false
		}
		j := s.runOnce(ctx, exp)
		s.mu.Lock()
		s.res.Counts.ShrinkRuns++
		s.mu.Unlock()
		return j.outcome == Failed && failsAny(j.failed, want)
	}
	small, runs := sc, 0
	if s.over(ctx) {
		note = "not shrunk: the search was over (its budget spent, or a finding of --stop-on made)"
	} else {
		s.progress("shrinking " + sc.ID())
		small, runs = Shrink(sc, s.o.MinWindow, stillFails)
	}
	f, err := s.write(ctx, sc, small, failed, want, runs)
	if err != nil {
		return "", err.Error()
	}
	if !f.Confirmed && runs > 0 {
		// The shrunk scenario did not fail again: its windows may be at
		// the edge of what the machine times reliably. The scenario as
		// found, then.
		os.Remove(filepath.Join(s.o.Out, f.File))
		if f, err = s.write(ctx, sc, sc, failed, want, 0); err != nil {
			return "", err.Error()
		}
		note = "its shrunk form did not fail again when replayed: written as found"
	}
	if !f.Confirmed {
		// Failed once, not once more: the machine's doing as likely as
		// the fault's. Not a finding.
		os.Remove(filepath.Join(s.o.Out, f.File))
		return "", fmt.Sprintf("failed %v, but its replay did not fail again: not written (a load spike of the machine?)", want)
	}
	// The replay failed: its control, run right after it, must not.
	f.Want, f.Class = want, class
	if c := s.control(ctx, f.Scenario, want); c != "" {
		os.Remove(filepath.Join(s.o.Out, f.File))
		return "", c + " (the control of the written file)"
	}
	f.At = s.o.Now().Sub(s.res.StartedAt).Seconds()
	s.mu.Lock()
	s.res.Findings = append(s.res.Findings, f)
	s.mu.Unlock()
	if failsAny(f.Failed, s.o.StopOn) {
		s.stopped.Store(true)
	}
	return f.File, note
}

// write writes small as a finding file and replays the file as written,
// as fallacies run would: Confirmed when it failed one of want again.
func (s *search) write(ctx context.Context, orig, small Scenario, failed []FailedCheck, want []string, runs int) (Finding, error) {
	name := findingName(small, s.res.Findings)
	rel := filepath.Join(FolderFindings, name+".yaml")
	text := s.setup.Render(name, "found by fallacies explore: "+small.ID(), small, header(s, orig, small, failed, runs, rel))
	path := filepath.Join(s.o.Out, rel)
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return Finding{}, fmt.Errorf("not written: %v", err)
	}
	f := Finding{File: rel, From: orig.ID(), Scenario: small, Failed: failed, Runs: runs}
	exp, err := definition.Load(path)
	if err != nil {
		return f, fmt.Errorf("written but not readable (a bug of explore): %v", err)
	}
	j := s.runOnce(ctx, exp)
	s.mu.Lock()
	s.res.Counts.ShrinkRuns++
	s.mu.Unlock()
	f.Confirmed = j.outcome == Failed && failsAny(j.failed, want)
	if f.Confirmed {
		f.Failed = j.failed
	}
	return f, nil
}

// header is the comment a finding file starts with.
func header(s *search, orig, small Scenario, failed []FailedCheck, runs int, rel string) []string {
	h := []string{
		fmt.Sprintf("Found by fallacies explore (seed %d, %s): %s.", s.o.Seed, s.o.Now().UTC().Format(time.DateTime+" UTC"), small.ID()),
	}
	for _, f := range failed {
		h = append(h, fmt.Sprintf("Failed: %s (%s, %s): observed %s.", f.Name, f.Check, f.Phase, f.Observed))
	}
	for _, f := range small.Faults {
		h = append(h, fmt.Sprintf("Fault: %s on %s for %s%s.", f.Kind, f.Edge, f.Window, attrText(f.Attrs)))
	}
	if runs > 0 {
		h = append(h, fmt.Sprintf("Shrunk in %d runs from %s (window %s): removing any fault, or halving any window, made it pass.", runs, orig.ID(), orig.Window()))
	}
	if len(s.setup.Knobs) > 0 {
		var ks []string
		for _, k := range s.setup.Knobs {
			ks = append(ks, k.Name+"="+k.Value)
		}
		h = append(h, "Knobs: "+strings.Join(ks, " ")+".")
	}
	h = append(h, "Replay: fallacies run "+filepath.ToSlash(filepath.Join(s.o.Out, rel)))
	return h
}

func attrText(as []Attr) string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name+"="+strings.Trim(a.Value, `"`))
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func edgesOf(sc Scenario) []string {
	var out []string
	for _, f := range sc.Faults {
		out = append(out, f.Edge)
	}
	slices.Sort(out)
	return out
}

var notName = regexp.MustCompile(`[^a-z0-9]+`)

// findingName names a finding's file and experiment after its faults:
// edge-kind[-method] joined, made unique among the findings.
func findingName(sc Scenario, have []Finding) string {
	var parts []string
	for _, f := range sc.Faults {
		p := f.Edge + "-" + string(f.Kind)
		if i := strings.LastIndex(f.ID, "/"); strings.Count(f.ID, "/") >= 3 && i >= 0 {
			p += "-" + f.ID[i+1:] // the method
		}
		parts = append(parts, p)
	}
	base := strings.Trim(notName.ReplaceAllString(strings.ToLower(strings.Join(parts, "-and-")), "-"), "-")
	name := base
	for n := 2; slices.ContainsFunc(have, func(f Finding) bool { return f.File == filepath.Join("findings", name+".yaml") }); n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}
