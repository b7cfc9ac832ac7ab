package config

import (
	"strconv"
	"time"
)

// linkKnobs are the knobs of the resilience policy of each link of
// linkRules: order.<link>.timeout, retries, backoff, breaker, bulkhead,
// retry budget, …, and the fallback or hedging where the link allows it.
func linkKnobs() []Knob {
	var ks []Knob
	for _, r := range linkRules {
		get := r.get
		p := "order." + r.name + "."
		ks = append(ks,
			Knob{Name: p + "timeout", Type: Duration, Range: durations(0, MaxDeadline), Doc: "deadline of each attempt; off: none",
				set: func(s *System, v value) { get(s).Timeout = v.d },
				get: func(s *System) string { return durText(get(s).Timeout) }},
			Knob{Name: p + "retries", Type: Int, Unit: "attempts", Range: ints(0, MaxRetries), Doc: "extra attempts on retryable codes (UNAVAILABLE, RESOURCE_EXHAUSTED, and DEADLINE_EXCEEDED of an attempt); off: none",
				set: func(s *System, v value) { get(s).Retries = v.i },
				get: func(s *System) string { return strconv.Itoa(get(s).Retries) }},
			Knob{Name: p + "backoff", Type: Duration, Range: durations(0, MaxDelay), Doc: "first retry backoff, doubled each retry, with full jitter",
				set: func(s *System, v value) { get(s).BackoffBase = v.d },
				get: func(s *System) string { return durText(get(s).BackoffBase) }},
			Knob{Name: p + "backoff_max", Type: Duration, Range: durations(0, MaxDelay), Doc: "cap of the retry backoff",
				set: func(s *System, v value) { get(s).BackoffMax = v.d },
				get: func(s *System) string { return durText(get(s).BackoffMax) }},
			Knob{Name: p + "breaker", Type: Bool, Doc: "gobreaker circuit breaker on the link",
				set: func(s *System, v value) { get(s).Breaker = v.b },
				get: func(s *System) string { return boolText(get(s).Breaker) }},
			Knob{Name: p + "breaker_failures", Type: Int, Unit: "failures", Range: ints(1, 1_000_000), Doc: "consecutive failures that open the breaker",
				set: func(s *System, v value) { get(s).BreakerFailures = uint32(v.i) },
				get: func(s *System) string { return strconv.Itoa(int(get(s).BreakerFailures)) }},
			Knob{Name: p + "breaker_open_for", Type: Duration, Range: durations(time.Millisecond, MaxDeadline), Doc: "how long the breaker stays open before it lets a probe through",
				set: func(s *System, v value) { get(s).BreakerOpenFor = v.d },
				get: func(s *System) string { return durText(get(s).BreakerOpenFor) }},
			Knob{Name: p + "bulkhead", Type: Int, Unit: "calls", Range: ints(0, 100_000), Doc: "max calls in flight on the link, excess rejected at once; off: unlimited",
				set: func(s *System, v value) { get(s).Bulkhead = v.i },
				get: func(s *System) string { return strconv.Itoa(get(s).Bulkhead) }},
		)
		if r.fallback {
			ks = append(ks, Knob{Name: p + "fallback", Type: Enum, Values: []string{"off", "cached-profile"},
				Doc: "cached-profile: on failure use the last profile seen for the user",
				set: func(s *System, v value) {
					get(s).Fallback = FallbackNone
					if v.s != "off" {
						get(s).Fallback = Fallback(v.s)
					}
				},
				get: func(s *System) string { return enumText(get(s).Fallback, "off") }})
		}
		ks = append(ks,
			Knob{Name: p + "retry_budget", Type: Int, Unit: "% of calls", Range: ints(0, 100),
				Doc: "retries allowed as a percentage of calls (token bucket, burst 10); off: no budget",
				set: func(s *System, v value) { get(s).RetryBudget = v.i },
				get: func(s *System) string { return strconv.Itoa(get(s).RetryBudget) }},
			Knob{Name: p + "min_attempt_time", Type: Duration, Range: durations(0, MaxDelay),
				Doc: "send a retry only when the caller's remaining deadline leaves it at least this long; off: while any time is left",
				set: func(s *System, v value) { get(s).MinAttemptTime = v.d },
				get: func(s *System) string { return durText(get(s).MinAttemptTime) }},
		)
		if r.hedge {
			ks = append(ks, Knob{Name: p + "hedge_after", Type: Duration, Range: durations(0, MaxDelay),
				Doc: "send a second attempt to another payment replica when the first has not answered after this long, take the first answer; off: no hedging",
				set: func(s *System, v value) { get(s).HedgeAfter = v.d },
				get: func(s *System) string { return durText(get(s).HedgeAfter) }})
		}
	}
	return ks
}
