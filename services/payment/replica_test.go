package payment

import (
	"strings"
	"testing"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

func TestNewReplicaValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Payment
		r       Replica
		wantErr string
	}{
		{"local keys need no NATS", config.Payment{Idempotency: config.IdempotencyLocal}, Replica{Index: 2}, ""},
		{"shared keys need NATS", config.Payment{Idempotency: config.IdempotencyShared}, Replica{Index: 1}, "needs a NATS URL"},
		{"negative index", config.Payment{}, Replica{Index: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewReplica(tt.cfg, tt.r, serve.Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewReplica: %v", err)
				}
				if s.shared != nil {
					t.Fatal("local keys, yet a shared store")
				}
				s.Shutdown(t.Context())
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewReplica: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSharedChargeID(t *testing.T) {
	k := &sharedKeys{replica: 2}
	if got := k.chargeID("o-1"); got != "ch-r2-o-1" {
		t.Fatalf("chargeID = %q, want ch-r2-o-1", got)
	}
	var nilKeys *sharedKeys
	nilKeys.close() // a server without shared keys closes nothing
}
