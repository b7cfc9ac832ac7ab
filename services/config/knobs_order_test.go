package config

import (
	"strings"
	"testing"
)

func TestOrderKnobs(t *testing.T) {
	tests := []struct {
		knob, value string
		check       func(s System) bool
		invalid     string // part of the Validate error, "" when valid
	}{
		{"order.user_transport", "http", func(s System) bool { return s.Order.UserTransport == TransportHTTP }, ""},
		{"order.user_transport", "grpc", func(s System) bool { return s.Order.UserTransport == TransportGRPC }, ""},
		{"order.max_concurrent", "32", func(s System) bool { return s.Order.MaxConcurrent == 32 }, ""},
		{"order.max_concurrent", "off", func(s System) bool { return s.Order.MaxConcurrent == 0 }, ""},
		{"order.publish_dedupe", "off", func(s System) bool { return s.Order.PublishNoDedupe }, ""},
		{"order.publish_dedupe", "on", func(s System) bool { return !s.Order.PublishNoDedupe }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.knob+"="+tt.value, func(t *testing.T) {
			s := Default()
			if err := Set(&s, tt.knob, tt.value); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if !tt.check(s) {
				t.Fatalf("%s=%s not applied: %+v", tt.knob, tt.value, s.Order)
			}
			err := s.Validate()
			switch {
			case tt.invalid == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.invalid != "" && (err == nil || !strings.Contains(err.Error(), tt.invalid)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.invalid)
			}
		})
	}
	for _, bad := range []struct{ knob, value string }{
		{"order.user_transport", "soap"}, {"order.max_concurrent", "-1"}, {"order.max_concurrent", "100001"}, {"order.publish_dedupe", "maybe"},
	} {
		if err := Set(new(System), bad.knob, bad.value); err == nil {
			t.Errorf("Set %s=%s: no error", bad.knob, bad.value)
		}
	}
}

func TestOrderDefaults(t *testing.T) {
	s := Default()
	if s.Order.PublishNoDedupe || s.Order.MaxConcurrent != 0 {
		t.Fatalf("defaults: dedupe off %v, max_concurrent %d; want dedupe on, unlimited", s.Order.PublishNoDedupe, s.Order.MaxConcurrent)
	}
	s.Order.UserTransport = "soap"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "order.user_transport") {
		t.Fatalf("Validate of transport soap: %v", err)
	}
}
