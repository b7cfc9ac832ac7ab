package explore

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/faults"
)

// Setup is what every scenario of a search shares: the load, the
// variant's knobs, the phases around the fault window and the hypotheses
// of --from that a fault-free baseline satisfied.
type Setup struct {
	Fallacy    string                  // of --from, else chosen by what failed
	Rate       float64                 // orders per second
	Variant    string                  // the variant's name (the one of --from, so its hypotheses bound to it apply)
	Knobs      []definition.Knob       // the variant's knobs, --set applied last
	Hypotheses []definition.Hypothesis // of --from, kept
	Before     time.Duration           // fault-free time before the window
	After      time.Duration           // and after it
	Drain      time.Duration           // the runner's wait for the consumers
	Recovery   time.Duration           // the bound on recovery after the window ends
	Seed       int64
}

// Scenario is one or more faults on at once, from the end of the
// before phase, each for its own window.
type Scenario struct {
	Faults []Candidate `json:"faults"`
}

// ID names the scenario: its faults' ids joined by " + ".
func (s Scenario) ID() string {
	var ids []string
	for _, f := range s.Faults {
		ids = append(ids, f.ID)
	}
	return strings.Join(ids, " + ")
}

// after is how long the run goes on after the window: the search's, or
// longer when a fault's edge has a deadline a redelivery waits for.
func (s Scenario) after(base time.Duration) time.Duration {
	for _, f := range s.Faults {
		base = max(base, f.Settle)
	}
	return base
}

// Control is the scenario's fault-free control: each fault replaced by an
// inert one (faults.Inert) on the same edge for the same window, so that
// the control runs the same phases on the same topology and is judged by
// the same hypotheses. A scenario whose control fails a hypothesis too
// failed it because of the machine or the system, not because of the fault.
func (s Scenario) Control() Scenario {
	kind, attr, value := faults.Inert()
	c := Scenario{}
	for _, f := range s.Faults {
		c.Faults = append(c.Faults, Candidate{ID: f.Edge + "/control", Edge: f.Edge, Kind: kind,
			Attrs: []Attr{{Name: attr, Value: value}}, Window: f.Window, Settle: f.Settle})
	}
	return c
}

// Window is the longest window of its faults.
func (s Scenario) Window() time.Duration {
	var w time.Duration
	for _, f := range s.Faults {
		w = max(w, f.Window)
	}
	return w
}

// Invariant is a hypothesis every scenario checks, with no file needed.
type Invariant struct {
	Name  string
	When  definition.Phase
	Check string
}

// SteadyState is the name of the invariant on the phase before the
// fault: when it fails the run is not judged (the machine, not the
// fault), and the scenario is run again.
const SteadyState = "steady state before the fault"

// Invariants returns the default invariants for a scenario whose
// longest window is window.
func (su Setup) Invariants(window time.Duration) []Invariant {
	if window == 0 { // a baseline: no fault, one phase
		return []Invariant{
			{SteadyState, definition.Before, "order.success_rate >= 99%"},
			{"no lost event", definition.Always, "events.lost == 0"},
			{"no duplicated event", definition.Always, "events.duplicated == 0"},
			{"no lost payment", definition.Always, "payments.lost == 0"},
			{"no duplicated payment", definition.Always, "payments.duplicated == 0"},
			{"no ghost payment", definition.Always, "payments.ghost == 0"},
			{"no unexpected record", definition.Always, "records.unexpected == 0"},
		}
	}
	return []Invariant{
		{SteadyState, definition.Before, "order.success_rate >= 99%"},
		{"success rate after the fault", definition.After, "order.success_rate >= 99%"},
		{"recovery within " + su.Recovery.String() + " of the fault's end", definition.Always,
			fmt.Sprintf("recovery.order.time < %s", (window + su.Recovery).String())},
		{"no lost event", definition.Always, "events.lost == 0"},
		{"no duplicated event", definition.Always, "events.duplicated == 0"},
		{"no lost payment", definition.Always, "payments.lost == 0"},
		{"no duplicated payment", definition.Always, "payments.duplicated == 0"},
		{"no ghost payment", definition.Always, "payments.ghost == 0"},
		{"no unexpected record", definition.Always, "records.unexpected == 0"},
	}
}

// Render writes a scenario as an experiment file: header comment lines
// first, each prefixed with "# ".
func (su Setup) Render(name, description string, sc Scenario, header []string) []byte {
	var b strings.Builder
	b.WriteString("# yaml-language-server: $schema=../../experiments/schema.json\n#\n")
	for _, h := range header {
		b.WriteString(strings.TrimRight("# "+h, " ") + "\n")
	}
	if len(header) > 0 {
		b.WriteString("\n")
	}
	w := sc.Window()
	fallacy := su.Fallacy
	if fallacy == "" {
		fallacy = "network-is-reliable"
	}
	fmt.Fprintf(&b, "name: %s\nfallacy: %s\ndescription: %s\nseed: %d\n", name, fallacy, quote(description), su.Seed)
	fmt.Fprintf(&b, "load: { rate: %s/s, duration: %s, drain: %s }\n", num(su.Rate), (su.Before + w + sc.after(su.After)).String(), su.Drain.String())
	b.WriteString("variants:\n")
	var knobs []string
	for _, k := range su.Knobs {
		knobs = append(knobs, k.Name+": "+yamlScalar(k.Value))
	}
	fmt.Fprintf(&b, "  %s: { %s }\n", su.Variant, strings.Join(knobs, ", "))
	if len(sc.Faults) > 0 {
		b.WriteString("faults:\n")
	}
	for i, f := range sc.Faults {
		fmt.Fprintf(&b, "  - { name: f%d, at: %s, for: %s, target: %s, kind: %s", i+1, su.Before.String(), f.Window.String(), f.Edge, f.Kind)
		for _, a := range f.Attrs {
			fmt.Fprintf(&b, ", %s: %s", a.Name, a.Value)
		}
		b.WriteString(" }\n")
	}
	b.WriteString("hypotheses:\n")
	for _, inv := range su.Invariants(w) {
		fmt.Fprintf(&b, "  - { when: %s, check: %s, name: %s }\n", inv.When, quote(inv.Check), quote(inv.Name))
	}
	for _, h := range su.Hypotheses {
		if len(sc.Faults) == 0 && h.When != definition.Always {
			h.When = definition.Before // a baseline has one phase
		}
		fmt.Fprintf(&b, "  - { when: %s, check: %s, name: %s", h.When, quote(h.Check), quote(h.Name))
		if h.Variant != "" {
			fmt.Fprintf(&b, ", variant: %s", h.Variant)
		}
		b.WriteString(" }\n")
	}
	return []byte(b.String())
}

// quote writes s as a YAML double-quoted scalar (JSON's escapes are
// YAML's).
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// yamlScalar writes a knob value plainly when YAML reads it back as the
// same text, else quoted.
func yamlScalar(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r))
	}) < 0 && !slices.Contains([]string{"true", "false", "yes", "no", "null", "on", "off"}, strings.ToLower(s)) {
		return s
	}
	if slices.Contains([]string{"on", "off"}, s) { // the knobs' own words
		return s
	}
	return quote(s)
}

// num writes a rate without needless decimals.
func num(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
}
