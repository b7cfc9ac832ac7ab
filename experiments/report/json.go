package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
)

// JSON writes r as indented JSON, the shape documented in docs/report.md.
// Nil slices and maps are written as [] and {}, every variant has the three
// phases before, during and after, and non-finite numbers (NaN, ±Inf, which
// JSON cannot carry) are written as 0. r itself is not modified.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Normalize(r)); err != nil {
		return fmt.Errorf("encode report %s: %w", r.Experiment, err)
	}
	return nil
}

// SuiteJSON writes s as indented JSON, each report normalized as JSON does.
func SuiteJSON(w io.Writer, s *Suite) error {
	n := *s
	n.Reports = make([]*Report, len(s.Reports))
	for i, r := range s.Reports {
		n.Reports[i] = Normalize(r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("encode suite %s: %w", s.Name, err)
	}
	return nil
}

// Decode reads a report written by JSON. Unknown keys are ignored, so a
// reader built against this version keeps reading reports of later versions
// that only add keys.
func Decode(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return &r, nil
}

// Normalize returns a copy of r in the canonical shape JSON writes: nil
// slices and maps replaced by empty ones, the phases before, during and
// after present in every variant, and non-finite numbers replaced by 0.
// Renderers call it so that they never meet a nil map; r is not modified.
func Normalize(r *Report) *Report {
	n := *r
	n.Variants = make([]Variant, len(r.Variants))
	for i, v := range r.Variants {
		n.Variants[i] = normalizeVariant(v)
	}
	n.DurationSeconds = finite(n.DurationSeconds)
	if n.Trials == 0 {
		n.Trials = 1 // a report of an older version: one trial
	}
	if fe := n.FaultEffect; fe != nil {
		c := *fe
		c.Effects = make([]Effect, len(fe.Effects))
		for i, e := range fe.Effects {
			e.Base, e.Value, e.Change, e.P = finite(e.Base), finite(e.Value), finite(e.Change), finite(e.P)
			c.Effects[i] = e
		}
		n.FaultEffect = &c
	}
	return &n
}

func normalizeVariant(v Variant) Variant {
	v.Knobs = nonNil(v.Knobs)
	v.Phases = normalizePhases(v.Phases, true)
	ops := make(map[string]map[string]Phase, len(v.Ops))
	for op, ph := range v.Ops {
		ops[op] = normalizePhases(ph, false)
	}
	v.Ops = ops
	hs := make([]Hypothesis, len(v.Hypotheses))
	for i, h := range v.Hypotheses {
		hs[i] = normalizeHypothesis(h)
	}
	v.Hypotheses = hs
	trials := make([]Trial, len(v.Trials))
	for i, t := range v.Trials {
		t.DurationSeconds = finite(t.DurationSeconds)
		t.Metrics = finiteMap(t.Metrics)
		t.Timeseries = normalizeSeconds(t.Timeseries)
		trials[i] = t
	}
	v.Trials = trials
	faults := make([]Fault, len(v.Faults))
	for i, f := range v.Faults {
		f.Attrs = nonNilMap(f.Attrs)
		f.StartOffset, f.EndOffset = finite(f.StartOffset), finite(f.EndOffset)
		faults[i] = f
	}
	v.Faults = faults
	if lr := v.LateRemoval; lr != nil {
		c := *lr
		c.Faults = nonNil(c.Faults)
		v.LateRemoval = &c
	}
	v.Timeseries = normalizeSeconds(v.Timeseries)
	v.Consistency.Consumers = nonNilMap(v.Consistency.Consumers)
	br := make([]BreakerTransition, len(v.Breakers))
	for i, b := range v.Breakers {
		b.Offset = finite(b.Offset)
		br[i] = b
	}
	v.Breakers = br
	v.Metrics = finiteMap(v.Metrics)
	ex := make([]Exemplar, len(v.Exemplars))
	for i, e := range v.Exemplars {
		e.DurationMs = finite(e.DurationMs)
		spans := make([]WaterfallSpan, len(e.Spans))
		for j, s := range e.Spans {
			s.StartMs, s.DurationMs = finite(s.StartMs), finite(s.DurationMs)
			spans[j] = s
		}
		e.Spans = spans
		ex[i] = e
	}
	v.Exemplars = ex
	mech := make([]Mechanism, len(v.Mechanisms))
	for i, m := range v.Mechanisms {
		m.Phases = nonNilMap(m.Phases)
		mech[i] = m
	}
	v.Mechanisms = mech
	cons := make([]ConsumerSeries, len(v.Consumers))
	for i, c := range v.Consumers {
		secs := make([]ConsumerSecond, len(c.Seconds))
		for j, s := range c.Seconds {
			s.LagMs = finite(s.LagMs)
			secs[j] = s
		}
		c.Seconds = secs
		cons[i] = c
	}
	v.Consumers = cons
	return v
}

// normalizeHypothesis fills what a report of an older version lacks (its
// verdict, from passed and skipped) and makes its lists non-nil.
func normalizeHypothesis(h Hypothesis) Hypothesis {
	if h.Verdict == "" {
		h.Verdict = HypothesisVerdict(h.Passed, h.Skipped, false)
	}
	h.Trials = nonNil(h.Trials)
	iv := make([]Estimate, len(h.Intervals))
	for i, e := range h.Intervals {
		e.Bound, e.Mean, e.Low, e.High = finite(e.Bound), finite(e.Mean), finite(e.Low), finite(e.High)
		iv[i] = e
	}
	h.Intervals = iv
	return h
}

// normalizeSeconds copies a timeseries with its numbers finite and its
// lists non-nil.
func normalizeSeconds(secs []Second) []Second {
	ts := make([]Second, len(secs))
	for i, s := range secs {
		s.SuccessRate, s.P50Ms, s.P99Ms = finite(s.SuccessRate), finite(s.P50Ms), finite(s.P99Ms)
		s.ActiveFaults = nonNil(s.ActiveFaults)
		ts[i] = s
	}
	return ts
}

// finiteMap copies m with every value finite.
func finiteMap(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, x := range m {
		out[k] = finite(x)
	}
	return out
}

// normalizePhases copies m with every phase normalized; with all set, the
// three standard phases are added when missing.
func normalizePhases(m map[string]Phase, all bool) map[string]Phase {
	out := make(map[string]Phase, 3)
	if all {
		for _, p := range []string{PhaseBefore, PhaseDuring, PhaseAfter} {
			out[p] = Phase{}
		}
	}
	for k, p := range m {
		out[k] = p
	}
	for k, p := range out {
		p.Errors = nonNilMap(p.Errors)
		p.SuccessRate, p.Throughput = finite(p.SuccessRate), finite(p.Throughput)
		l := &p.LatencyMs
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean = finite(l.P50), finite(l.P90), finite(l.P99), finite(l.P999), finite(l.Max), finite(l.Mean)
		out[k] = p
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}
