package definition

import (
	"strings"
	"testing"
	"time"
)

func TestLoadRetries(t *testing.T) {
	tests := []struct {
		name    string
		load    string
		retries int
		backoff time.Duration
		wantErr string
	}{
		{"defaults", "{ rate: 10/s, duration: 30s }", 0, 50 * time.Millisecond, ""},
		{"set", "{ rate: 10/s, duration: 30s, retries: 3, retry_backoff: 20ms }", 3, 20 * time.Millisecond, ""},
		{"too many", "{ rate: 10/s, duration: 30s, retries: 11 }", 0, 0, "load.retries: 11 is more than 10"},
		{"negative", "{ rate: 10/s, duration: 30s, retries: -1 }", 0, 0, "load.retries: -1 is less than 0"},
		{"zero backoff", "{ rate: 10/s, duration: 30s, retries: 1, retry_backoff: 0 }", 0, 0, "load.retry_backoff: must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(head, "{ rate: 10/s, duration: 30s }", tt.load, 1)
			e, err := Parse("x.yaml", []byte(src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if e.Load.Retries != tt.retries || e.Load.RetryBackoff != tt.backoff {
				t.Fatalf("retries %d backoff %v, want %d and %v", e.Load.Retries, e.Load.RetryBackoff, tt.retries, tt.backoff)
			}
		})
	}
}
