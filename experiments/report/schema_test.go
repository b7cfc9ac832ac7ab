package report

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/experiments/report/schematest"
)

// schemaDoc is the part of docs/report.schema.json the tests compare.
type schemaDoc struct {
	Defs map[string]struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	} `json:"$defs"`
}

func readSchema(t *testing.T) schemaDoc {
	t.Helper()
	path, err := schematest.Path()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s schemaDoc
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", schematest.SchemaFile, err)
	}
	return s
}

// objectDefs returns the schema's object definitions (those with
// properties): definition name → property → required.
func objectDefs(s schemaDoc) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, d := range s.Defs {
		if len(d.Properties) == 0 {
			continue
		}
		props := map[string]bool{}
		for p := range d.Properties {
			props[p] = slices.Contains(d.Required, p)
		}
		for _, r := range d.Required {
			if _, ok := d.Properties[r]; !ok {
				props[r] = true // required but not defined: reported as a difference
			}
		}
		out[name] = props
	}
	return out
}

// modelDefs walks the JSON shape of Report by reflection: struct type name
// → JSON key → always written (no omitempty).
func modelDefs() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Report]().PkgPath() {
			return // time.Time and scalars are leaves
		}
		if _, seen := out[t.Name()]; seen {
			return
		}
		keys := map[string]bool{}
		out[t.Name()] = keys
		for f := range t.Fields() {
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			keys[name] = !slices.Contains(strings.Split(opts, ","), "omitempty")
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Report]())
	return out
}

// compareDefs reports every difference between two descriptions of the
// shape, each as one line naming the definition and the key.
func compareDefs(t *testing.T, aName string, a map[string]map[string]bool, bName string, b map[string]map[string]bool, fix string) {
	t.Helper()
	for def, akeys := range a {
		bkeys, ok := b[def]
		if !ok {
			t.Errorf("%s has %s, %s does not: %s", aName, def, bName, fix)
			continue
		}
		for k, areq := range akeys {
			breq, ok := bkeys[k]
			switch {
			case !ok:
				t.Errorf("%s.%s is in %s but not in %s: %s", def, k, aName, bName, fix)
			case areq != breq:
				t.Errorf("%s.%s: always present in %s = %v, in %s = %v: %s", def, k, aName, areq, bName, breq, fix)
			}
		}
	}
	for def, bkeys := range b {
		akeys, ok := a[def]
		if !ok {
			t.Errorf("%s has %s, %s does not: %s", bName, def, aName, fix)
			continue
		}
		for k := range bkeys {
			if _, ok := akeys[k]; !ok {
				t.Errorf("%s.%s is in %s but not in %s: %s", def, k, bName, aName, fix)
			}
		}
	}
}

// TestSchemaMatchesModel: every key the Go model writes is in the schema,
// required exactly when it is always written, and the schema defines no
// key the model does not write.
func TestSchemaMatchesModel(t *testing.T) {
	compareDefs(t, "the Go model (experiments/report)", modelDefs(), schematest.SchemaFile, objectDefs(readSchema(t)),
		"add it to docs/report.schema.json and docs/report.md (or remove it)")
}

// docDefs reads the key tables of the report.json section of
// docs/report.md: "### Name" heading → key → always present (the type
// column does not say "optional").
func docDefs(t *testing.T) map[string]map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/report.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## report.json")
	if start < 0 {
		t.Fatal("docs/report.md has no ## report.json section")
	}
	doc = doc[start+1:]
	if end := strings.Index(doc[3:], "\n## "); end >= 0 {
		doc = doc[:end+3]
	}
	heading := regexp.MustCompile(`^### (\w+)`)
	key := regexp.MustCompile("`([a-z0-9_]+)`")
	out := map[string]map[string]bool{}
	var cur string
	for _, line := range strings.Split(doc, "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if cur == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Errorf("docs/report.md: table row of %s has no type column: %q", cur, line)
			continue
		}
		if out[cur] == nil {
			out[cur] = map[string]bool{}
		}
		for _, m := range key.FindAllStringSubmatch(cells[1], -1) {
			out[cur][m[1]] = !strings.Contains(cells[2], "optional")
		}
	}
	return out
}

// TestDocsMatchSchema: docs/report.md documents, in a table under a
// "### <Definition>" heading, every key of every object the schema
// defines, marks optional exactly the keys the schema does not require,
// and documents nothing the schema does not define.
func TestDocsMatchSchema(t *testing.T) {
	compareDefs(t, "docs/report.md", docDefs(t), schematest.SchemaFile, objectDefs(readSchema(t)),
		"keep docs/report.md and docs/report.schema.json in step")
}

// TestSampleMatchesSchema validates the sample report and a minimal one
// against the schema, and wants the schema to reject what breaks the
// contract: a missing key, a wrong type, a null list, a rate above 1, a
// metric key without its phase, a malformed timestamp.
func TestSampleMatchesSchema(t *testing.T) {
	for name, r := range map[string]*Report{
		"sample":  sampleReport(),
		"minimal": {Experiment: "empty", Topology: "target", StartedAt: sampleStart, Variants: []Variant{{Name: "target"}}},
	} {
		if err := schematest.Check(renderJSON(t, r)); err != nil {
			t.Errorf("%s report: %v", name, err)
		}
	}
	broken := []struct {
		name string
		edit func(r map[string]any, v map[string]any)
	}{
		{"no seed", func(r, _ map[string]any) { delete(r, "seed") }},
		{"passed a string", func(r, _ map[string]any) { r["passed"] = "yes" }},
		{"variants null", func(r, _ map[string]any) { r["variants"] = nil }},
		{"no during phase", func(_, v map[string]any) { delete(v["phases"].(map[string]any), "during") }},
		{"no p99", func(_, v map[string]any) {
			delete(v["phases"].(map[string]any)["before"].(map[string]any)["latency_ms"].(map[string]any), "p99")
		}},
		{"success rate a percentage", func(_, v map[string]any) {
			v["phases"].(map[string]any)["before"].(map[string]any)["success_rate"] = 99.5
		}},
		{"metric without its phase", func(_, v map[string]any) { v["metrics"].(map[string]any)["order.latency.p99"] = 1 }},
		{"metric not a number", func(_, v map[string]any) { v["metrics"].(map[string]any)["during.order.latency.p99"] = "1ms" }},
		{"timestamp without a zone", func(r, _ map[string]any) { r["started_at"] = "2026-03-14 09:26:53" }},
		{"skipped without a reason", func(_, v map[string]any) {
			h := v["hypotheses"].([]any)[0].(map[string]any)
			h["skipped"], h["passed"] = true, false
		}},
		{"trace id not hex", func(_, v map[string]any) { v["exemplars"].([]any)[0].(map[string]any)["trace_id"] = "xyz" }},
		{"no consistency", func(_, v map[string]any) { delete(v, "consistency") }},
	}
	for _, b := range broken {
		var doc map[string]any
		if err := json.Unmarshal(renderJSON(t, sampleReport()), &doc); err != nil {
			t.Fatal(err)
		}
		b.edit(doc, doc["variants"].([]any)[0].(map[string]any))
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := schematest.Check(data); err == nil {
			t.Errorf("%s: the schema accepts it", b.name)
		}
	}
	// A key the schema does not know is allowed: later versions add keys.
	data := bytes.Replace(renderJSON(t, sampleReport()), []byte(`"experiment":`), []byte(`"added_later": {"x": 1}, "experiment":`), 1)
	if err := schematest.Check(data); err != nil {
		t.Errorf("a report with a key added by a later version: %v", err)
	}
}
