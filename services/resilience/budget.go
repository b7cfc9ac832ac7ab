package resilience

import (
	"sync"

	"github.com/fallacies/fallacies/services/config"
)

// EventBudgetExhausted is the span event of a retry the retry budget
// refused.
const EventBudgetExhausted = "retry.budget_exhausted"

// retryBudget caps retries at a share of calls, as a token bucket: every
// call deposits ratio tokens (the bucket holds at most burst), every retry
// withdraws one, and a retry that finds less than one token is not sent.
// Under a fault that fails every call, retries fall to ratio × calls, so
// one layer's retries can no longer multiply the load on a struggling
// dependency. It starts full, so a short blip is retried in full. It is
// safe for concurrent use; a nil budget allows every retry.
type retryBudget struct {
	ratio, burst float64

	mu     sync.Mutex
	tokens float64
}

// newRetryBudget returns the budget of percent retries per 100 calls, or
// nil when percent is 0 (no budget).
func newRetryBudget(percent int) *retryBudget {
	if percent <= 0 {
		return nil
	}
	return &retryBudget{ratio: float64(percent) / 100, burst: config.RetryBudgetBurst, tokens: config.RetryBudgetBurst}
}

// deposit credits one call.
func (b *retryBudget) deposit() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+b.ratio)
	b.mu.Unlock()
}

// withdraw takes one token for a retry and reports whether there was one.
func (b *retryBudget) withdraw() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
