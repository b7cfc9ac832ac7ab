package config

import "strconv"

// orderKnobs are the knobs of order's transport to user, its concurrency
// limit and its publish deduplication (the transport-cost, cascade and
// duplicate-delivery experiments).
func orderKnobs() []Knob {
	return []Knob{
		{Name: "order.user_transport", Type: Enum, Values: []string{string(TransportGRPC), string(TransportHTTP)},
			Doc: "grpc: fetch the profile as protobuf over gRPC (proxy user); http: as JSON over HTTP/1.1 (proxy user-http), where of the user link's policy only the timeout applies",
			set: func(s *System, v value) { s.Order.UserTransport = Transport(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserTransport, string(TransportGRPC)) }},
		{Name: "order.max_concurrent", Type: Int, Unit: "requests", Range: ints(0, MaxOrderConcurrency),
			Doc: "PlaceOrder and GetOrder requests order works on at once, across both; the excess waits its turn in arrival order (a fixed worker pool); off: unlimited",
			set: func(s *System, v value) { s.Order.MaxConcurrent = v.i },
			get: func(s *System) string { return strconv.Itoa(s.Order.MaxConcurrent) }},
		{Name: "order.publish_dedupe", Type: Bool,
			Doc: "on: every publish of an event carries Nats-Msg-Id = order id, so the stream drops re-sent copies; off: no header, each re-send is stored again",
			set: func(s *System, v value) { s.Order.PublishNoDedupe = !v.b },
			get: func(s *System) string { return boolText(!s.Order.PublishNoDedupe) }},
	}
}

// MaxOrderConcurrency is the largest order.max_concurrent accepted.
const MaxOrderConcurrency = 100_000
