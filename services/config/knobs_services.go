package config

import "strconv"

// serviceKnobs are the knobs of the services themselves: order's
// publishing, view, transport and limits, user's profiles, payment's
// delay, replicas and idempotency, and each consumer's (consumerKnobs).
func serviceKnobs() []Knob {
	ks := []Knob{
		Knob{Name: "order.publish_mode", Type: Enum, Values: []string{"jetstream", "core"},
			Doc: "jetstream: durable, acked, deduplicated by Nats-Msg-Id; core: fire-and-forget",
			set: func(s *System, v value) { s.Order.PublishMode = PublishMode(v.s) },
			get: func(s *System) string { return enumText(s.Order.PublishMode, "jetstream") }},
		Knob{Name: "order.publish_timeout", Type: Duration, Range: durations(0, MaxDelay), Doc: "deadline of an acked JetStream publish",
			set: func(s *System, v value) { s.Order.PublishTimeout = v.d },
			get: func(s *System) string { return durText(s.Order.PublishTimeout) }},
		Knob{Name: "order.publish_retries", Type: Int, Unit: "re-sends", Range: ints(0, 100), Doc: "re-sends of an unacknowledged publish with the same Nats-Msg-Id",
			set: func(s *System, v value) { s.Order.PublishRetries = v.i },
			get: func(s *System) string { return strconv.Itoa(s.Order.PublishRetries) }},
		Knob{Name: "order.user_view", Type: Enum, Values: []string{"full", "basic"},
			Doc: "full: profile with order history; basic: the lean request without it",
			set: func(s *System, v value) { s.Order.UserView = View(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserView, "full") }},
		Knob{Name: "order.wait_for_notification", Type: Duration, Range: durations(0, MaxDelay), Doc: "PlaceOrder waits until notification applied the event, at most this long (hidden sync); off: answer after publish",
			set: func(s *System, v value) { s.Order.WaitForNotification = v.d },
			get: func(s *System) string { return durText(s.Order.WaitForNotification) }},
		Knob{Name: "order.business_work", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial work inside PlaceOrder",
			set: func(s *System, v value) { s.Order.BusinessWork = v.d },
			get: func(s *System) string { return durText(s.Order.BusinessWork) }},
		Knob{Name: "user.users", Type: Int, Unit: "profiles", Range: ints(1, MaxUsers), Doc: "profiles seeded (ids u-0000, u-0001, …)",
			set: func(s *System, v value) { s.User.Users = v.i },
			get: func(s *System) string { return strconv.Itoa(s.User.Users) }},
		Knob{Name: "user.history_bytes", Type: Int, Unit: "bytes", Range: ints(0, MaxHistoryBytes), Doc: "approximate size of each profile's order history in bytes",
			set: func(s *System, v value) { s.User.HistoryBytes = v.i },
			get: func(s *System) string { return strconv.Itoa(s.User.HistoryBytes) }},
		Knob{Name: "payment.processing_time", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial delay inside Charge",
			set: func(s *System, v value) { s.Payment.ProcessingTime = v.d },
			get: func(s *System) string { return durText(s.Payment.ProcessingTime) }},
		Knob{Name: "order.user_transport", Type: Enum, Values: []string{string(TransportGRPC), string(TransportHTTP)},
			Doc: "grpc: fetch the profile as protobuf over gRPC (proxy user); http: as JSON over HTTP/1.1 (proxy user-http), where of the user link's policy only the timeout applies",
			set: func(s *System, v value) { s.Order.UserTransport = Transport(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserTransport, string(TransportGRPC)) }},
		Knob{Name: "order.max_concurrent", Type: Int, Unit: "requests", Range: ints(0, MaxOrderConcurrency),
			Doc: "PlaceOrder and GetOrder requests order works on at once, across both; the excess waits its turn in arrival order (a fixed worker pool); off: unlimited",
			set: func(s *System, v value) { s.Order.MaxConcurrent = v.i },
			get: func(s *System) string { return strconv.Itoa(s.Order.MaxConcurrent) }},
		Knob{Name: "order.publish_dedupe", Type: Bool,
			Doc: "on: every publish of an event carries Nats-Msg-Id = order id, so the stream drops re-sent copies; off: no header, each re-send is stored again",
			set: func(s *System, v value) { s.Order.PublishNoDedupe = !v.b },
			get: func(s *System) string { return boolText(!s.Order.PublishNoDedupe) }},
		Knob{Name: "order.charge_key", Type: Enum, Values: []string{string(ChargeKeyOrder), string(ChargeKeyAttempt)},
			Doc: "order: each Charge's idempotency key is the order id, the same on every retry; attempt: a new key for each attempt (a request id made up per call), so a retried charge is charged again",
			set: func(s *System, v value) { s.Order.ChargeKey = ChargeKey(v.s) },
			get: func(s *System) string { return enumText(s.Order.ChargeKey, string(ChargeKeyOrder)) }},
		Knob{Name: "order.user.discovery", Type: Enum, Values: []string{string(DiscoveryPinned), string(DiscoveryRegistry)},
			Doc: "pinned: dial the address given at start, for good; registry: resolve user in the testbed's registry and follow its changes",
			set: func(s *System, v value) { s.Order.UserDiscovery = Discovery(v.s) },
			get: func(s *System) string { return enumText(s.Order.UserDiscovery, string(DiscoveryPinned)) }},
		Knob{Name: "payment.replicas", Type: Int, Unit: "servers", Range: ints(1, MaxPaymentReplicas),
			Doc: "payment servers, each behind its own proxy (payment, payment-1, payment-2); order balances round-robin over them; 1 to 3",
			set: func(s *System, v value) { s.Payment.Replicas = v.i },
			get: func(s *System) string { return strconv.Itoa(max(1, s.Payment.Replicas)) }},
		Knob{Name: "payment.idempotency", Type: Enum, Values: []string{string(IdempotencyLocal), string(IdempotencyShared)},
			Doc: "local: each replica keeps its own idempotency keys; shared: one JetStream key-value store for all replicas",
			set: func(s *System, v value) { s.Payment.Idempotency = Idempotency(v.s) },
			get: func(s *System) string { return enumText(s.Payment.Idempotency, string(IdempotencyLocal)) }},
		Knob{Name: "ledger.ordering", Type: Enum, Values: []string{string(OrderingVersion), string(OrderingArrival)},
			Doc: "version: the ledger applies a user's account state from an event only when the event's per-user version is above the applied one; arrival: every event's state as it arrives, so a late old event sets the account back",
			set: func(s *System, v value) { s.Ledger.Ordering = Ordering(v.s) },
			get: func(s *System) string { return enumText(s.Ledger.Ordering, string(OrderingVersion)) }},
	}
	return append(ks, consumerKnobs()...)
}

// consumerKnobs are the knobs of each asynchronous consumer.
func consumerKnobs() []Knob {
	var ks []Knob
	for _, c := range []struct {
		name string
		get  func(s *System) *Consumer
	}{
		{"notification", func(s *System) *Consumer { return &s.Notification }},
		{"ledger", func(s *System) *Consumer { return &s.Ledger }},
	} {
		get := c.get
		ks = append(ks,
			Knob{Name: c.name + ".idempotent", Type: Bool, Doc: "skip (and count) an order already applied",
				set: func(s *System, v value) { get(s).Idempotent = v.b },
				get: func(s *System) string { return boolText(get(s).Idempotent) }},
			Knob{Name: c.name + ".ack_wait", Type: Duration, Range: durations(MinAckWait, MaxDeadline), Doc: "JetStream ack wait before a redelivery",
				set: func(s *System, v value) { get(s).AckWait = v.d },
				get: func(s *System) string { return durText(get(s).AckWait) }},
			Knob{Name: c.name + ".max_deliver", Type: Int, Unit: "deliveries", Range: ints(0, 1000), Doc: "JetStream max deliveries (0: unlimited)",
				set: func(s *System, v value) {
					get(s).MaxDeliver = v.i
					if v.i == 0 {
						get(s).MaxDeliver = -1
					}
				},
				get: func(s *System) string { return strconv.Itoa(max(0, get(s).MaxDeliver)) }},
			Knob{Name: c.name + ".processing_time", Type: Duration, Range: durations(0, MaxDelay), Doc: "artificial delay per event before the ack",
				set: func(s *System, v value) { get(s).ProcessingTime = v.d },
				get: func(s *System) string { return durText(get(s).ProcessingTime) }},
		)
	}
	return ks
}
