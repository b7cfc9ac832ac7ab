package report

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func renderJSON(t *testing.T, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := JSON(&buf, r); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	return buf.Bytes()
}

func keysOf(t *testing.T, v any, where string) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: got %T, want a JSON object", where, v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func requireKeys(t *testing.T, v any, where string, want ...string) map[string]any {
	t.Helper()
	got := keysOf(t, v, where)
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("%s: key %q missing; have %v", where, k, got)
		}
	}
	return v.(map[string]any)
}

// TestJSONShape pins the contract documented in docs/report.md: the exact
// top-level keys and the keys of variants, phases and latencies.
func TestJSONShape(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(renderJSON(t, sampleReport()), &doc); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	wantTop := []string{"description", "duration_seconds", "experiment", "fallacy", "file", "jaeger_ui", "passed", "seed", "started_at", "topology", "trials", "variants"}
	if got := keysOf(t, doc, "report"); !slices.Equal(got, wantTop) {
		t.Errorf("top-level keys = %v, want %v", got, wantTop)
	}
	if doc["experiment"] != "latency" || doc["passed"] != false || doc["seed"] != float64(42) {
		t.Errorf("experiment, passed, seed = %v, %v, %v", doc["experiment"], doc["passed"], doc["seed"])
	}
	started, ok := doc["started_at"].(string)
	if !ok {
		t.Fatalf("started_at = %T, want a string", doc["started_at"])
	}
	ts, err := time.Parse(time.RFC3339Nano, started)
	if err != nil || !ts.Equal(sampleStart) {
		t.Errorf("started_at = %q (%v), want RFC 3339 with nanoseconds of %v", started, err, sampleStart)
	}
	if !strings.Contains(started, ".589793238") {
		t.Errorf("started_at = %q lost its nanoseconds", started)
	}

	variants, ok := doc["variants"].([]any)
	if !ok || len(variants) != 2 {
		t.Fatalf("variants = %v, want two", doc["variants"])
	}
	for _, vr := range variants {
		v := requireKeys(t, vr, "variant", "name", "passed", "knobs", "phases", "ops", "hypotheses", "faults", "timeseries", "consistency", "breakers", "metrics", "exemplars")
		where := "variant " + v["name"].(string)
		phases := v["phases"].(map[string]any)
		if got := keysOf(t, phases, where+" phases"); !slices.Equal(got, []string{"after", "before", "during"}) {
			t.Errorf("%s: phase keys = %v, want after, before, during", where, got)
		}
		for name, p := range phases {
			pm := requireKeys(t, p, where+" phase "+name, "requests", "successes", "success_rate", "errors", "dropped", "throughput", "latency_ms")
			requireKeys(t, pm["latency_ms"], where+" latency_ms", "p50", "p90", "p99", "p999", "max", "mean")
			if _, ok := pm["errors"].(map[string]any); !ok {
				t.Errorf("%s phase %s: errors = %v, want an object", where, name, pm["errors"])
			}
		}
		h := v["hypotheses"].([]any)
		requireKeys(t, h[0], where+" hypothesis", "name", "expr", "phase", "variant", "passed", "skipped", "observed", "abort")
		f := v["faults"].([]any)
		requireKeys(t, f[0], where+" fault", "name", "kind", "target", "direction", "attrs", "start", "end", "start_offset", "end_offset")
		s := v["timeseries"].([]any)
		if len(s) != 30 {
			t.Errorf("%s: %d seconds, want 30", where, len(s))
		}
		requireKeys(t, s[0], where+" second", "t", "requests", "successes", "errors", "dropped", "success_rate", "p50_ms", "p99_ms", "in_flight", "active_faults")
		c := requireKeys(t, v["consistency"], where+" consistency", "acknowledged", "lost", "duplicated", "ghost", "recovered", "unexpected", "consumers", "payments")
		requireKeys(t, c["payments"], where+" payments", "lost", "duplicated", "ghost")
		requireKeys(t, c["consumers"].(map[string]any)["ledger"], where+" ledger", "applied", "lost", "duplicated", "unexpected")
		e := v["exemplars"].([]any)
		ex := requireKeys(t, e[0], where+" exemplar", "phase", "kind", "trace_id", "root", "duration_ms", "error", "jaeger_url", "spans")
		requireKeys(t, ex["spans"].([]any)[0], where+" span", "service", "name", "start_ms", "duration_ms", "depth", "error")
	}
	resilient := variants[1].(map[string]any)
	b := requireKeys(t, resilient["breakers"].([]any)[0], "breaker", "link", "from", "to", "at", "offset")
	if b["from"] != "closed" || b["to"] != "open" || b["offset"] != 11.2 {
		t.Errorf("first breaker transition = %v", b)
	}
	rate := resilient["phases"].(map[string]any)["during"].(map[string]any)["success_rate"].(float64)
	if rate <= 0 || rate >= 1 {
		t.Errorf("success_rate = %v, want a fraction between 0 and 1", rate)
	}
}

// TestJSONRoundTrip checks that Decode reads back exactly what JSON wrote.
func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	got, err := Decode(bytes.NewReader(renderJSON(t, r)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Normalize(r)
	if !reflect.DeepEqual(got, want) {
		for i := range want.Variants {
			if !reflect.DeepEqual(got.Variants[i], want.Variants[i]) {
				t.Errorf("variant %d differs after a round trip:\n got %+v\nwant %+v", i, got.Variants[i], want.Variants[i])
			}
		}
		t.Fatalf("report differs after a round trip")
	}
	if !got.StartedAt.Equal(sampleStart) || got.StartedAt.Nanosecond() != sampleStart.Nanosecond() {
		t.Errorf("started_at = %v, want %v", got.StartedAt, sampleStart)
	}
}

// TestJSONEmptyAndNonFinite checks the canonical shape of a sparse report:
// no null arrays or maps, all three phases, and NaN/Inf written as 0.
func TestJSONEmptyAndNonFinite(t *testing.T) {
	r := &Report{
		Experiment: "sparse",
		Error:      "start topology embedded: listen: address in use",
		Variants: []Variant{{
			Name:       "only",
			Phases:     map[string]Phase{PhaseDuring: {Requests: 0, SuccessRate: math.NaN(), LatencyMs: Latency{Mean: math.Inf(1)}}},
			Metrics:    map[string]float64{"order.success_rate": math.NaN()},
			Timeseries: []Second{{T: 0, SuccessRate: math.NaN()}},
		}},
	}
	out := renderJSON(t, r)
	if bytes.Contains(out, []byte("null")) {
		t.Errorf("report.json contains null:\n%s", out)
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if doc["error"] != r.Error {
		t.Errorf("error = %v, want %q", doc["error"], r.Error)
	}
	v := doc["variants"].([]any)[0].(map[string]any)
	if got := keysOf(t, v["phases"], "phases"); !slices.Equal(got, []string{"after", "before", "during"}) {
		t.Errorf("phases = %v, want all three", got)
	}
	if m := v["metrics"].(map[string]any); m["order.success_rate"] != float64(0) {
		t.Errorf("NaN metric written as %v, want 0", m["order.success_rate"])
	}
	if _, ok := v["hypotheses"].([]any); !ok {
		t.Errorf("hypotheses = %v, want []", v["hypotheses"])
	}
	// Normalize must not touch its input.
	if r.Variants[0].Hypotheses != nil || !math.IsNaN(r.Variants[0].Metrics["order.success_rate"]) || len(r.Variants[0].Phases) != 1 {
		t.Errorf("Normalize modified the report it was given")
	}
}

func TestSuiteJSON(t *testing.T) {
	s := &Suite{Name: "ci", Reports: []*Report{sampleReport(), {Experiment: "empty", Passed: true}}, DurationSeconds: 61.5}
	var buf bytes.Buffer
	if err := SuiteJSON(&buf, s); err != nil {
		t.Fatalf("SuiteJSON: %v", err)
	}
	var doc struct {
		Name    string            `json:"name"`
		Reports []json.RawMessage `json:"reports"`
		Passed  *bool             `json:"passed"`
		Dur     float64           `json:"duration_seconds"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if doc.Name != "ci" || len(doc.Reports) != 2 || doc.Passed == nil || doc.Dur != 61.5 {
		t.Errorf("suite = %+v", doc)
	}
	if bytes.Contains(doc.Reports[1], []byte(`"variants": null`)) {
		t.Errorf("empty report has null variants: %s", doc.Reports[1])
	}
}
