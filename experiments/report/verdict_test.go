package report

import "testing"

// TestVerdictCountsChecks: a file with 6 hypotheses, 3 of them checked in
// both variants, makes 9 checks; the verdict says so instead of calling
// them 9 hypotheses.
func TestVerdictCountsChecks(t *testing.T) {
	h := func(name, variant string, passed bool) Hypothesis {
		return Hypothesis{Name: name, Expr: name + " > 0", Phase: "during", Variant: variant, Passed: passed}
	}
	r := &Report{Passed: true, Variants: []Variant{
		{Name: "naive", Passed: true, Hypotheses: []Hypothesis{h("a", "naive", true), h("b", "naive", true), h("c", "naive", true), h("n1", "naive", true), h("n2", "naive", true)}},
		{Name: "resilient", Passed: true, Hypotheses: []Hypothesis{h("a", "resilient", true), h("b", "resilient", true), h("c", "resilient", true), h("r1", "resilient", true)}},
	}}
	if got, want := verdictLine(r), "all 9 checks held: 6 hypotheses × the variants they apply to"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	r.Variants[1].Hypotheses[3].Passed, r.Variants[1].Passed, r.Passed = false, false, false
	if got, want := verdictLine(r), "1 of 9 checks failed: 6 hypotheses × the variants they apply to"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	one := &Report{Passed: true, Variants: []Variant{{Name: "target", Passed: true, Hypotheses: []Hypothesis{h("a", "target", true), h("b", "target", true)}}}}
	if got, want := verdictLine(one), "all 2 hypotheses held"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
}
