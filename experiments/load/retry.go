package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
)

// MaxRetries bounds the client-side retries of WithRetries.
const MaxRetries = 10

// WithRetries returns a Doer that sends each request through d and, when
// it fails with a code a client typically retries (UNAVAILABLE,
// RESOURCE_EXHAUSTED, or DEADLINE_EXCEEDED answered by the server while
// the client still had time), sends it again, the same request (so
// PlaceOrder carries the same order id and is idempotent), up to retries
// more times. Before retry n (from 0) it waits a full-jitter backoff drawn
// from [0, backoff·2ⁿ]; all attempts share the request's context and so
// its deadline (Config.Timeout). The outcome is the last attempt's.
//
// This is the client team's own retry layer: stacked on a service that
// retries too, the attempts multiply. With retries 0, d is returned as is.
func WithRetries(d Doer, retries int, backoff time.Duration) (Doer, error) {
	switch {
	case retries < 0 || retries > MaxRetries:
		return nil, fmt.Errorf("load retries: %d, want 0 to %d", retries, MaxRetries)
	case retries > 0 && backoff <= 0:
		return nil, fmt.Errorf("load retry backoff: %v, want more than 0 with %d retries", backoff, retries)
	case retries == 0:
		return d, nil
	}
	return &retryDoer{d: d, retries: retries, backoff: backoff}, nil
}

type retryDoer struct {
	d       Doer
	retries int
	backoff time.Duration
}

// Do implements Doer.
func (r *retryDoer) Do(ctx context.Context, req Request) Outcome {
	for n := 0; ; n++ {
		out := r.d.Do(ctx, req)
		if out.Code == codes.OK || out.Unknown || n >= r.retries || !clientRetryable(out.Code) {
			return out
		}
		ceil := r.backoff << min(n, 30)
		t := time.NewTimer(time.Duration(rand.Int64N(int64(ceil) + 1)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return out
		}
	}
}

// clientRetryable are the codes a client retries.
func clientRetryable(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return true
	}
	return false
}
