package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type is the kind of value a knob takes.
type Type string

// Knob types.
const (
	Duration Type = "duration" // Go duration: 100ms, 2s; 0 or off switches off
	Int      Type = "int"      // whole number; off means 0
	Bool     Type = "bool"     // on/off, true/false
	Enum     Type = "enum"     // one of Values
)

// Knob is one named setting an experiment variant can change.
type Knob struct {
	Name   string
	Type   Type
	Values []string // for Enum
	// Range bounds an Int or Duration knob: values outside it are refused
	// by Parse. It is the range the implementation survives, driven end to
	// end against a running topology by topology/knobs_test.go.
	Range
	// Unit says what an Int counts (bytes, % of calls, …); "" otherwise.
	Unit string
	Doc  string
	set  func(s *System, v value)
	get  func(s *System) string // the value as the knob takes it: 100ms, off, 3, on, jetstream
}

// Value returns the knob's value in s, written as the knob takes it.
func (k Knob) Value(s System) string { return k.get(&s) }

// Default returns the knob's value in Default(): what a variant that does
// not set it gets.
func (k Knob) Default() string { return k.Value(Default()) }

// durText writes a duration as a Duration knob takes it; 0 is off.
func durText(d time.Duration) string {
	if d == 0 {
		return "off"
	}
	return FormatDuration(d)
}

// boolText writes a bool as a Bool knob takes it.
func boolText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// enumText writes an enum field whose zero value means zero.
func enumText[T ~string](v T, zero string) string {
	if v == "" {
		return zero
	}
	return string(v)
}

// Range is the inclusive range of an Int knob's number or of a Duration
// knob's length in nanoseconds.
type Range struct{ Min, Max int64 }

// ints is the range [lo, hi] of an Int knob.
func ints(lo, hi int) Range { return Range{int64(lo), int64(hi)} }

// durations is the range [lo, hi] of a Duration knob.
func durations(lo, hi time.Duration) Range { return Range{int64(lo), int64(hi)} }

// Bounds shared by several knobs.
const (
	// MaxDelay bounds artificial delays, backoffs and waits.
	MaxDelay = time.Minute
	// MaxDeadline bounds deadlines, ack waits and how long a breaker stays open.
	MaxDeadline = 10 * time.Minute
	// MaxRetries bounds the retries of a link and of the load client.
	MaxRetries = 10
	// MaxUsers bounds user.users (profiles are generated on first use).
	MaxUsers = 1_000_000
	// MaxHistoryBytes bounds user.history_bytes.
	MaxHistoryBytes = 4 << 20
	// MinAckWait is the shortest JetStream ack wait of a consumer.
	MinAckWait = 100 * time.Millisecond
	// MaxOrderConcurrency is the largest order.max_concurrent accepted.
	MaxOrderConcurrency = 100_000
)

// Bounds is the knob's accepted range as text ("0 to 10", "0s to 1m"), or
// "" for a Bool or Enum knob.
func (k Knob) Bounds() string {
	switch k.Type {
	case Int:
		return fmt.Sprintf("%d to %d", k.Min, k.Max)
	case Duration:
		return FormatDuration(time.Duration(k.Min)) + " to " + FormatDuration(time.Duration(k.Max))
	}
	return ""
}

// FormatDuration writes d without the zero units time.Duration.String
// keeps: 1m, not 1m0s; 1h30m, not 1h30m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

type value struct {
	d time.Duration
	i int
	b bool
	s string
}

// Knobs returns every knob, sorted by name.
func Knobs() []Knob {
	ks := slices.Clone(knobs)
	slices.SortFunc(ks, func(a, b Knob) int { return strings.Compare(a.Name, b.Name) })
	return ks
}

// Lookup finds a knob by name.
func Lookup(name string) (Knob, bool) {
	for _, k := range knobs {
		if k.Name == name {
			return k, true
		}
	}
	return Knob{}, false
}

// Set parses raw as the knob's type and applies it to s. The error names
// the knob, the value and what would be accepted.
func Set(s *System, name, raw string) error {
	k, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown knob %q", name)
	}
	v, err := k.Parse(raw)
	if err != nil {
		return err
	}
	k.set(s, v)
	return nil
}

// Parse checks that raw is a valid value for the knob, within its Range.
func (k Knob) Parse(raw string) (value, error) {
	raw = strings.TrimSpace(raw)
	switch k.Type {
	case Duration:
		d := time.Duration(0)
		if raw != "off" && raw != "0" {
			var err error
			if d, err = time.ParseDuration(raw); err != nil {
				if durationSyntax.MatchString(raw) { // well formed: too long for an int64
					return value{}, fmt.Errorf("%s: %s is out of range, %s", k.Name, raw, k.want())
				}
				return value{}, fmt.Errorf("%s: %q is not a duration (want e.g. 100ms, 2s, or off)", k.Name, raw)
			}
		}
		if int64(d) < k.Min || int64(d) > k.Max {
			return value{}, fmt.Errorf("%s: %s is out of range, %s", k.Name, raw, k.want())
		}
		return value{d: d}, nil
	case Int:
		i := int64(0)
		if raw != "off" {
			var err error
			if i, err = strconv.ParseInt(raw, 10, 64); err != nil {
				if errors.Is(err, strconv.ErrRange) {
					return value{}, fmt.Errorf("%s: %s is out of range, %s", k.Name, raw, k.want())
				}
				return value{}, fmt.Errorf("%s: %q is not a whole number, %s", k.Name, raw, k.want())
			}
		}
		if i < k.Min || i > k.Max {
			return value{}, fmt.Errorf("%s: %s is out of range, %s", k.Name, raw, k.want())
		}
		return value{i: int(i)}, nil
	case Bool:
		switch raw {
		case "on", "true", "yes":
			return value{b: true}, nil
		case "off", "false", "no":
			return value{b: false}, nil
		}
		return value{}, fmt.Errorf("%s: %q is not on or off", k.Name, raw)
	case Enum:
		if slices.Contains(k.Values, raw) {
			return value{s: raw}, nil
		}
		return value{}, fmt.Errorf("%s: %q is not one of %s", k.Name, raw, strings.Join(k.Values, ", "))
	}
	return value{}, fmt.Errorf("%s: knob has unknown type %q", k.Name, k.Type)
}

// durationSyntax is the syntax of a Go duration with a unit.
var durationSyntax = regexp.MustCompile(`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// want says what Parse accepts, for its errors.
func (k Knob) want() string {
	return "need " + k.Bounds()
}

// knobs is every knob: those of the links' policies, of the services and
// of the testbed around them.
var knobs = slices.Concat(linkKnobs(), serviceKnobs(), testbedKnobs())
