package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKnobDefaults checks that every knob reports its default as a value it
// accepts, and that it reads the very field it sets: setting another value
// changes what Value reports to exactly that value.
func TestKnobDefaults(t *testing.T) {
	for _, k := range Knobs() {
		def := k.Default()
		if def == "" {
			t.Errorf("%s: empty default", k.Name)
			continue
		}
		if _, err := k.Parse(def); err != nil && !strings.HasPrefix(def, "load.") {
			t.Errorf("%s: default %q is not a value the knob takes: %v", k.Name, def, err)
		}
		if k.Type == Int && k.Unit == "" {
			t.Errorf("%s: an int knob says what it counts (Unit)", k.Name)
		}
		other := otherValue(k, def)
		s := Default()
		if err := Set(&s, k.Name, other); err != nil {
			t.Fatalf("%s: set %q: %v", k.Name, other, err)
		}
		if got := k.Value(s); got != other {
			t.Errorf("%s: set to %q, Value reports %q: get and set disagree", k.Name, other, got)
		}
		if got := k.Value(Default()); got != def {
			t.Errorf("%s: Set changed Default(): %q, then %q", k.Name, def, got)
		}
	}
}

// otherValue returns a value of the knob other than def.
func otherValue(k Knob, def string) string {
	switch k.Type {
	case Bool:
		if def == "on" {
			return "off"
		}
		return "on"
	case Enum:
		for _, v := range k.Values {
			if v != def {
				return v
			}
		}
	case Int:
		i, _ := strconv.Atoi(def)
		return strconv.Itoa(i + 2)
	case Duration:
		d, _ := time.ParseDuration(def)
		return (d + 7*time.Millisecond).String()
	}
	return def
}

func TestKnobDefaultsAsDocumented(t *testing.T) {
	for name, want := range map[string]string{
		"order.user.timeout":          "off",
		"order.user.backoff":          "10ms",
		"order.user.breaker_failures": "5",
		"order.user.fallback":         "off",
		"order.publish_mode":          "jetstream",
		"order.publish_dedupe":        "on",
		"notification.max_deliver":    "0",
		"notification.idempotent":     "on",
		"payment.replicas":            "1",
		"user.history_bytes":          "1024",
	} {
		k, ok := Lookup(name)
		if !ok {
			t.Errorf("no knob %s", name)
			continue
		}
		if got := k.Default(); got != want {
			t.Errorf("%s: default %q, want %q", name, got, want)
		}
	}
}
