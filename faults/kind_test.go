package faults

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestEveryKindIsComplete checks what the registry promises about each
// kind: a file of its own, a valid spec, and the capability its target's
// injector applies it by.
func TestEveryKindIsComplete(t *testing.T) {
	specs := Specs()
	if len(specs) < 17 {
		t.Fatalf("%d kinds registered, want at least the 17 built in", len(specs))
	}
	for _, s := range specs {
		if err := s.selfCheck(); err != nil {
			t.Errorf("%s: %v", s.Kind, err)
		}
		file := "kind_" + strings.NewReplacer("-", "_").Replace(string(s.Kind)) + ".go"
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s: no file %s of its own", s.Kind, file)
		}
		_, onProxy := As[ProxyKind](s.Kind)
		_, onProcess := As[ProcessKind](s.Kind)
		_, onContainer := As[ContainerKind](s.Kind)
		if !saysHowApplied(s.Kind) {
			t.Errorf("%s has no capability saying how it is applied (ProxyKind, ProcessKind, ContainerKind, or one of a layer of its own)", s.Kind)
		}
		switch s.Target {
		case TargetProcess:
			if !onProcess {
				t.Errorf("%s targets a process but is no ProcessKind", s.Kind)
			}
		case TargetContainer:
			if !onContainer {
				t.Errorf("%s targets a container but is no ContainerKind", s.Kind)
			}
		}
		if onProxy && onProxyAction(s).Toxic != "" && !s.Directional {
			t.Errorf("%s puts a toxic on a proxy but is not Directional (direction and toxicity choose its streams)", s.Kind)
		}
		got, ok := Lookup(s.Kind)
		if !ok || got.Kind != s.Kind || len(got.Attrs) != len(s.Attrs) {
			t.Errorf("Lookup(%s) = %+v, %v", s.Kind, got, ok)
		}
	}
	if _, ok := Lookup("melt"); ok {
		t.Error("Lookup found the unknown kind melt")
	}
	if !slices.IsSortedFunc(specs, func(a, b Spec) int {
		if c := targets[a.Target].rank - targets[b.Target].rank; c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	}) {
		t.Error("Specs is not in its documented order (proxy, process, container kinds, each by name)")
	}
}

// saysHowApplied reports whether a kind's definition has a capability
// beyond Spec and Validate: that is how its injector finds it.
func saysHowApplied(k Kind) bool {
	d := registered[k].def
	n := reflect.TypeOf(d).NumMethod() - 1 // Spec
	if _, ok := d.(Validator); ok {
		n--
	}
	return n > 0
}

func onProxyAction(s Spec) ProxyAction {
	p, _ := As[ProxyKind](s.Kind)
	return p.OnProxy(s.WithDefaults(nil))
}

// TestSpecsAreCopies checks that a caller cannot change the registry
// through what Specs and Lookup return.
func TestSpecsAreCopies(t *testing.T) {
	s, _ := Lookup(Latency)
	s.Attrs[0].Max = -1
	for _, s := range Specs() {
		if s.Kind == Latency && s.Attrs[0].Max == -1 {
			t.Fatal("Lookup handed out the registry's own attributes")
		}
		s.Attrs = nil
	}
	if again, _ := Lookup(Latency); again.Attrs[0].Max != MaxAttrMillis || len(again.Attrs) != 2 {
		t.Fatalf("the registry changed: %+v", again)
	}
}

// TestCheckAttrs checks bounds and a kind's rules between attributes
// (Validator), each naming the attribute at fault.
func TestCheckAttrs(t *testing.T) {
	slicerSpec, _ := Lookup(Slicer)
	for _, tc := range []struct {
		attrs map[string]int64
		attr  string
		msg   string
	}{
		{map[string]int64{"average_size": 64, "size_variation": 32, "delay": 0}, "", ""},
		{map[string]int64{"average_size": 0, "size_variation": 0, "delay": 0}, "average_size", "average_size 0 is out of range: 1 to 1048576 bytes"},
		{map[string]int64{"average_size": 16, "size_variation": 16, "delay": 0}, "size_variation", "size_variation 16 is not less than average_size 16"},
	} {
		attr, err := slicerSpec.CheckAttrs(tc.attrs)
		if attr != tc.attr || (err == nil) != (tc.msg == "") || (err != nil && err.Error() != tc.msg) {
			t.Errorf("CheckAttrs(%v) = %q, %v; want %q, %q", tc.attrs, attr, err, tc.attr, tc.msg)
		}
	}
}

// TestTargets checks the messages of a target a kind cannot have.
func TestTargets(t *testing.T) {
	if msg, _ := TargetProxy.CheckName(Latency, "user"); msg != "" {
		t.Errorf("user is a proxy, got %q", msg)
	}
	if msg, hint := TargetProcess.CheckName(Kill, "nats"); msg != `"nats" is not a service` || !strings.HasPrefix(hint, "a kill fault targets a service: order, ") {
		t.Errorf("nats as a service: %q (%s)", msg, hint)
	}
	if msg, _ := TargetContainer.CheckTopology(ContainerKill, "compose"); msg != "" {
		t.Errorf("compose has containers, got %q", msg)
	}
	if msg, hint := TargetContainer.CheckTopology(ContainerKill, "processes"); !strings.Contains(msg, "only the compose topology has") || hint != "add topology: compose" {
		t.Errorf("processes has no containers: %q (%s)", msg, hint)
	}
	if msg, _ := TargetProcess.CheckTopology(Kill, "embedded"); msg == "" {
		t.Error("the embedded topology has no process to kill")
	}
	// Links are on every topology, and so are the layers that packet,
	// call-level and message-level faults put on them (the layer host runs
	// beside the proxies, in compose's toxiproxy container too).
	linkKinds := 0
	for _, spec := range Specs() {
		if spec.Target != TargetProxy && spec.Target != TargetGRPC && spec.Target != TargetNATS {
			continue
		}
		for _, topo := range []string{"embedded", "processes", "compose"} {
			if msg, hint := spec.Target.CheckTopology(spec.Kind, topo); msg != "" {
				t.Errorf("%s on %s refused: %s (%s)", spec.Kind, topo, msg, hint)
			}
		}
		if spec.Target == TargetNATS {
			linkKinds++
		}
	}
	if linkKinds == 0 {
		t.Error("no kind targets a NATS link: the loop above checked none")
	}
}

// TestNoKindNamedOutsideItsFile fails when code of the module outside the
// kind files names a fault kind constant (faults.Latency, …): everything
// else reads the registry. Tests may name kinds, and so may the
// benchmarks (experiments/bench), which inject chosen faults as an
// experiment file does.
func TestNoKindNamedOutsideItsFile(t *testing.T) {
	kinds := kindConstants(t)
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || path == filepath.Join(root, "experiments", "bench")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir, base := filepath.Split(path)
		inFaults := filepath.Clean(dir) == filepath.Join(root, "faults")
		if inFaults && strings.HasPrefix(base, "kind_") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		report := func(n ast.Node, name string) {
			t.Errorf("%s names the fault kind %s: read the registry (faults.Lookup, faults.As) instead", fset.Position(n.Pos()), name)
		}
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if pkg, ok := n.X.(*ast.Ident); ok && pkg.Name == "faults" && kinds[n.Sel.Name] {
					report(n, "faults."+n.Sel.Name)
				}
				ast.Inspect(n.X, visit) // a field or method name is no kind
				return false
			case *ast.KeyValueExpr:
				if _, ok := n.Key.(*ast.Ident); ok {
					ast.Inspect(n.Value, visit) // a field name is no kind
					return false
				}
			case *ast.Ident:
				// Package faults names its kinds without the prefix.
				if inFaults && kinds[n.Name] {
					report(n, n.Name)
				}
			}
			return true
		}
		ast.Inspect(f, visit)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kindConstants returns the names of the Kind constants of the kind files.
func kindConstants(t *testing.T) map[string]bool {
	kinds := map[string]bool{}
	files, _ := filepath.Glob("kind_*.go")
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				if vs := spec.(*ast.ValueSpec); vs.Type != nil && fmt.Sprint(vs.Type) == "Kind" {
					for _, n := range vs.Names {
						kinds[n.Name] = true
					}
				}
			}
		}
	}
	if len(kinds) < len(Specs()) {
		t.Fatalf("found %d kind constants in the kind files, want one per kind (%d)", len(kinds), len(Specs()))
	}
	return kinds
}
