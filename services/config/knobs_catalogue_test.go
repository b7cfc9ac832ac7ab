package config

import (
	"strings"
	"testing"
	"time"
)

func TestCatalogueKnobs(t *testing.T) {
	tests := []struct {
		knob, value string
		check       func(System) bool
	}{
		{"security.mtls", "on", func(s System) bool { return s.Security.MTLS }},
		{"order.user.discovery", "registry", func(s System) bool { return s.Order.UserDiscovery == DiscoveryRegistry }},
		{"topology.restart_address", "new", func(s System) bool { return s.Topology.RestartAddress == AddressNew }},
		{"payment.replicas", "3", func(s System) bool { return s.Payment.Replicas == 3 }},
		{"payment.idempotency", "shared", func(s System) bool { return s.Payment.Idempotency == IdempotencyShared }},
		{"order.payment.hedge_after", "30ms", func(s System) bool { return s.Order.Payment.HedgeAfter == 30*time.Millisecond }},
		{"order.payment.retry_budget", "10", func(s System) bool { return s.Order.Payment.RetryBudget == 10 }},
		{"order.user.retry_budget", "20", func(s System) bool { return s.Order.User.RetryBudget == 20 }},
		{"order.payment.min_attempt_time", "100ms", func(s System) bool { return s.Order.Payment.MinAttemptTime == 100*time.Millisecond }},
		{"client.retries", "0", func(s System) bool { return s.Client.RetriesSet && s.Client.Retries == 0 }},
		{"client.retry_backoff", "20ms", func(s System) bool { return s.Client.RetryBackoff == 20*time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.knob, func(t *testing.T) {
			s := Default()
			if err := Set(&s, tt.knob, tt.value); err != nil {
				t.Fatalf("Set(%s, %s): %v", tt.knob, tt.value, err)
			}
			if !tt.check(s) {
				t.Fatalf("Set(%s, %s) did not take: %+v", tt.knob, tt.value, s)
			}
		})
	}
}

func TestCatalogueValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*System)
		wantErr string
	}{
		{"defaults", func(*System) {}, ""},
		{"three replicas hedged", func(s *System) {
			s.Payment.Replicas, s.Order.Payment.HedgeAfter = 3, 30*time.Millisecond
		}, ""},
		{"hedging one replica", func(s *System) { s.Order.Payment.HedgeAfter = 30 * time.Millisecond }, "payment.replicas of at least 2"},
		{"hedging user", func(s *System) { s.Order.User.HedgeAfter = time.Millisecond }, "payment link only"},
		{"too many replicas", func(s *System) { s.Payment.Replicas = 4 }, "payment.replicas: 4"},
		{"unknown discovery", func(s *System) { s.Order.UserDiscovery = "dns" }, "order.user.discovery"},
		{"unknown idempotency", func(s *System) { s.Payment.Idempotency = "global" }, "payment.idempotency"},
		{"unknown restart address", func(s *System) { s.Topology.RestartAddress = "moved" }, "topology.restart_address"},
		{"budget above 100", func(s *System) { s.Order.Payment.RetryBudget = 101 }, "retry_budget"},
		{"negative min attempt time", func(s *System) { s.Order.User.MinAttemptTime = -1 }, "min_attempt_time"},
		{"client retries above 10", func(s *System) { s.Client.Retries = 11 }, "client.retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			tt.mutate(&s)
			err := s.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
