package definition

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
)

var update = flag.Bool("update", false, "rewrite experiments/schema.json")

var schemaPath = filepath.Join("..", "schema.json")

// TestSchemaUpToDate fails when experiments/schema.json differs from what
// the Go tables generate; go generate ./experiments/definition rewrites it.
func TestSchemaUpToDate(t *testing.T) {
	got, err := Schema()
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	if *update {
		if err := os.WriteFile(schemaPath, got, 0o644); err != nil {
			t.Fatalf("write schema: %v", err)
		}
	}
	want, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatalf("read committed schema: %v (run go generate ./experiments/definition)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("experiments/schema.json is out of date: run go generate ./experiments/definition")
	}
}

func TestSchemaContent(t *testing.T) {
	data, err := Schema()
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	s := string(data)
	var names []string
	for _, k := range config.Knobs() {
		names = append(names, k.Name)
	}
	for _, s := range faults.Specs() {
		names = append(names, `"`+string(s.Kind)+`"`)
	}
	names = append(names, faults.Proxies()...)
	names = append(names, fallacies...)
	for _, n := range names {
		if !strings.Contains(s, n) {
			t.Errorf("schema does not mention %s", n)
		}
	}
	if strings.Contains(s, `\u003c`) {
		t.Errorf("schema escapes < as \\u003c: editors show it raw")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := Schema()
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("unmarshal schema: %v", err)
	}
	var id struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(data, &id); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id.ID, doc); err != nil {
		t.Fatalf("add schema: %v", err)
	}
	sch, err := c.Compile(id.ID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

func yamlInstance(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return v
}

// TestSchemaValidates runs a real JSON Schema validator: every file the
// loader accepts is accepted by the schema, and mistakes a schema can see
// are rejected.
func TestSchemaValidates(t *testing.T) {
	sch := compileSchema(t)
	good := []string{head}
	files, err := LoadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, string(data))
	}
	good = append(good, head+`topology: processes
seed: 3
faults:
  - { at: 1s, for: 1s, target: payment, kind: kill }
  - { at: 5s, target: user, kind: latency, jitter: 1ms, steps: [ {for: 1s, latency: 100ms}, {latency: 2ms, toxicity: 0.5} ] }
  - { at: 5s, target: user, kind: bandwidth, rate: 100, direction: downstream }
  - { at: 5s, target: nats-order, kind: slicer, delay: 500us }
hypotheses:
  - { when: before, variant: naive, check: "order.errors == 0", abort: true, name: x }
`, strings.Replace(head, "naive: {}", "naive: { order.user.timeout: 0, order.user.retries: 3, order.user.breaker: on, order.publish_mode: core, notification.idempotent: false }, other:", 1))
	for i, src := range good {
		if _, err := Parse("g.yaml", []byte(src)); err != nil {
			t.Fatalf("good file %d does not load: %v", i, err)
		}
		if err := sch.Validate(yamlInstance(t, src)); err != nil {
			t.Errorf("schema rejects good file %d: %v\n%s", i, err, src)
		}
	}
	bad := map[string]string{
		"unknown key":           head + "extra: 1\n",
		"missing name":          strings.Replace(head, "name: x\n", "", 1),
		"bad fallacy":           strings.Replace(head, "latency-is-zero", "nope", 1),
		"unknown knob":          strings.Replace(head, "naive: {}", "naive: { order.user.timeot: 1s }", 1),
		"bad enum knob":         strings.Replace(head, "naive: {}", "naive: { order.publish_mode: fast }", 1),
		"bad duration":          strings.Replace(head, "duration: 30s", "duration: 30", 1),
		"unknown kind":          head + "faults:\n  - { at: 1s, target: user, kind: lag }\n",
		"attribute of another":  head + "faults:\n  - { at: 1s, target: user, kind: latency, latency: 1ms, rate: 5 }\n",
		"latency without value": head + "faults:\n  - { at: 1s, target: user, kind: latency }\n",
		"proxy for a process":   head + "faults:\n  - { at: 1s, target: nats-order, kind: kill }\n",
		"direction on kill":     head + "faults:\n  - { at: 1s, target: user, kind: kill, direction: upstream }\n",
		"toxicity above 1":      head + "faults:\n  - { at: 1s, target: user, kind: partition, toxicity: 2 }\n",
		"unknown step key":      head + "faults:\n  - { at: 1s, target: user, kind: latency, steps: [ {for: 1s, latncy: 1ms} ] }\n",
		"bad phase":             head + "hypotheses:\n  - { when: sometimes, check: x }\n",
	}
	for name, src := range bad {
		if _, err := Parse("b.yaml", []byte(src)); err == nil {
			t.Fatalf("bad file %q loads", name)
		}
		if err := sch.Validate(yamlInstance(t, src)); err == nil {
			t.Errorf("schema accepts bad file %q", name)
		}
	}
}

// TestDocsCoverFormat checks that the format reference names every
// fallacy, knob, fault kind, attribute, proxy and metric.
func TestDocsCoverFormat(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "experiments.md"))
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	doc := string(data)
	var want []string
	want = append(want, fallacies...)
	want = append(want, faults.Proxies()...)
	for _, k := range config.Knobs() {
		want = append(want, k.Name)
	}
	for _, s := range faults.Specs() {
		want = append(want, string(s.Kind))
		for _, a := range s.Attrs {
			want = append(want, a.Name)
		}
	}
	for _, m := range metrics.All() {
		want = append(want, m.Name)
	}
	for _, w := range want {
		if !strings.Contains(doc, "`"+w) {
			t.Errorf("docs/experiments.md does not mention `%s`", w)
		}
	}
}

// TestDocsKindTable checks that the kind table of docs/experiments.md has
// each registered kind's row as the registry describes it: target,
// direction and toxicity, attributes with units and defaults, doc.
func TestDocsKindTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "experiments.md"))
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	for _, s := range faults.Specs() {
		dir := "no"
		if s.Directional {
			dir = "yes"
		}
		var attrs []string
		for _, a := range s.Attrs {
			attr := fmt.Sprintf("`%s` (%s)", a.Name, a.Unit)
			switch {
			case a.Unit == faults.Fraction:
				attr += fmt.Sprintf(" (default %g)", float64(a.Default)/faults.FractionOne)
			case a.Default != 0:
				attr += fmt.Sprintf(" (default %d)", a.Default)
			}
			attrs = append(attrs, attr)
		}
		if len(attrs) == 0 {
			attrs = []string{"none"}
		}
		row := fmt.Sprintf("| `%s` | %s | %s | %s | %s |", s.Kind, s.Target, dir, strings.Join(attrs, ", "), s.Doc)
		if !bytes.Contains(data, []byte("\n"+row+"\n")) {
			t.Errorf("docs/experiments.md has no row for kind %s as the registry describes it; want\n%s", s.Kind, row)
		}
	}
}
