package config

import (
	"fmt"
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
	Doc    string
	set    func(s *System, v value)
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

// Parse checks that raw is a valid value for the knob.
func (k Knob) Parse(raw string) (value, error) {
	raw = strings.TrimSpace(raw)
	switch k.Type {
	case Duration:
		if raw == "off" || raw == "0" {
			return value{}, nil
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return value{}, fmt.Errorf("%s: %q is not a duration (want e.g. 100ms, 2s, or off)", k.Name, raw)
		}
		return value{d: d}, nil
	case Int:
		if raw == "off" {
			return value{}, nil
		}
		i, err := strconv.Atoi(raw)
		if err != nil || i < 0 {
			return value{}, fmt.Errorf("%s: %q is not a whole number >= 0", k.Name, raw)
		}
		return value{i: i}, nil
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

var knobs = linkKnobs("user", func(s *System) *Link { return &s.Order.User }, true)

func init() {
	knobs = append(knobs, linkKnobs("payment", func(s *System) *Link { return &s.Order.Payment }, false)...)
	knobs = append(knobs,
		Knob{Name: "order.publish_mode", Type: Enum, Values: []string{"jetstream", "core"},
			Doc: "jetstream: durable, acked, deduplicated by Nats-Msg-Id; core: fire-and-forget",
			set: func(s *System, v value) { s.Order.PublishMode = PublishMode(v.s) }},
		Knob{Name: "order.publish_timeout", Type: Duration, Doc: "deadline of an acked JetStream publish",
			set: func(s *System, v value) { s.Order.PublishTimeout = v.d }},
		Knob{Name: "order.publish_retries", Type: Int, Doc: "re-sends of an unacknowledged publish with the same Nats-Msg-Id",
			set: func(s *System, v value) { s.Order.PublishRetries = v.i }},
		Knob{Name: "order.user_view", Type: Enum, Values: []string{"full", "basic"},
			Doc: "full: profile with order history; basic: the lean request without it",
			set: func(s *System, v value) { s.Order.UserView = View(v.s) }},
		Knob{Name: "order.wait_for_notification", Type: Duration, Doc: "PlaceOrder waits until notification applied the event, at most this long (hidden sync); off: answer after publish",
			set: func(s *System, v value) { s.Order.WaitForNotification = v.d }},
		Knob{Name: "order.business_work", Type: Duration, Doc: "artificial work inside PlaceOrder",
			set: func(s *System, v value) { s.Order.BusinessWork = v.d }},
		Knob{Name: "user.users", Type: Int, Doc: "profiles seeded (ids u-0000, u-0001, …)",
			set: func(s *System, v value) { s.User.Users = v.i }},
		Knob{Name: "user.history_bytes", Type: Int, Doc: "approximate size of each profile's order history in bytes",
			set: func(s *System, v value) { s.User.HistoryBytes = v.i }},
		Knob{Name: "payment.processing_time", Type: Duration, Doc: "artificial delay inside Charge",
			set: func(s *System, v value) { s.Payment.ProcessingTime = v.d }},
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
				set: func(s *System, v value) { get(s).Idempotent = v.b }},
			Knob{Name: c.name + ".ack_wait", Type: Duration, Doc: "JetStream ack wait before a redelivery",
				set: func(s *System, v value) { get(s).AckWait = v.d }},
			Knob{Name: c.name + ".max_deliver", Type: Int, Doc: "JetStream max deliveries (0: unlimited)",
				set: func(s *System, v value) {
					get(s).MaxDeliver = v.i
					if v.i == 0 {
						get(s).MaxDeliver = -1
					}
				}},
			Knob{Name: c.name + ".processing_time", Type: Duration, Doc: "artificial delay per event before the ack",
				set: func(s *System, v value) { get(s).ProcessingTime = v.d }},
		)
	}
}

func linkKnobs(link string, get func(s *System) *Link, fallback bool) []Knob {
	p := "order." + link + "."
	ks := []Knob{
		{Name: p + "timeout", Type: Duration, Doc: "deadline of each attempt; off: none",
			set: func(s *System, v value) { get(s).Timeout = v.d }},
		{Name: p + "retries", Type: Int, Doc: "extra attempts on retryable codes (UNAVAILABLE, RESOURCE_EXHAUSTED, and DEADLINE_EXCEEDED of an attempt); off: none",
			set: func(s *System, v value) { get(s).Retries = v.i }},
		{Name: p + "backoff", Type: Duration, Doc: "first retry backoff, doubled each retry, with full jitter",
			set: func(s *System, v value) { get(s).BackoffBase = v.d }},
		{Name: p + "backoff_max", Type: Duration, Doc: "cap of the retry backoff",
			set: func(s *System, v value) { get(s).BackoffMax = v.d }},
		{Name: p + "breaker", Type: Bool, Doc: "gobreaker circuit breaker on the link",
			set: func(s *System, v value) { get(s).Breaker = v.b }},
		{Name: p + "breaker_failures", Type: Int, Doc: "consecutive failures that open the breaker",
			set: func(s *System, v value) { get(s).BreakerFailures = uint32(v.i) }},
		{Name: p + "breaker_open_for", Type: Duration, Doc: "how long the breaker stays open before it lets a probe through",
			set: func(s *System, v value) { get(s).BreakerOpenFor = v.d }},
		{Name: p + "bulkhead", Type: Int, Doc: "max calls in flight on the link, excess rejected at once; off: unlimited",
			set: func(s *System, v value) { get(s).Bulkhead = v.i }},
	}
	if fallback {
		ks = append(ks, Knob{Name: p + "fallback", Type: Enum, Values: []string{"off", "cached-profile"},
			Doc: "cached-profile: on failure use the last profile seen for the user",
			set: func(s *System, v value) {
				get(s).Fallback = FallbackNone
				if v.s != "off" {
					get(s).Fallback = Fallback(v.s)
				}
			}})
	}
	return ks
}
