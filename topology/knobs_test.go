package topology_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
	"github.com/fallacies/fallacies/topology"
)

// delayKnobs are the knobs that make a service wait on purpose; at their
// maximum every order outlives its client deadline, so each gets a
// topology of its own instead of hiding the others.
var delayKnobs = map[string]bool{
	"order.business_work":          true,
	"order.wait_for_notification":  true,
	"payment.processing_time":      true,
	"notification.processing_time": true,
	"ledger.processing_time":       true,
}

// knobLevel is the value of k at one level of TestKnobRanges: the edge of
// its range (Int, Duration), off or on (Bool), the first value (Enum) at the
// minimum and the last above it.
func knobLevel(k config.Knob, level string) string {
	switch k.Type {
	case config.Int, config.Duration:
		n := map[string]int64{"minimum": k.Min, "above-minimum": k.Min + 1, "maximum": k.Max}[level]
		if k.Type == config.Duration {
			return time.Duration(n).String()
		}
		return strconv.FormatInt(n, 10)
	case config.Bool:
		if level == "minimum" {
			return "off"
		}
		return "on"
	case config.Enum:
		if level == "minimum" {
			return k.Values[0]
		}
		return k.Values[len(k.Values)-1]
	}
	panic("unknown knob type " + k.Type)
}

// TestKnobRanges drives every knob to the edges of its accepted range
// against a running embedded topology: all knobs at their minimum, all
// one step above it, all (but the delays) at their maximum, and each
// delay at its maximum alone. In each, a few orders are placed: none may
// panic a service (that kills this test binary), every call returns by
// its deadline with a code the configuration explains, the services still
// answer afterwards, and the topology stops within stopTimeout.
func TestKnobRanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several topologies")
	}
	type level struct {
		name     string
		set      map[string]string // knob → value
		wantOK   bool              // every order is placed
		deadline time.Duration     // of each PlaceOrder
		orders   int               // placed at once
	}
	all := func(name string, skipDelays bool, overrides map[string]string) map[string]string {
		set := map[string]string{}
		for _, k := range config.Knobs() {
			if skipDelays && delayKnobs[k.Name] {
				continue
			}
			set[k.Name] = knobLevel(k, name)
		}
		for n, v := range overrides {
			set[n] = v
		}
		return set
	}
	levels := []level{
		{"minimum", all("minimum", false, nil), true, 10 * time.Second, 4},
		// One step above: 1ns deadlines and backoffs, 1 retry, a breaker
		// after 2 failures, hedging after 1ns, 2 users of 1-byte histories.
		{"above-minimum", all("above-minimum", false, map[string]string{
			"payment.replicas": "2", // hedge_after needs two
		}), false, 10 * time.Second, 4},
		// The largest sizes, counts and deadlines: 10 retries of 1m
		// backoffs, 4 MiB histories of a million users, 100 000 slots.
		{"maximum", all("maximum", true, map[string]string{
			"order.user_view":      "full", // fetch the 4 MiB history,
			"order.user_transport": "grpc", // as protobuf (JSON: above-minimum)
		}), true, time.Minute, 2}, // each order moves the 4 MiB profile twice
	}
	for _, k := range config.Knobs() {
		if delayKnobs[k.Name] {
			levels = append(levels, level{"maximum " + k.Name, map[string]string{k.Name: knobLevel(k, "maximum")}, false, 2 * time.Second, 4})
		}
	}
	covered := map[string]map[string]bool{}
	for _, lv := range levels {
		t.Run(lv.name, func(t *testing.T) {
			sys := config.Default()
			for n, v := range lv.set {
				if err := config.Set(&sys, n, v); err != nil {
					t.Fatalf("set %s=%s: %v", n, v, err)
				}
				if covered[n] == nil {
					covered[n] = map[string]bool{}
				}
				covered[n][v] = true
			}
			if err := sys.Validate(); err != nil {
				t.Fatalf("system: %v", err)
			}
			top := startEmbedded(t, sys)
			conn, err := serve.Dial(top.Endpoints().Services["order"], topology.ObserverOptions(top))
			if err != nil {
				t.Fatalf("dial order: %v", err)
			}
			t.Cleanup(func() { conn.Close() })
			oc := orderv1.NewOrderServiceClient(conn)

			errs := make([]error, lv.orders)
			var wg sync.WaitGroup
			for i := range lv.orders {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(t.Context(), lv.deadline)
					defer cancel()
					_, errs[i] = oc.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
						OrderId: orderID(t, "k", i), UserId: user.UserID(0), AmountCents: 1999, CardNumber: "4111 1111 1111 1111",
					})
				})
			}
			wg.Wait()
			for i, err := range errs {
				code := status.Code(err)
				switch {
				case lv.wantOK && err != nil:
					t.Errorf("order %d: %v, want it placed", i, err)
				case code == codes.Unknown || code == codes.Internal:
					t.Errorf("order %d: %v: an unexplained failure", i, err)
				case err != nil:
					t.Logf("order %d: %v", i, err)
				}
			}
			// The services still answer.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st, err := oc.GetStats(ctx, &orderv1.GetStatsRequest{})
			if err != nil {
				t.Fatalf("GetStats after the orders: %v", err)
			}
			t.Logf("order stats: %v", st)
		})
	}
	for _, k := range config.Knobs() {
		if k.Type != config.Int && k.Type != config.Duration {
			continue
		}
		for _, edge := range []string{knobLevel(k, "minimum"), knobLevel(k, "maximum")} {
			if !covered[k.Name][edge] {
				t.Errorf("%s=%s is not driven by any level", k.Name, edge)
			}
		}
	}
}
