package topology_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/internal/testenv"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
)

// TestLatencyOnUser puts 1 s on the user link's responses and checks what
// each policy of the link makes of it, as the client of order sees it.
// The bounds are causal: no response through the toxic comes back in
// under the injected second, so an order that ends sooner was cut by its
// deadline; none ends before its deadline.
func TestLatencyOnUser(t *testing.T) {
	const injected = time.Second
	tests := []struct {
		name         string
		knobs        []string
		wantCode     codes.Code
		wantFallback bool
		atLeast      time.Duration // the call takes at least this long
		under        time.Duration // and less than this; 0: no bound
	}{
		{name: "no timeout inherits the latency", wantCode: codes.OK, atLeast: injected},
		{name: "timeout without fallback fails fast", knobs: []string{"order.user.timeout", "100ms", "order.user.fallback", "off"},
			wantCode: codes.DeadlineExceeded, atLeast: 100 * time.Millisecond, under: injected},
		{name: "timeout with fallback answers from the cache", knobs: []string{"order.user.timeout", "100ms", "order.user.fallback", "cached-profile"},
			wantCode: codes.OK, wantFallback: true, atLeast: 100 * time.Millisecond, under: injected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := startEmbedded(t, system(t, tt.knobs...))
			ep := top.Endpoints()
			cl := dialAll(t, ep)
			// One order placed before the fault: the connections are up and
			// the profile is cached. (On a loaded machine the first may miss
			// a 100 ms deadline with nothing cached yet: poll.)
			n := 0
			testenv.EventuallyNil(t, 20*time.Second, "an order with the profile cached", func() error {
				n++
				_, err := placeOrder(t.Context(), cl.order, orderID(t, "warm", n), 5*time.Second)
				return err
			})

			inj := newInjector(t, ep)
			inj.apply(faults.Fault{Kind: faults.Latency, Target: faults.ProxyUser, Direction: faults.Downstream,
				Attrs: map[string]int64{"latency": injected.Milliseconds()}})

			start := time.Now()
			o, err := placeOrder(t.Context(), cl.order, orderIDs(t, "slow", 1)[0], 5*time.Second)
			took := time.Since(start)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("PlaceOrder: code %v (%v), want %v", got, err, tt.wantCode)
			}
			if err == nil && o.GetProfileFromFallback() != tt.wantFallback {
				t.Errorf("profile_from_fallback = %v, want %v", o.GetProfileFromFallback(), tt.wantFallback)
			}
			if took < tt.atLeast || (tt.under > 0 && took >= tt.under) {
				t.Errorf("PlaceOrder took %v, want at least %v and under %v", took, tt.atLeast, tt.under)
			}
			st := linkStats(t, cl.order, "user")
			if tt.wantFallback && st.GetFallbacks() != 1 {
				t.Errorf("user link fallbacks = %d, want 1", st.GetFallbacks())
			}
		})
	}
}

// TestBreakerOnPayment partitions payment: the breaker opens after three
// failures, then rejects at once, and closes again after the heal.
func TestBreakerOnPayment(t *testing.T) {
	top := startEmbedded(t, system(t,
		"order.payment.breaker", "on",
		"order.payment.breaker_failures", "3",
		"order.payment.breaker_open_for", "1s",
	))
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	mustPlace(t, cl.order, orderIDs(t, "warm", 1))
	if st := linkStats(t, cl.order, "payment"); st.GetBreakerState() != "closed" {
		t.Fatalf("breaker state before the fault = %q, want closed", st.GetBreakerState())
	}

	// What a whole order costs here and now (user, payment, the event
	// published): an order refused by an open breaker must cost less.
	var full []time.Duration
	for _, id := range orderIDs(t, "full", 10) {
		start := time.Now()
		if _, err := placeOrder(t.Context(), cl.order, id, 5*time.Second); err != nil {
			t.Fatalf("PlaceOrder before the fault: %v", err)
		}
		full = append(full, time.Since(start))
	}
	slices.Sort(full)
	fullMedian := full[len(full)/2]

	inj := newInjector(t, ep)
	cut := inj.apply(faults.Fault{Kind: faults.Partition, Target: faults.ProxyPayment})

	ids := orderIDs(t, "cut", 3)
	for _, id := range ids {
		_, err := placeOrder(t.Context(), cl.order, id, 5*time.Second)
		wantCode(t, "PlaceOrder with payment partitioned", err, codes.Unavailable)
	}
	st := linkStats(t, cl.order, "payment")
	if st.GetBreakerOpened() < 1 || st.GetBreakerState() != "open" {
		t.Fatalf("after 3 failures: breaker opened %d times, state %q; want >= 1 and open", st.GetBreakerOpened(), st.GetBreakerState())
	}
	attemptsOpen := st.GetAttempts()

	// While open, calls are refused without touching the wire.
	var took []time.Duration
	for _, id := range orderIDs(t, "open", 20) {
		start := time.Now()
		_, err := placeOrder(t.Context(), cl.order, id, 5*time.Second)
		took = append(took, time.Since(start))
		wantCode(t, "PlaceOrder with the breaker open", err, codes.Unavailable)
	}
	slices.Sort(took)
	median := took[len(took)/2]
	if median >= fullMedian {
		t.Errorf("median PlaceOrder with the breaker open took %v, want less than a whole order's median %v measured before the fault (all: %v)", median, fullMedian, took)
	}
	t.Logf("PlaceOrder with the breaker open: median %v, max %v; a whole order: median %v", median, took[len(took)-1], fullMedian)
	st = linkStats(t, cl.order, "payment")
	if st.GetBreakerRejected() < 15 {
		t.Errorf("breaker rejected %d calls, want most of the 20 made while open", st.GetBreakerRejected())
	}
	if onWire := st.GetAttempts() - attemptsOpen; onWire > 5 {
		t.Errorf("%d attempts reached the wire while the breaker was open, want at most a few half-open probes", onWire)
	}

	inj.remove(cut)
	healed := time.Now()
	var placed string
	n := 0
	testenv.EventuallyNil(t, 20*time.Second, "an order after the heal", func() error {
		n++
		id := orderID(t, "heal", n)
		if _, err := placeOrder(t.Context(), cl.order, id, 2*time.Second); err != nil {
			return fmt.Errorf("PlaceOrder after the heal: %w", err)
		}
		placed = id
		return nil
	})
	t.Logf("first order after the heal placed %v later (%s)", time.Since(healed), placed)
	st = linkStats(t, cl.order, "payment")
	if st.GetBreakerState() != "closed" || st.GetBreakerClosed() < 1 {
		t.Errorf("after the heal: breaker state %q, closed %d times; want closed and >= 1", st.GetBreakerState(), st.GetBreakerClosed())
	}
	// The transitions tell the story in order: closed → open, …, → closed.
	tr := st.GetTransitions()
	if len(tr) < 2 || tr[0].GetFrom() != "closed" || tr[0].GetTo() != "open" || tr[len(tr)-1].GetTo() != "closed" {
		t.Errorf("breaker transitions %v: want closed→open first and →closed last", tr)
	}
	// No order refused by the breaker was charged.
	for _, c := range listCharges(t, cl.payment) {
		if slices.Contains(ids, c.GetOrderId()) {
			t.Errorf("order %s failed but was charged", c.GetOrderId())
		}
	}
}

// TestChargeIdempotency: a Charge repeated with the same idempotency key
// charges once, whether the client repeats it or order's retry does.
func TestChargeIdempotency(t *testing.T) {
	top := startEmbedded(t, system(t,
		"order.payment.timeout", "100ms",
		"order.payment.retries", "10",
		"order.payment.backoff", "20ms",
		"order.payment.backoff_max", "50ms",
	))
	ep := top.Endpoints()
	cl := dialAll(t, ep)

	t.Run("direct", func(t *testing.T) {
		req := &paymentv1.ChargeRequest{OrderId: "direct-1", UserId: "u-0001", AmountCents: 500, IdempotencyKey: "key-direct-1"}
		first, err := cl.payment.Charge(t.Context(), req)
		if err != nil {
			t.Fatalf("first Charge: %v", err)
		}
		second, err := cl.payment.Charge(t.Context(), req)
		if err != nil {
			t.Fatalf("second Charge: %v", err)
		}
		if first.GetReplayed() || !second.GetReplayed() {
			t.Errorf("replayed: first %v, second %v; want false, true", first.GetReplayed(), second.GetReplayed())
		}
		if first.GetCharge().GetChargeId() == "" || second.GetCharge().GetChargeId() != first.GetCharge().GetChargeId() {
			t.Errorf("charge ids %q and %q: want the same, non-empty", first.GetCharge().GetChargeId(), second.GetCharge().GetChargeId())
		}
		if n := countCharges(t, cl.payment, "direct-1"); n != 1 {
			t.Errorf("charges for direct-1: %d, want 1", n)
		}
	})

	t.Run("same order twice", func(t *testing.T) {
		id := orderIDs(t, "o", 1)[0]
		mustPlace(t, cl.order, []string{id})
		mustPlace(t, cl.order, []string{id})
		if n := countCharges(t, cl.payment, id); n != 1 {
			t.Errorf("charges for %s placed twice: %d, want 1", id, n)
		}
	})

	t.Run("order retries a charge whose answer was late", func(t *testing.T) {
		inj := newInjector(t, ep)
		// The charge reaches payment at once; its answer comes 150 ms
		// later, after the 100 ms attempt deadline: order retries with the
		// same key while the first charge is already on the ledger.
		slow := inj.apply(faults.Fault{Kind: faults.Latency, Target: faults.ProxyPayment, Direction: faults.Downstream,
			Attrs: map[string]int64{"latency": 150}})
		before := linkStats(t, cl.order, "payment").GetRetries()
		id := orderIDs(t, "late", 1)[0]
		errc := make(chan error, 1)
		go func() {
			_, err := placeOrder(context.WithoutCancel(t.Context()), cl.order, id, 15*time.Second)
			errc <- err
		}()
		// Once payment has seen the key at least twice, heal the link.
		testenv.EventuallyNil(t, 10*time.Second, "payment to see the key and order to retry", func() error {
			if n := countCharges(t, cl.payment, id); n != 1 {
				return fmt.Errorf("%d charges for %s", n, id)
			}
			if r := linkStats(t, cl.order, "payment").GetRetries() - before; r < 1 {
				return fmt.Errorf("%d retries so far", r)
			}
			return nil
		})
		inj.remove(slow)
		if err := <-errc; err != nil {
			t.Fatalf("PlaceOrder with a late charge answer: %v", err)
		}
		if n := countCharges(t, cl.payment, id); n != 1 {
			t.Errorf("charges for %s after order's retries: %d, want 1", id, n)
		}
	})
}

func countCharges(t *testing.T, c paymentv1.PaymentServiceClient, orderID string) int {
	t.Helper()
	n := 0
	for _, ch := range listCharges(t, c) {
		if ch.GetOrderId() == orderID {
			n++
		}
	}
	return n
}

// TestBulkheadOnPayment fills a bulkhead of 2 on a slow payment with 6
// concurrent orders: the excess is refused at once and never charged.
func TestBulkheadOnPayment(t *testing.T) {
	const processing = 300 * time.Millisecond
	top := startEmbedded(t, system(t, "order.payment.bulkhead", "2", "payment.processing_time", processing.String()))
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	mustPlace(t, cl.order, orderIDs(t, "warm", 1))

	type result struct {
		id   string
		err  error
		took time.Duration
	}
	ids := orderIDs(t, "burst", 6)
	results := make([]result, len(ids))
	fire := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-fire
			start := time.Now()
			_, err := placeOrder(t.Context(), cl.order, id, 5*time.Second)
			results[i] = result{id: id, err: err, took: time.Since(start)}
		})
	}
	close(fire)
	wg.Wait()

	// Refused at once: before any admitted order could finish (each holds
	// its slot for the processing time), so a refusal that waited for a
	// slot would come after the first placed order.
	firstPlaced := time.Duration(1<<63 - 1)
	for _, r := range results {
		if r.err == nil {
			firstPlaced = min(firstPlaced, r.took)
		}
	}
	var rejected, placed []string
	for _, r := range results {
		switch status.Code(r.err) {
		case codes.OK:
			placed = append(placed, r.id)
		case codes.ResourceExhausted:
			rejected = append(rejected, r.id)
			if r.took >= firstPlaced {
				t.Errorf("%s rejected after %v, want at once: before the first admitted order was placed (%v)", r.id, r.took, firstPlaced)
			}
		default:
			t.Errorf("%s: %v, want OK or RESOURCE_EXHAUSTED", r.id, r.err)
		}
	}
	if len(rejected) < 3 || len(placed) < 2 {
		t.Errorf("%d placed and %d rejected of 6, want at least 2 placed and 3 rejected", len(placed), len(rejected))
	}
	if st := linkStats(t, cl.order, "payment"); st.GetBulkheadRejected() != int64(len(rejected)) {
		t.Errorf("bulkhead_rejected = %d, clients saw %d", st.GetBulkheadRejected(), len(rejected))
	}
	for _, id := range rejected {
		if n := countCharges(t, cl.payment, id); n != 0 {
			t.Errorf("rejected order %s was charged %d times", id, n)
		}
	}
	for _, id := range placed {
		if n := countCharges(t, cl.payment, id); n != 1 {
			t.Errorf("placed order %s was charged %d times, want 1", id, n)
		}
	}
}

// appliedIDs returns the set of order ids a consumer applied and fails the
// test if it applied any twice.
func appliedIDs(t *testing.T, name string, c consumerv1.ConsumerServiceClient) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, a := range listApplied(t, c) {
		if out[a.GetOrderId()] {
			t.Errorf("%s applied %s twice", name, a.GetOrderId())
		}
		out[a.GetOrderId()] = true
	}
	return out
}

// appliedWithin polls a consumer for up to d and reports whether it has
// applied at least want events by then.
func appliedWithin(ctx context.Context, c consumerv1.ConsumerServiceClient, want int64, d time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := c.GetStats(ctx, &consumerv1.GetStatsRequest{})
		switch {
		case err == nil && st.GetApplied() >= want:
			return true, nil
		case ctx.Err() != nil:
			return false, nil
		case err != nil:
			return false, fmt.Errorf("GetStats: %w", err)
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
		}
	}
}

// TestCoreNATSLosesEventsDuringPartition cuts notification off NATS in core
// publish mode: orders still succeed, notification misses exactly the
// events published during the cut, ledger gets every one.
func TestCoreNATSLosesEventsDuringPartition(t *testing.T) {
	top := startEmbedded(t, system(t, "order.publish_mode", "core"))
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	inj := newInjector(t, ep)

	before := orderIDs(t, "before", 10)
	mustPlace(t, cl.order, before)
	waitApplied(t, "notification", cl.notification, 10, 10*time.Second)

	cut := inj.apply(faults.Fault{Kind: faults.Partition, Target: faults.ProxyNATSNotification})
	during := orderIDs(t, "during", 10)
	mustPlace(t, cl.order, during)
	waitApplied(t, "ledger", cl.ledger, 20, 10*time.Second)
	inj.remove(cut)

	// Notification resubscribes some time after the heal; until then core
	// NATS drops its events too. Place probe orders until one arrives.
	var probes []string
	lostProbes := 0
	testenv.EventuallyNil(t, 15*time.Second, "a probe order to arrive at notification", func() error {
		id := orderID(t, "probe", len(probes))
		probes = append(probes, id)
		mustPlace(t, cl.order, []string{id})
		arrived, err := appliedWithin(t.Context(), cl.notification, int64(len(before)+len(probes)-lostProbes), 300*time.Millisecond)
		if err != nil || arrived {
			return err
		}
		lostProbes++
		return fmt.Errorf("probe %s did not reach notification", id)
	})
	after := orderIDs(t, "after", 10)
	mustPlace(t, cl.order, after)

	all := slices.Concat(before, during, probes, after)
	waitApplied(t, "ledger", cl.ledger, int64(len(all)), 10*time.Second)
	waitApplied(t, "notification", cl.notification, int64(len(all)-len(during)-lostProbes), 10*time.Second)

	ledger := appliedIDs(t, "ledger", cl.ledger)
	if len(ledger) != len(all) {
		t.Errorf("ledger applied %d orders, want all %d", len(ledger), len(all))
	}
	for _, id := range all {
		if !ledger[id] {
			t.Errorf("ledger missed %s", id)
		}
	}
	notif := appliedIDs(t, "notification", cl.notification)
	missed := 0
	for _, id := range slices.Concat(before, during, after) {
		if !notif[id] {
			missed++
		}
	}
	for _, id := range during {
		if notif[id] {
			t.Errorf("notification applied %s, published while it was cut off", id)
		}
	}
	for _, id := range slices.Concat(before, after) {
		if !notif[id] {
			t.Errorf("notification missed %s, published while it was connected", id)
		}
	}
	if missed != len(during) {
		t.Errorf("notification missed %d orders, want exactly the %d published during the cut", missed, len(during))
	}
	t.Logf("notification missed %d orders during the cut and %d of %d probes after the heal", missed, lostProbes, len(probes))
}

// TestJetStreamKeepsEventsDuringPartition cuts ledger off NATS in
// JetStream mode: orders succeed and, after the heal, ledger applies every
// event exactly once.
func TestJetStreamKeepsEventsDuringPartition(t *testing.T) {
	top := startEmbedded(t, system(t, "order.publish_mode", "jetstream"))
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	inj := newInjector(t, ep)

	cut := inj.apply(faults.Fault{Kind: faults.Partition, Target: faults.ProxyNATSLedger})
	ids := orderIDs(t, "during", 20)
	mustPlace(t, cl.order, ids)
	waitApplied(t, "notification", cl.notification, 20, 10*time.Second)
	st, err := cl.ledger.GetStats(t.Context(), &consumerv1.GetStatsRequest{})
	if err != nil {
		t.Fatalf("ledger GetStats: %v", err)
	}
	if st.GetApplied() != 0 {
		t.Errorf("ledger applied %d events while cut off NATS, want 0 (is the partition real?)", st.GetApplied())
	}
	inj.remove(cut)
	assertAllAccounted(t, cl, ids)
}
