package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKnobBounds checks that every Int and Duration knob has a range,
// that Parse accepts its edges and refuses one step beyond them and the
// values near the int64 limit, naming the range.
func TestKnobBounds(t *testing.T) {
	for _, k := range Knobs() {
		if k.Type != Int && k.Type != Duration {
			if k.Bounds() != "" || k.Min != 0 || k.Max != 0 {
				t.Errorf("%s (%s) has a range %+v", k.Name, k.Type, k.Range)
			}
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			if k.Max <= 0 || k.Min < 0 || k.Min > k.Max {
				t.Fatalf("range %d to %d: want 0 <= min <= max, max > 0", k.Min, k.Max)
			}
			text := func(n int64) string {
				if k.Type == Duration {
					return time.Duration(n).String()
				}
				return strconv.FormatInt(n, 10)
			}
			for _, n := range []int64{k.Min, k.Min + 1, k.Max - 1, k.Max} {
				v, err := k.Parse(text(n))
				if err != nil {
					t.Errorf("Parse(%s): %v", text(n), err)
					continue
				}
				if got := int64(v.i) + int64(v.d); got != n {
					t.Errorf("Parse(%s) = %d", text(n), got)
				}
				s := Default()
				if err := Set(&s, k.Name, text(n)); err != nil {
					t.Errorf("Set(%s): %v", text(n), err)
				}
			}
			refused := []string{text(k.Max + 1)}
			if k.Type == Int {
				refused = append(refused, "9223372036854775807", "9223372036854775808", "-9223372036854775808")
			}
			if k.Min > 0 {
				refused = append(refused, text(k.Min-1), "off")
			}
			if k.Type == Duration {
				refused = append(refused, "2562047h47m16.854775807s", "2562048h", "9223372036854775808ns", "-1ns")
			}
			for _, raw := range refused {
				_, err := k.Parse(raw)
				if err == nil {
					t.Errorf("Parse(%s): accepted", raw)
					continue
				}
				if msg := err.Error(); !strings.HasPrefix(msg, k.Name+": ") || !strings.Contains(msg, "need "+k.Bounds()) {
					t.Errorf("Parse(%s): %q does not name the knob and its range %q", raw, msg, k.Bounds())
				}
			}
		})
	}
}

func TestKnobBoundsText(t *testing.T) {
	for _, tt := range []struct {
		name, want string
	}{
		{"order.user.retries", "0 to 10"},
		{"order.user.timeout", "0s to 10m"},
		{"notification.ack_wait", "100ms to 10m"},
		{"user.users", "1 to 1000000"},
		{"order.publish_mode", ""},
	} {
		k, ok := Lookup(tt.name)
		if !ok {
			t.Fatalf("no knob %s", tt.name)
		}
		if got := k.Bounds(); got != tt.want {
			t.Errorf("%s bounds %q, want %q", tt.name, got, tt.want)
		}
	}
	err := Set(new(System), "order.user.retries", "11")
	if err == nil || err.Error() != "order.user.retries: 11 is out of range, need 0 to 10" {
		t.Errorf("Set retries 11: %v", err)
	}
}
