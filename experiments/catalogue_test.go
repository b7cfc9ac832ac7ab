// Package experiments_test checks the integrity of the catalogue: the
// experiment files in this folder and their pages in docs/experiments.
// The folder holds data, not code; this test-only package is its guard.
package experiments_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
)

// testbedFallacies are the fallacies the testbed adds to the eight; they
// need no experiment of their own to complete the catalogue.
var testbedFallacies = []string{"messaging", "failure-propagation"}

// loadCatalogue loads every experiment of the folder; a file that does not
// load fails the test with the loader's file:line:col errors.
func loadCatalogue(t *testing.T) []*definition.Experiment {
	t.Helper()
	files, err := definition.LoadDir(".")
	if err != nil {
		t.Fatalf("list the catalogue: %v", err)
	}
	var exps []*definition.Experiment
	for _, f := range files {
		exp, err := definition.Load(f)
		if err != nil {
			t.Errorf("%s does not load:\n%v", f, err)
			continue
		}
		exps = append(exps, exp)
	}
	return exps
}

func TestCatalogueLoads(t *testing.T) {
	exps := loadCatalogue(t)
	if len(exps) == 0 {
		t.Fatal("no experiment in the catalogue")
	}
	names := map[string]string{}
	for _, exp := range exps {
		if want := strings.TrimSuffix(filepath.Base(exp.Path), ".yaml"); exp.Name != want {
			t.Errorf("%s: name %q, want the file's name %q", exp.Path, exp.Name, want)
		}
		if other, ok := names[exp.Name]; ok {
			t.Errorf("%s and %s share the name %q", other, exp.Path, exp.Name)
		}
		names[exp.Name] = exp.Path
	}
}

func TestEveryFallacyHasAnExperiment(t *testing.T) {
	covered := map[string][]string{}
	for _, exp := range loadCatalogue(t) {
		covered[exp.Fallacy] = append(covered[exp.Fallacy], exp.Name)
	}
	var missing []string
	for _, f := range definition.Fallacies() {
		if slices.Contains(testbedFallacies, f) {
			continue
		}
		if len(covered[f]) == 0 {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of the eight fallacies have no experiment in experiments/: %s", len(missing), strings.Join(missing, ", "))
	}
}

func TestEveryExperimentHasADocsPage(t *testing.T) {
	for _, exp := range loadCatalogue(t) {
		page := filepath.Join("..", "docs", "experiments", exp.Name+".md")
		b, err := os.ReadFile(page)
		if err != nil {
			t.Errorf("%s: no docs page %s", exp.Path, page)
			continue
		}
		if !strings.Contains(string(b), exp.Name) {
			t.Errorf("%s does not name its experiment %q", page, exp.Name)
		}
	}
}

// TestEveryExperimentProvesBothSides checks the shape every experiment of
// the catalogue shares: a naive and a resilient variant, at least one
// hypothesis bound to each (the fault bit, the fix held), and at least one
// about traces.
func TestEveryExperimentProvesBothSides(t *testing.T) {
	for _, exp := range loadCatalogue(t) {
		bound := map[string]int{}
		traces := 0
		for _, h := range exp.Hypotheses {
			bound[h.Variant]++
			if readsTraces(h.Expr) {
				traces++
			}
		}
		for _, v := range []string{"naive", "resilient"} {
			if _, ok := exp.Variant(v); !ok {
				t.Errorf("%s: no variant %s", exp.Path, v)
			}
			if bound[v] == 0 {
				t.Errorf("%s: no hypothesis bound to variant %s", exp.Path, v)
			}
		}
		if traces == 0 {
			t.Errorf("%s: no hypothesis about traces (trace.*)", exp.Path)
		}
	}
}

func readsTraces(e check.Expr) bool {
	for _, m := range e.Metrics() {
		if _, name := check.SplitPhase(m); strings.HasPrefix(name, "trace.") {
			return true
		}
	}
	return false
}
