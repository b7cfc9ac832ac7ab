package config

import "strconv"

// catalogueKnobs are the knobs of the security, topology, administrators
// and heterogeneous experiments: transport security, service discovery,
// retry budgets with deadline awareness, payment replicas and hedging.
func catalogueKnobs() []Knob {
	ks := []Knob{
		{Name: "security.mtls", Type: Bool,
			Doc: "on: TLS on every link (gRPC, user HTTP, NATS), servers require a client certificate of the testbed's CA; off: plaintext",
			set: func(s *System, v value) { s.Security.MTLS = v.b },
			get: func(s *System) string { return boolText(s.Security.MTLS) }},
		{Name: "order.user.discovery", Type: Enum, Values: []string{string(DiscoveryPinned), string(DiscoveryRegistry)},
			Doc: "pinned: dial the address given at start, for good; registry: resolve user in the testbed's registry and follow its changes",
			set: func(s *System, v value) { s.Order.UserDiscovery = Discovery(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserDiscovery, string(DiscoveryPinned)) }},
		{Name: "topology.restart_address", Type: Enum, Values: []string{string(AddressSame), string(AddressNew)},
			Doc: "same: a restarted service's proxy is repointed at it; new: the proxy moves to a new address, published in the registry (processes topology)",
			set: func(s *System, v value) { s.Topology.RestartAddress = RestartAddress(v.s) },
			get: func(s *System) string { return enumText(s.Topology.RestartAddress, string(AddressSame)) }},
		{Name: "payment.replicas", Type: Int, Unit: "servers", Range: ints(1, MaxPaymentReplicas),
			Doc: "payment servers, each behind its own proxy (payment, payment-1, payment-2); order balances round-robin over them; 1 to 3",
			set: func(s *System, v value) { s.Payment.Replicas = v.i },
			get: func(s *System) string { return strconv.Itoa(max(1, s.Payment.Replicas)) }},
		{Name: "payment.idempotency", Type: Enum, Values: []string{string(IdempotencyLocal), string(IdempotencyShared)},
			Doc: "local: each replica keeps its own idempotency keys; shared: one JetStream key-value store for all replicas",
			set: func(s *System, v value) { s.Payment.Idempotency = Idempotency(v.s) },
			get: func(s *System) string { return enumText(s.Payment.Idempotency, string(IdempotencyLocal)) }},
		{Name: "client.retries", Type: Int, Unit: "retries", Range: ints(0, MaxRetries),
			Doc: "the load client's retries of a failed request in this variant (the client team's setting); overrides load.retries",
			set: func(s *System, v value) { s.Client.Retries, s.Client.RetriesSet = v.i, true },
			get: func(s *System) string {
				if !s.Client.RetriesSet {
					return "load.retries" // the experiment's load section decides
				}
				return strconv.Itoa(s.Client.Retries)
			}},
		{Name: "client.retry_backoff", Type: Duration, Range: durations(0, MaxDelay),
			Doc: "the load client's first retry backoff in this variant; overrides load.retry_backoff",
			set: func(s *System, v value) { s.Client.RetryBackoff = v.d },
			get: func(s *System) string {
				if s.Client.RetryBackoff == 0 {
					return "load.retry_backoff" // the experiment's load section decides
				}
				return durText(s.Client.RetryBackoff)
			}},
		{Name: "order.payment.hedge_after", Type: Duration, Range: durations(0, MaxDelay),
			Doc: "send a second attempt to another payment replica when the first has not answered after this long, take the first answer; off: no hedging",
			set: func(s *System, v value) { s.Order.Payment.HedgeAfter = v.d },
			get: func(s *System) string { return durText(s.Order.Payment.HedgeAfter) }},
	}
	for _, l := range []struct {
		name string
		get  func(s *System) *Link
	}{
		{"user", func(s *System) *Link { return &s.Order.User }},
		{"payment", func(s *System) *Link { return &s.Order.Payment }},
	} {
		get := l.get
		p := "order." + l.name + "."
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
	}
	return ks
}
