package config

import "strconv"

// testbedKnobs are the knobs of what surrounds the services: transport
// security, where a restarted service is found, and the load client's own
// retries in a variant.
func testbedKnobs() []Knob {
	return []Knob{
		{Name: "security.mtls", Type: Bool,
			Doc: "on: TLS on every link (gRPC, user HTTP, NATS), servers require a client certificate of the testbed's CA; off: plaintext",
			set: func(s *System, v value) { s.Security.MTLS = v.b },
			get: func(s *System) string { return boolText(s.Security.MTLS) }},
		{Name: "topology.restart_address", Type: Enum, Values: []string{string(AddressSame), string(AddressNew)},
			Doc: "same: a restarted service's proxy is repointed at it; new: the proxy moves to a new address, published in the registry (processes topology)",
			set: func(s *System, v value) { s.Topology.RestartAddress = RestartAddress(v.s) },
			get: func(s *System) string { return enumText(s.Topology.RestartAddress, string(AddressSame)) }},
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
	}
}
