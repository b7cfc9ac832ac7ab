package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/internal/semconv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// orderSeq numbers the test's orders.
var orderSeq atomic.Int64

// placeOrder places one order and says whether it was placed.
func (s *system) placeOrder(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		OrderId: fmt.Sprintf("kinds-%d-%d", time.Now().UnixNano(), orderSeq.Add(1)), UserId: semconv.UserID(1),
		AmountCents: 100, CardNumber: load.TestCard,
	})
	return err == nil && resp.GetOrder().GetStatus() == orderv1.OrderStatus_ORDER_STATUS_PLACED
}

// layers lists the layers on the Toxiproxy's layer host, by upstream.
func (s *system) layers(t *testing.T) []string {
	t.Helper()
	ls, err := s.tp.Layers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Type+"→"+l.Upstream)
	}
	return out
}

// upstream is where Toxiproxy's proxy sends its connections.
func (s *system) upstream(t *testing.T, proxy string) string {
	t.Helper()
	ps, err := s.tp.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ps[proxy].Upstream
}

// TestCallAndPacketKinds adds a call-level fault and a packet fault
// through the API: the kinds API offers them with their text attributes,
// a grpc-error on the payment link fails the orders until it is removed,
// a nats-drop puts the NATS layer on its link while it is on, a packet
// fault puts a segment on its link, and stopping the console
// leaves no layer, the proxy pointing at its upstream, nothing journaled.
func TestCallAndPacketKinds(t *testing.T) {
	s := start(t, time.Minute)

	code, body := s.call(t, "GET", "/api/kinds", "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/kinds: %d %s", code, body)
	}
	var kinds []struct {
		Kind        string   `json:"kind"`
		Targets     []string `json:"targets"`
		Unavailable string   `json:"unavailable"`
		Note        string   `json:"note"`
		Attrs       []struct {
			Name, Unit, Pattern string
			Values              []string
		} `json:"attrs"`
	}
	if err := json.Unmarshal([]byte(body), &kinds); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		seen[k.Kind] = true
		switch k.Kind {
		case "grpc-error":
			if k.Unavailable != "" || !slices.Contains(k.Targets, "payment") || slices.Contains(k.Targets, "nats-order") {
				t.Errorf("grpc-error: unavailable %q, targets %v; want it offered on the gRPC links", k.Unavailable, k.Targets)
			}
			for _, a := range k.Attrs {
				if a.Name == "code" && (a.Unit != "text" || !slices.Contains(a.Values, "UNAVAILABLE")) {
					t.Errorf("grpc-error code: %+v, want a text attribute with its values", a)
				}
				if a.Name == "method" && a.Pattern == "" {
					t.Errorf("grpc-error method: %+v, want its pattern", a)
				}
			}
		case "nats-drop":
			if k.Unavailable != "" || !slices.Contains(k.Targets, "nats-order") {
				t.Errorf("nats-drop: unavailable %q, targets %v; want it offered on the NATS links", k.Unavailable, k.Targets)
			}
		case "packet-loss":
			if k.Unavailable != "" || !strings.Contains(k.Note, "segment") {
				t.Errorf("packet-loss: unavailable %q, note %q; want it offered, saying it puts a segment on the link", k.Unavailable, k.Note)
			}
		}
	}
	for _, k := range []string{"grpc-error", "nats-drop", "packet-loss"} {
		if !seen[k] {
			t.Errorf("GET /api/kinds lacks %s", k)
		}
	}

	poll(t, 30*time.Second, "an order placed before any fault", func() bool { return s.placeOrder(t) })
	paymentUp, userUp := s.upstream(t, "payment"), s.upstream(t, "user")

	// A call-level fault: every charge answered UNAVAILABLE.
	code, body = s.call(t, "POST", "/api/faults", `{"kind": "grpc-error", "target": "payment", "attrs": {"probability": 1000000}, "text": {"code": "UNAVAILABLE"}}`)
	if code != http.StatusCreated || !strings.Contains(body, "console-grpc-error-payment") {
		t.Fatalf("POST grpc-error: %d %s", code, body)
	}
	if got := s.layers(t); len(got) != 1 {
		t.Errorf("layers with the grpc-error on: %v, want the payment link's gRPC layer", got)
	}
	for i := range 3 {
		if s.placeOrder(t) {
			t.Fatalf("order %d placed with every payment call answered UNAVAILABLE", i)
		}
	}
	if st := s.state(t); len(st.Faults) != 1 || st.Faults[0].Name != "console-grpc-error-payment" {
		t.Errorf("state's faults: %+v, want the grpc-error", st.Faults)
	}
	if code, body := s.call(t, "DELETE", "/api/faults/console-grpc-error-payment", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE grpc-error: %d %s", code, body)
	}
	poll(t, 20*time.Second, "an order placed after the grpc-error was removed", func() bool { return s.placeOrder(t) })
	if got, up := s.layers(t), s.upstream(t, "payment"); len(got) != 0 || up != paymentUp {
		t.Errorf("after removing the grpc-error: layers %v, payment upstream %s (was %s)", got, up, paymentUp)
	}

	// A NATS message fault: the link's NATS layer on while it is on.
	natsUp := s.upstream(t, "nats-order")
	code, body = s.call(t, "POST", "/api/faults", `{"kind": "nats-drop", "target": "nats-order", "text": {"subject": "orders.>"}}`)
	if code != http.StatusCreated || !strings.Contains(body, "console-nats-drop-nats-order") {
		t.Fatalf("POST nats-drop: %d %s", code, body)
	}
	if got := s.layers(t); len(got) != 1 || !strings.HasSuffix(got[0], "→"+natsUp) {
		t.Errorf("layers with the nats-drop on: %v, want the NATS layer in front of %s", got, natsUp)
	}
	if code, body := s.call(t, "DELETE", "/api/faults/console-nats-drop-nats-order", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE nats-drop: %d %s", code, body)
	}
	if got, up := s.layers(t), s.upstream(t, "nats-order"); len(got) != 0 || up != natsUp {
		t.Errorf("after removing the nats-drop: layers %v, nats-order upstream %s (was %s)", got, up, natsUp)
	}

	// A packet fault: a segment on the user link, orders still placed
	// (TCP retransmits the 1% lost).
	code, body = s.call(t, "POST", "/api/faults", `{"kind": "packet-loss", "target": "user", "attrs": {"probability": 10000}}`)
	if code != http.StatusCreated || !strings.Contains(body, "console-packet-loss-user") {
		t.Fatalf("POST packet-loss: %d %s", code, body)
	}
	if got := s.layers(t); len(got) != 1 || !strings.HasSuffix(got[0], "→"+userUp) {
		t.Errorf("layers with the packet fault on: %v, want one segment in front of %s", got, userUp)
	}
	if up := s.upstream(t, "user"); up == userUp {
		t.Errorf("user proxy still sends to %s with a packet fault on", up)
	}
	poll(t, 30*time.Second, "an order placed through the segment", func() bool { return s.placeOrder(t) })
	if st := s.state(t); len(st.Faults) != 1 || st.Faults[0].Name != "console-packet-loss-user" {
		t.Errorf("state's faults: %+v, want the packet-loss", st.Faults)
	}
	if code, body := s.call(t, "DELETE", "/api/faults/console-packet-loss-user", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE packet-loss: %d %s", code, body)
	}
	s.stop()
	if got, up := s.layers(t), s.upstream(t, "user"); len(got) != 0 || up != userUp {
		t.Errorf("after the console stopped: layers %v, user upstream %s (was %s)", got, up, userUp)
	}
	out, err := s.journal.Outstanding()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("journal lists %d outstanding entries after the console stopped: %+v", len(out), out)
	}
}
