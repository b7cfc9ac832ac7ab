// Package sleep is the one wait that gives up when its context ends, used
// by the services (backoff, delays) and the link layers (call delays).
package sleep

import (
	"context"
	"time"
)

// For waits d, or less when ctx ends first, and then returns ctx's error.
// A d of zero or less returns at once with nil.
func For(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
