package sleep

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := For(t.Context(), 50*time.Millisecond); err != nil || time.Since(start) != 50*time.Millisecond {
			t.Errorf("For 50ms = %v after %v, want nil after 50ms", err, time.Since(start))
		}
		if err := For(t.Context(), -time.Second); err != nil || time.Since(start) != 50*time.Millisecond {
			t.Errorf("For a negative duration = %v, want nil at once", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := For(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 10*time.Millisecond {
			t.Errorf("For an hour under a 10ms deadline = %v after %v, want the deadline after 10ms", err, time.Since(start))
		}
	})
}
