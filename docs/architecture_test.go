package docs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/fallacies/fallacies"

// packages returns every package of the module (test-only ones included)
// with the imports of its non-test files, as paths relative to the module.
// Imports from outside the module keep their full path.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		var imps []string
		for _, imp := range f[1:] {
			imps = append(imps, rel(imp))
		}
		pkgs[rel(f[0])] = imps
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: %s", len(pkgs), out)
	}
	return pkgs
}

func rel(imp string) string {
	if imp == module {
		return "."
	}
	return strings.TrimPrefix(imp, module+"/")
}

// internal reports whether a relative import path is a package of the module.
func internal(pkgs map[string][]string, imp string) bool {
	_, ok := pkgs[imp]
	return ok
}

// TestArchitectureMapsEveryPackage fails when a package of the module is
// not named in docs/architecture.md, or the document names one that no
// longer exists.
func TestArchitectureMapsEveryPackage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	pkgs := packages(t)
	for p := range pkgs {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/architecture.md does not map package %s (name it as `%s`: what it owns, what it imports)", p, p)
		}
	}
	// Every `dir/...` path in a table's first column must exist.
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, span := range strings.Split(first, "`") {
			span = strings.TrimSpace(span)
			if span == "" || strings.ContainsAny(span, " ,(") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, span)); err != nil {
				t.Errorf("docs/architecture.md maps %s, which does not exist", span)
			}
		}
	}
}

// TestArchitectureRules checks the import rules docs/architecture.md states.
func TestArchitectureRules(t *testing.T) {
	pkgs := packages(t)
	has := func(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	for p, imps := range pkgs {
		for _, imp := range imps {
			in := internal(pkgs, imp)
			switch {
			case has(p, "services") && in && !has(imp, "services") && !has(imp, "internal"):
				t.Errorf("%s imports %s: a service imports only services/... and internal/...", p, imp)
			case has(p, "internal") && in:
				t.Errorf("%s imports %s: internal/... imports nothing of the module", p, imp)
			case p == "faults" && in:
				t.Errorf("faults imports %s: the vocabulary imports nothing of the module", imp)
			case has(p, "faults") && p != "faults" && in && imp != "faults" && !has(imp, "internal") && !isLinkLayer(imp):
				t.Errorf("%s imports %s: an injector imports only faults, internal/... and the link layers under faults/", p, imp)
			case isLinkLayer(p) && in && !has(imp, "internal"):
				t.Errorf("%s imports %s: a link layer imports nothing of the module but internal/...", p, imp)
			case p == "tracing" && in && !has(imp, "internal"):
				t.Errorf("tracing imports %s: it imports nothing of the module but internal/...", imp)
			case (p == "experiments/report" || p == "experiments/stats") && in:
				t.Errorf("%s imports %s: it imports nothing of the module", p, imp)
			case p == "experiments/stats" && slices.Contains([]string{"os", "io", "io/fs", "net", "net/http"}, imp):
				t.Errorf("%s imports %s: it does no I/O", p, imp)
			case p == "experiments/compare" && in && imp != "experiments/report" && imp != "experiments/stats":
				t.Errorf("experiments/compare imports %s: it imports only experiments/report and experiments/stats", imp)
			case (p == "experiments/check" || p == "experiments/metrics") && slices.Contains([]string{"os", "io", "io/fs", "net", "net/http"}, imp):
				t.Errorf("%s imports %s: it does no I/O", p, imp)
			case p == "experiments/check" && in:
				t.Errorf("experiments/check imports %s: the expression language imports nothing of the module", imp)
			case p == "experiments/metrics" && in && !slices.Contains([]string{"experiments/check", "faults", "tracing"}, imp) && !has(imp, "internal"):
				t.Errorf("experiments/metrics imports %s: the metric families import only experiments/check, faults, tracing and internal/... (the loader imports them)", imp)
			case has(p, "topology") && has(imp, "experiments"):
				t.Errorf("topology imports %s: it never imports experiments/...", imp)
			case (imp == "experiments/runner" || imp == "experiments/bench") && p != "cmd/fallacies":
				t.Errorf("%s imports %s: only cmd/fallacies does", p, imp)
			case p == "console" && has(imp, "topology"):
				t.Errorf("console imports %s: it starts nothing; cmd/fallacies hands it what it drives", imp)
			case has(imp, "go.opentelemetry.io/otel/sdk") && p != "tracing":
				t.Errorf("%s imports %s: only tracing imports the OpenTelemetry SDK", p, imp)
			}
		}
	}
	if !slices.ContainsFunc(pkgs["tracing"], func(s string) bool { return has(s, "go.opentelemetry.io/otel/sdk") }) {
		t.Error("tracing no longer imports the OpenTelemetry SDK: the rule in docs/architecture.md is stale")
	}
}

// dependencies returns every package of the module with all it depends on
// when built, directly or not (go list's Deps: test files left out), as
// paths relative to the module; outside packages keep their full path.
func dependencies(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		var ds []string
		for _, d := range f[1:] {
			ds = append(ds, rel(d))
		}
		deps[rel(f[0])] = ds
	}
	return deps
}

// TestArchitectureDependencies checks the rules of docs/architecture.md on
// what each package depends on at all, through any chain of imports: a
// rule kept only on direct imports is broken by one package in between.
func TestArchitectureDependencies(t *testing.T) {
	deps := dependencies(t)
	has := func(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
	const sdk = "go.opentelemetry.io/otel/sdk"
	for p, ds := range deps {
		for _, d := range ds {
			in := internal(deps, d)
			var why string
			switch {
			case d == "internal/testenv":
				why = "internal/testenv is for tests only"
			case has(p, "services") && in && !has(d, "services") && !has(d, "internal"):
				why = "a service depends only on services/... and internal/...: it does not know it is under test"
			case has(p, "services") && has(d, sdk):
				why = "a service gets tracing as serve.Options, never the OpenTelemetry SDK"
			case p == "tracing" && in && !has(d, "internal"):
				why = "tracing depends on nothing of the module but internal/..."
			case (has(p, "internal") || p == "faults" || p == "experiments/report" || p == "experiments/check" || p == "experiments/stats") && in:
				why = "it depends on nothing of the module"
			case p == "experiments/compare" && in && d != "experiments/report" && d != "experiments/stats":
				why = "it depends only on experiments/report and experiments/stats"
			case isLinkLayer(p) && in && !has(d, "internal"):
				why = "a link layer depends on nothing of the module but internal/..."
			case has(p, "faults") && in && d != "faults" && !has(d, "internal") && !isLinkLayer(d):
				why = "an injector depends only on faults, internal/... and the link layers"
			case has(p, "topology") && (has(d, "experiments") || d == "console"):
				why = "topology never depends on experiments/... or the console"
			case (d == "experiments/runner" || d == "experiments/bench") && p != "cmd/fallacies":
				why = "only cmd/fallacies depends on the runner and the bench"
			case has(d, sdk) && p != "tracing" && !slices.Contains(ds, "tracing"):
				why = "the OpenTelemetry SDK is reached only through tracing"
			}
			if why != "" {
				t.Errorf("%s depends on %s: %s", p, d, why)
			}
		}
	}
	// The rules are about something: each names packages that exist.
	for _, p := range []string{"services/order", "faults", "faults/toxiproxy", "tracing", "topology", "internal/testenv"} {
		if _, ok := deps[p]; !ok {
			t.Errorf("go list does not list %s: the rules of this test are stale", p)
		}
	}
}

// isLinkLayer reports whether package p is a link layer: a relay an
// injector interposes on a link, which imports nothing of the module.
func isLinkLayer(p string) bool {
	return p == "faults/grpclayer" || p == "faults/natslayer" || p == "faults/segment"
}
