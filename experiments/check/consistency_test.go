package check

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// att builds an attempt with just the fields the checker reads.
func att(id string, o Outcome) Attempt { return Attempt{OrderID: id, Outcome: o} }

// both returns an Applied map in which the two standard consumers applied
// the same orders.
func both(m map[string]int) map[string]map[string]int {
	n := make(map[string]int, len(m))
	for k, v := range m {
		n[k] = v
	}
	return map[string]map[string]int{"notification": m, "ledger": n}
}

func TestCheckConsistencyCategories(t *testing.T) {
	ok := ConsumerConsistency{}
	tests := []struct {
		name     string
		attempts []Attempt
		obs      Observed
		want     Consistency
	}{
		{
			name:     "empty",
			attempts: nil,
			obs:      Observed{},
			want:     Consistency{Consumers: map[string]ConsumerConsistency{}},
		},
		{
			name:     "all good",
			attempts: []Attempt{att("a", OutcomeAcknowledged), att("b", OutcomeAcknowledged)},
			obs: Observed{
				Charges:   map[string]int{"a": 1, "b": 1},
				Applied:   both(map[string]int{"a": 1, "b": 1}),
				Published: map[string]int{"a": 1, "b": 1},
			},
			want: Consistency{
				Acknowledged: 2,
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 2}, "ledger": {Applied: 2},
				},
				Events: EventsConsistency{Published: 2, PublishedKnown: true},
			},
		},
		{
			name:     "payment lost",
			attempts: []Attempt{att("a", OutcomeAcknowledged), att("b", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{"a": 1},
				Applied: both(map[string]int{"a": 1, "b": 1}),
			},
			want: Consistency{
				Acknowledged: 2, Lost: 1,
				Payments: PaymentsConsistency{Lost: 1},
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 2}, "ledger": {Applied: 2},
				},
			},
		},
		{
			name:     "event lost at one consumer",
			attempts: []Attempt{att("a", OutcomeAcknowledged), att("b", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{"a": 1, "b": 1},
				Applied: map[string]map[string]int{
					"notification": {"a": 1, "b": 1},
					"ledger":       {"a": 1},
				},
			},
			want: Consistency{
				Acknowledged: 2, Lost: 1,
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 2}, "ledger": {Applied: 1, Lost: 1},
				},
				Events: EventsConsistency{Lost: 1},
			},
		},
		{
			name:     "lost everywhere counts once",
			attempts: []Attempt{att("a", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{},
				Applied: map[string]map[string]int{"notification": {}, "ledger": nil},
			},
			want: Consistency{
				Acknowledged: 1, Lost: 1,
				Payments: PaymentsConsistency{Lost: 1},
				Consumers: map[string]ConsumerConsistency{
					"notification": {Lost: 1}, "ledger": {Lost: 1},
				},
				Events: EventsConsistency{Lost: 1},
			},
		},
		{
			name:     "charged twice",
			attempts: []Attempt{att("a", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{"a": 2},
				Applied: both(map[string]int{"a": 1}),
			},
			want: Consistency{
				Acknowledged: 1, Duplicated: 1,
				Payments: PaymentsConsistency{Duplicated: 1},
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 1}, "ledger": {Applied: 1},
				},
			},
		},
		{
			name:     "applied twice by both consumers and charged twice counts once",
			attempts: []Attempt{att("a", OutcomeAcknowledged), att("b", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{"a": 3, "b": 1},
				Applied: both(map[string]int{"a": 2, "b": 1}),
			},
			want: Consistency{
				Acknowledged: 2, Duplicated: 1,
				Payments: PaymentsConsistency{Duplicated: 1},
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 2, Duplicated: 1}, "ledger": {Applied: 2, Duplicated: 1},
				},
				Events: EventsConsistency{Duplicated: 1},
			},
		},
		{
			name:     "ghost charge",
			attempts: []Attempt{att("a", OutcomeFailed), att("b", OutcomeFailed)},
			obs: Observed{
				Charges: map[string]int{"a": 1},
				Applied: both(map[string]int{}),
			},
			want: Consistency{
				Ghost:    1,
				Payments: PaymentsConsistency{Ghost: 1},
				Consumers: map[string]ConsumerConsistency{
					"notification": ok, "ledger": ok,
				},
			},
		},
		{
			name:     "recovered unknown",
			attempts: []Attempt{att("a", OutcomeUnknown), att("b", OutcomeUnknown)},
			obs: Observed{
				Charges: map[string]int{"b": 1},
				Applied: both(map[string]int{"b": 1}),
			},
			want: Consistency{
				Recovered: 1,
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 1}, "ledger": {Applied: 1},
				},
			},
		},
		{
			name:     "unexpected ids count once across ledger and consumers",
			attempts: []Attempt{att("a", OutcomeAcknowledged)},
			obs: Observed{
				Charges: map[string]int{"a": 1, "x": 1, "y": 1},
				Applied: map[string]map[string]int{
					"notification": {"a": 1, "x": 1, "z": 1},
					"ledger":       {"a": 1, "y": 1},
				},
			},
			want: Consistency{
				Acknowledged: 1, Unexpected: 3,
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 3, Unexpected: 2}, "ledger": {Applied: 2, Unexpected: 1},
				},
			},
		},
		{
			name: "best outcome of repeated attempts",
			attempts: []Attempt{
				att("ack-after-fail", OutcomeFailed), att("ack-after-fail", OutcomeAcknowledged),
				att("unknown-after-fail", OutcomeFailed), att("unknown-after-fail", OutcomeUnknown),
				att("ack-after-unknown", OutcomeUnknown), att("ack-after-unknown", OutcomeAcknowledged), att("ack-after-unknown", OutcomeFailed),
			},
			obs: Observed{
				Charges: map[string]int{"ack-after-fail": 1, "unknown-after-fail": 1, "ack-after-unknown": 1},
			},
			want: Consistency{
				Acknowledged: 2, Recovered: 1,
				Consumers: map[string]ConsumerConsistency{},
			},
		},
		{
			name:     "invalid outcome reads as unknown",
			attempts: []Attempt{att("a", 0), att("b", Outcome(42)), att("b", OutcomeFailed)},
			obs:      Observed{Charges: map[string]int{"a": 1, "b": 1}},
			want:     Consistency{Recovered: 2, Consumers: map[string]ConsumerConsistency{}},
		},
		{
			name:     "zero counts and empty ids are ignored",
			attempts: []Attempt{att("", OutcomeAcknowledged), att("a", OutcomeFailed)},
			obs: Observed{
				Charges:   map[string]int{"a": 0, "q": -1},
				Applied:   map[string]map[string]int{"ledger": {"a": 0, "q": 0}},
				Published: map[string]int{"a": 0},
			},
			want: Consistency{
				Consumers: map[string]ConsumerConsistency{"ledger": ok},
				Events:    EventsConsistency{PublishedKnown: true},
			},
		},
		{
			name:     "published counts messages, duplicates included",
			attempts: []Attempt{att("a", OutcomeAcknowledged), att("b", OutcomeAcknowledged)},
			obs: Observed{
				Charges:   map[string]int{"a": 1, "b": 1},
				Published: map[string]int{"a": 2, "b": 1, "c": 1},
			},
			want: Consistency{
				Acknowledged: 2,
				Consumers:    map[string]ConsumerConsistency{},
				Events:       EventsConsistency{Published: 4, PublishedKnown: true},
			},
		},
		{
			name: "mixed history",
			attempts: []Attempt{
				att("ok1", OutcomeAcknowledged),
				att("ok2", OutcomeAcknowledged),
				att("nopay", OutcomeAcknowledged),
				att("noledger", OutcomeAcknowledged),
				att("dup", OutcomeAcknowledged),
				att("ghost", OutcomeFailed),
				att("failed", OutcomeFailed),
				att("rec", OutcomeUnknown),
				att("unk", OutcomeUnknown),
				att("ghostdup", OutcomeFailed),
			},
			obs: Observed{
				Charges: map[string]int{
					"ok1": 1, "ok2": 1, "noledger": 1, "dup": 2,
					"ghost": 1, "rec": 1, "ghostdup": 2, "stray": 1,
				},
				Applied: map[string]map[string]int{
					"notification": {"ok1": 1, "ok2": 1, "nopay": 1, "noledger": 1, "dup": 1, "rec": 1},
					"ledger":       {"ok1": 1, "ok2": 2, "nopay": 1, "dup": 1, "rec": 1, "stray2": 1},
				},
				Published: map[string]int{"ok1": 1, "ok2": 1, "nopay": 1, "noledger": 1, "dup": 1, "rec": 1},
			},
			want: Consistency{
				Acknowledged: 5,
				Lost:         2, // nopay, noledger
				Duplicated:   3, // dup (charge), ghostdup (charge), ok2 (ledger)
				Ghost:        2, // ghost, ghostdup
				Recovered:    1, // rec
				Unexpected:   2, // stray, stray2
				Payments:     PaymentsConsistency{Lost: 1, Duplicated: 2, Ghost: 2},
				Consumers: map[string]ConsumerConsistency{
					"notification": {Applied: 6},
					"ledger":       {Applied: 6, Lost: 1, Duplicated: 1, Unexpected: 1},
				},
				Events: EventsConsistency{Lost: 1, Duplicated: 1, Published: 6, PublishedKnown: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckConsistency(tt.attempts, tt.obs)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CheckConsistency =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestCheckConsistencyDoesNotModifyInput(t *testing.T) {
	attempts := []Attempt{att("a", OutcomeAcknowledged), att("a", OutcomeFailed)}
	obs := Observed{Charges: map[string]int{"a": 2}, Applied: both(map[string]int{"a": 1})}
	before := fmt.Sprint(attempts, obs)
	CheckConsistency(attempts, obs)
	if after := fmt.Sprint(attempts, obs); after != before {
		t.Errorf("input changed: %s → %s", before, after)
	}
}

// TestCheckConsistencyProperties checks invariants on random histories: the
// counts are bounded by what they are subsets of, and the unions are at
// least their largest part and at most the sum of their parts.
func TestCheckConsistencyProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	consumers := []string{"notification", "ledger"}
	for iter := range 500 {
		ids := 1 + r.IntN(40)
		var attempts []Attempt
		best := map[string]Outcome{}
		for range r.IntN(2 * ids) {
			id := fmt.Sprintf("o-%d", r.IntN(ids))
			o := Outcome(1 + r.IntN(3))
			attempts = append(attempts, att(id, o))
			if cur, seen := best[id]; !seen || o.rank() > cur.rank() {
				best[id] = o
			}
		}
		obs := Observed{Charges: map[string]int{}, Applied: map[string]map[string]int{}, Published: map[string]int{}}
		// Records span attempted ids and a few never attempted ones.
		for i := range ids + 5 {
			id := fmt.Sprintf("o-%d", i)
			obs.Charges[id] = r.IntN(4) - 1 // -1..2
			obs.Published[id] = r.IntN(3)
		}
		for _, c := range consumers[:r.IntN(3)] {
			m := map[string]int{}
			for i := range ids + 5 {
				if n := r.IntN(4) - 1; n != 0 {
					m[fmt.Sprintf("o-%d", i)] = n
				}
			}
			obs.Applied[c] = m
		}

		got := CheckConsistency(attempts, obs)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("iteration %d: "+format+"\ngot %+v", append([]any{iter}, append(args, got)...)...)
		}

		var acked, failed, unknown int
		for _, o := range best {
			switch o {
			case OutcomeAcknowledged:
				acked++
			case OutcomeFailed:
				failed++
			default:
				unknown++
			}
		}
		if got.Acknowledged != acked {
			fail("acknowledged %d, want %d", got.Acknowledged, acked)
		}
		if got.Acknowledged > len(attempts) {
			fail("acknowledged %d > attempts %d", got.Acknowledged, len(attempts))
		}
		if got.Lost > got.Acknowledged || got.Payments.Lost > got.Lost || got.Events.Lost > got.Lost {
			fail("lost out of bounds")
		}
		if got.Lost > got.Payments.Lost+got.Events.Lost {
			fail("lost %d > payments %d + events %d", got.Lost, got.Payments.Lost, got.Events.Lost)
		}
		if got.Ghost != got.Payments.Ghost || got.Ghost > failed {
			fail("ghost %d, payments ghost %d, failed %d", got.Ghost, got.Payments.Ghost, failed)
		}
		if got.Recovered > unknown {
			fail("recovered %d > unknown %d", got.Recovered, unknown)
		}
		if got.Payments.Duplicated > got.Duplicated || got.Events.Duplicated > got.Duplicated ||
			got.Duplicated > got.Payments.Duplicated+got.Events.Duplicated {
			fail("duplicated out of bounds")
		}
		if len(got.Consumers) != len(obs.Applied) {
			fail("%d consumers, want %d", len(got.Consumers), len(obs.Applied))
		}
		maxEvLost, sumEvLost, sumUnexpected := 0, 0, 0
		for name, cc := range got.Consumers {
			if cc.Lost > got.Acknowledged || cc.Duplicated > cc.Applied || cc.Unexpected > cc.Applied {
				fail("consumer %s out of bounds: %+v", name, cc)
			}
			maxEvLost = max(maxEvLost, cc.Lost)
			sumEvLost += cc.Lost
			sumUnexpected += cc.Unexpected
			// Every acknowledged order is either applied or lost.
			applied := 0
			for id, o := range best {
				if o == OutcomeAcknowledged && obs.Applied[name][id] > 0 {
					applied++
				}
			}
			if applied+cc.Lost != got.Acknowledged {
				fail("consumer %s: applied acknowledged %d + lost %d != acknowledged %d", name, applied, cc.Lost, got.Acknowledged)
			}
		}
		if got.Events.Lost < maxEvLost || got.Events.Lost > sumEvLost {
			fail("events lost %d not in [%d, %d]", got.Events.Lost, maxEvLost, sumEvLost)
		}
		// Ids ≥ ids were never attempted; exactly those with a positive
		// record somewhere are unexpected.
		wantUnexpected := 0
		for i := range ids + 5 {
			id := fmt.Sprintf("o-%d", i)
			if _, attempted := best[id]; attempted {
				continue
			}
			rec := obs.Charges[id] > 0
			for _, m := range obs.Applied {
				rec = rec || m[id] > 0
			}
			if rec {
				wantUnexpected++
			}
		}
		if got.Unexpected != wantUnexpected || got.Unexpected > len(obs.Charges)+sumUnexpected {
			fail("unexpected %d, want %d", got.Unexpected, wantUnexpected)
		}
		// Every charged attempted order is acknowledged, ghost or recovered.
		charged := 0
		for id := range best {
			if obs.Charges[id] > 0 {
				charged++
			}
		}
		if charged != (got.Acknowledged-got.Payments.Lost)+got.Ghost+got.Recovered {
			fail("charged attempted %d != acknowledged-lost %d + ghost %d + recovered %d",
				charged, got.Acknowledged-got.Payments.Lost, got.Ghost, got.Recovered)
		}
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{OutcomeAcknowledged, OutcomeFailed, OutcomeUnknown} {
		b, err := json.Marshal(Attempt{OrderID: "a", Outcome: o, Latency: time.Millisecond})
		if err != nil {
			t.Fatalf("marshal %v: %v", o, err)
		}
		var back Attempt
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if back.Outcome != o {
			t.Errorf("round trip of %v gave %v (%s)", o, back.Outcome, b)
		}
	}
	if s := Outcome(0).String(); s != "outcome(0)" {
		t.Errorf("Outcome(0).String() = %q", s)
	}
	var o Outcome
	if err := o.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("UnmarshalText(maybe) succeeded")
	}
}

func TestConsumerNamesSorted(t *testing.T) {
	c := CheckConsistency(nil, Observed{Applied: map[string]map[string]int{"notification": nil, "ledger": nil, "audit": nil}})
	if got, want := c.ConsumerNames(), []string{"audit", "ledger", "notification"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ConsumerNames = %v, want %v", got, want)
	}
}
