package config

import "fmt"

// The links of order that carry a resilience policy (a Link each), named
// after the proxy they go through.
const (
	LinkUser    = "user"
	LinkPayment = "payment"
)

// linkRules are the links with a policy and what each allows beyond the
// settings every link has: the one description the knobs (order.<link>.…),
// Validate and the resilience package read.
var linkRules = []struct {
	name     string
	fallback bool // a fallback when the call fails (the cached profile: user)
	hedge    bool // hedged attempts over replicas (payment)
	get      func(s *System) *Link
}{
	{LinkUser, true, false, func(s *System) *Link { return &s.Order.User }},
	{LinkPayment, false, true, func(s *System) *Link { return &s.Order.Payment }},
}

// Validate reports the first setting of the policy of link (LinkUser or
// LinkPayment) that cannot work, named as its knob (order.user.timeout).
func (l Link) Validate(link string) error {
	i := -1
	for j, r := range linkRules {
		if r.name == link {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("link %q is not %s or %s", link, LinkUser, LinkPayment)
	}
	rule, name := linkRules[i], "order."+link
	switch {
	case l.Timeout < 0:
		return fmt.Errorf("%s.timeout: %v is negative", name, l.Timeout)
	case l.Retries < 0 || l.Retries > MaxRetries:
		return fmt.Errorf("%s.retries: %d, need 0 to %d", name, l.Retries, MaxRetries)
	case l.Retries > 0 && (l.BackoffBase <= 0 || l.BackoffMax < l.BackoffBase):
		return fmt.Errorf("%s.backoff: base %v, max %v: need 0 < base <= max", name, l.BackoffBase, l.BackoffMax)
	case l.Breaker && (l.BreakerFailures == 0 || l.BreakerOpenFor <= 0 || l.BreakerHalfOpen == 0):
		return fmt.Errorf("%s.breaker: failures %d, open_for %v, half_open %d: all must be positive", name, l.BreakerFailures, l.BreakerOpenFor, l.BreakerHalfOpen)
	case l.Bulkhead < 0:
		return fmt.Errorf("%s.bulkhead: %d is negative", name, l.Bulkhead)
	case l.RetryBudget < 0 || l.RetryBudget > 100:
		return fmt.Errorf("%s.retry_budget: %d%%, need 0 (off) to 100", name, l.RetryBudget)
	case l.MinAttemptTime < 0:
		return fmt.Errorf("%s.min_attempt_time: %v is negative", name, l.MinAttemptTime)
	case l.HedgeAfter < 0:
		return fmt.Errorf("%s.hedge_after: %v is negative", name, l.HedgeAfter)
	case l.HedgeAfter != 0 && !rule.hedge:
		return fmt.Errorf("%s.hedge_after: %v: hedging applies to the payment link only", name, l.HedgeAfter)
	}
	switch l.Fallback {
	case FallbackNone:
	case FallbackCachedProfile:
		if !rule.fallback {
			return fmt.Errorf("%s.fallback: %q applies to the user link only", name, l.Fallback)
		}
	default:
		return fmt.Errorf("%s.fallback: %q is not cached-profile or off", name, l.Fallback)
	}
	return nil
}
