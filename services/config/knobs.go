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

var knobs = linkKnobs("user", func(s *System) *Link { return &s.Order.User }, true)

func init() {
	knobs = append(knobs, linkKnobs("payment", func(s *System) *Link { return &s.Order.Payment }, false)...)
	knobs = append(knobs,
		Knob{Name: "order.publish_mode", Type: Enum, Values: []string{"jetstream", "core"},
			Doc: "jetstream: durable, acked, deduplicated by Nats-Msg-Id; core: fire-and-forget",
			set: func(s *System, v value) { s.Order.PublishMode = PublishMode(v.s) },
			get: func(s *System) string { return enumText(s.Order.PublishMode, "jetstream") }},
		Knob{Name: "order.publish_timeout", Type: Duration, Range: durations(0, MaxDelay), Doc: "deadline of an acked JetStream publish",
			set: func(s *System, v value) { s.Order.PublishTimeout = v.d },
			get: func(s *System) string { return durText(s.Order.PublishTimeout) }},
		Knob{Name: "order.publish_retries", Type: Int, Unit: "re-sends", Range: ints(0, 100), Doc: "re-sends of an unacknowledged publish with the same Nats-Msg-Id",
			set: func(s *System, v value) { s.Order.PublishRetries = v.i },
			get: func(s *System) string { return strconv.Itoa(s.Order.PublishRetries) }},
		Knob{Name: "order.user_view", Type: Enum, Values: []string{"full", "basic"},
			Doc: "full: profile with order history; basic: the lean request without it",
			set: func(s *System, v value) { s.Order.UserView = View(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserView, "full") }},
		Knob{Name: "order.wait_for_notification", Type: Duration, Range: durations(0, MaxDelay), Doc: "PlaceOrder waits until notification applied the event, at most this long (hidden sync); off: answer after publish",
			set: func(s *System, v value) { s.Order.WaitForNotification = v.d },
			get: func(s *System) string { return durText(s.Order.WaitForNotification) }},
		Knob{Name: "order.business_work", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial work inside PlaceOrder",
			set: func(s *System, v value) { s.Order.BusinessWork = v.d },
			get: func(s *System) string { return durText(s.Order.BusinessWork) }},
		Knob{Name: "user.users", Type: Int, Unit: "profiles", Range: ints(1, MaxUsers), Doc: "profiles seeded (ids u-0000, u-0001, …)",
			set: func(s *System, v value) { s.User.Users = v.i },
			get: func(s *System) string { return strconv.Itoa(s.User.Users) }},
		Knob{Name: "user.history_bytes", Type: Int, Unit: "bytes", Range: ints(0, MaxHistoryBytes), Doc: "approximate size of each profile's order history in bytes",
			set: func(s *System, v value) { s.User.HistoryBytes = v.i },
			get: func(s *System) string { return strconv.Itoa(s.User.HistoryBytes) }},
		Knob{Name: "payment.processing_time", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial delay inside Charge",
			set: func(s *System, v value) { s.Payment.ProcessingTime = v.d },
			get: func(s *System) string { return durText(s.Payment.ProcessingTime) }},
	)
	knobs = append(knobs, catalogueKnobs()...)
	knobs = append(knobs, orderKnobs()...)
	for _, c := range []struct {
		name string
		get  func(s *System) *Consumer
	}{
		{"notification", func(s *System) *Consumer { return &s.Notification }},
		{"ledger", func(s *System) *Consumer { return &s.Ledger }},
	} {
		get := c.get
		knobs = append(knobs,
			Knob{Name: c.name + ".idempotent", Type: Bool, Doc: "skip (and count) an order already applied",
				set: func(s *System, v value) { get(s).Idempotent = v.b },
				get: func(s *System) string { return boolText(get(s).Idempotent) }},
			Knob{Name: c.name + ".ack_wait", Type: Duration, Range: durations(MinAckWait, MaxDeadline), Doc: "JetStream ack wait before a redelivery",
				set: func(s *System, v value) { get(s).AckWait = v.d },
				get: func(s *System) string { return durText(get(s).AckWait) }},
			Knob{Name: c.name + ".max_deliver", Type: Int, Unit: "deliveries", Range: ints(0, 1000), Doc: "JetStream max deliveries (0: unlimited)",
				set: func(s *System, v value) {
					get(s).MaxDeliver = v.i
					if v.i == 0 {
						get(s).MaxDeliver = -1
					}
				},
				get: func(s *System) string { return strconv.Itoa(max(0, get(s).MaxDeliver)) }},
			Knob{Name: c.name + ".processing_time", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial delay per event before the ack",
				set: func(s *System, v value) { get(s).ProcessingTime = v.d },
				get: func(s *System) string { return durText(get(s).ProcessingTime) }},
		)
	}
}

func linkKnobs(link string, get func(s *System) *Link, fallback bool) []Knob {
	p := "order." + link + "."
	ks := []Knob{
		{Name: p + "timeout", Type: Duration, Range: durations(0, MaxDeadline), Doc: "deadline of each attempt; off: none",
			set: func(s *System, v value) { get(s).Timeout = v.d },
			get: func(s *System) string { return durText(get(s).Timeout) }},
		{Name: p + "retries", Type: Int, Unit: "attempts", Range: ints(0, MaxRetries), Doc: "extra attempts on retryable codes (UNAVAILABLE, RESOURCE_EXHAUSTED, and DEADLINE_EXCEEDED of an attempt); off: none",
			set: func(s *System, v value) { get(s).Retries = v.i },
			get: func(s *System) string { return strconv.Itoa(get(s).Retries) }},
		{Name: p + "backoff", Type: Duration, Range: durations(0, MaxDelay), Doc: "first retry backoff, doubled each retry, with full jitter",
			set: func(s *System, v value) { get(s).BackoffBase = v.d },
			get: func(s *System) string { return durText(get(s).BackoffBase) }},
		{Name: p + "backoff_max", Type: Duration, Range: durations(0, MaxDelay), Doc: "cap of the retry backoff",
			set: func(s *System, v value) { get(s).BackoffMax = v.d },
			get: func(s *System) string { return durText(get(s).BackoffMax) }},
		{Name: p + "breaker", Type: Bool, Doc: "gobreaker circuit breaker on the link",
			set: func(s *System, v value) { get(s).Breaker = v.b },
			get: func(s *System) string { return boolText(get(s).Breaker) }},
		{Name: p + "breaker_failures", Type: Int, Unit: "failures", Range: ints(1, 1_000_000), Doc: "consecutive failures that open the breaker",
			set: func(s *System, v value) { get(s).BreakerFailures = uint32(v.i) },
			get: func(s *System) string { return strconv.Itoa(int(get(s).BreakerFailures)) }},
		{Name: p + "breaker_open_for", Type: Duration, Range: durations(time.Millisecond, MaxDeadline), Doc: "how long the breaker stays open before it lets a probe through",
			set: func(s *System, v value) { get(s).BreakerOpenFor = v.d },
			get: func(s *System) string { return durText(get(s).BreakerOpenFor) }},
		{Name: p + "bulkhead", Type: Int, Unit: "calls", Range: ints(0, 100_000), Doc: "max calls in flight on the link, excess rejected at once; off: unlimited",
			set: func(s *System, v value) { get(s).Bulkhead = v.i },
			get: func(s *System) string { return strconv.Itoa(get(s).Bulkhead) }},
	}
	if fallback {
		ks = append(ks, Knob{Name: p + "fallback", Type: Enum, Values: []string{"off", "cached-profile"},
			Doc: "cached-profile: on failure use the last profile seen for the user",
			set: func(s *System, v value) {
				get(s).Fallback = FallbackNone
				if v.s != "off" {
					get(s).Fallback = Fallback(v.s)
				}
			},
			get: func(s *System) string { return enumText(get(s).Fallback, "off") }})
	}
	return ks
}
