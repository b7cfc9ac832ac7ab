// Package badinput_test sends malformed and out-of-range requests to every
// method of every service of the embedded topology and checks that each is
// answered with the right status and a message naming the field, never a
// panic, and that the system still works afterwards.
package badinput_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/internal/testenv"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const card = "4111 1111 1111 1111"

var (
	long = strings.Repeat("x", 1000)      // longer than any id may be
	huge = strings.Repeat("y", 2<<20)     // 2 MiB: under gRPC's 4 MiB message limit
	ctrl = "order-1\r\nNats-Msg-Id: evil" // would forge a NATS header
)

// system is the embedded topology with one client per service.
type system struct {
	ep           topology.Endpoints
	order        orderv1.OrderServiceClient
	user         userv1.UserServiceClient
	payment      paymentv1.PaymentServiceClient
	notification consumerv1.ConsumerServiceClient
	ledger       consumerv1.ConsumerServiceClient
}

func start(t *testing.T) *system {
	t.Helper()
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		topo.Stop(ctx)
	})
	ep := topo.Endpoints()
	dial := func(name string) *grpc.ClientConn {
		conn, err := serve.Dial(ep.Services[name], serve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	return &system{
		ep:           ep,
		order:        orderv1.NewOrderServiceClient(dial("order")),
		user:         userv1.NewUserServiceClient(dial("user")),
		payment:      paymentv1.NewPaymentServiceClient(dial("payment")),
		notification: consumerv1.NewConsumerServiceClient(dial("notification")),
		ledger:       consumerv1.NewConsumerServiceClient(dial("ledger")),
	}
}

// TestBadInputEveryMethod calls every gRPC method with malformed input.
func TestBadInputEveryMethod(t *testing.T) {
	s := start(t)
	place := func(id, user string, amount int64, card string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: id, UserId: user, AmountCents: amount, CardNumber: card})
			return err
		}
	}
	getOrder := func(id string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.order.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: id})
			return err
		}
	}
	getUser := func(id string, view userv1.View) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.user.GetUser(ctx, &userv1.GetUserRequest{UserId: id, View: view})
			return err
		}
	}
	charge := func(order, user string, amount int64, key, card string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.payment.Charge(ctx, &paymentv1.ChargeRequest{OrderId: order, UserId: user, AmountCents: amount, IdempotencyKey: key, CardNumber: card})
			return err
		}
	}
	listCharges := func(size int32, token string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.payment.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: size, PageToken: token})
			return err
		}
	}
	type consumerCase struct {
		name string
		c    consumerv1.ConsumerServiceClient
	}
	tests := []struct {
		name  string
		call  func(context.Context) error
		code  codes.Code
		field string // the message names it
	}{
		{"PlaceOrder empty order_id", place("", "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder long order_id", place(long, "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder huge order_id", place(huge, "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder order_id with a line break", place(ctrl, "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder order_id with a NATS wildcard", place("order.*", "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder order_id with a space", place("order 1", "u-0001", 100, card), codes.InvalidArgument, "order_id"},
		{"PlaceOrder empty user_id", place("bad-1", "", 100, card), codes.InvalidArgument, "user_id"},
		{"PlaceOrder long user_id", place("bad-2", long, 100, card), codes.InvalidArgument, "user_id"},
		{"PlaceOrder unknown user", place("bad-3", "u-9999", 100, card), codes.NotFound, "user_id"},
		{"PlaceOrder zero amount", place("bad-4", "u-0001", 0, card), codes.InvalidArgument, "amount_cents"},
		{"PlaceOrder negative amount", place("bad-5", "u-0001", -100, card), codes.InvalidArgument, "amount_cents"},
		{"PlaceOrder huge amount", place("bad-6", "u-0001", 1<<62, card), codes.InvalidArgument, "amount_cents"},
		{"PlaceOrder amount over the balance", place("bad-7", "u-0001", 100_000_000_000, card), codes.FailedPrecondition, "balance"},
		{"PlaceOrder long card_number", place("bad-8", "u-0001", 100, long), codes.InvalidArgument, "card_number"},
		{"PlaceOrder card_number of letters", place("bad-9", "u-0001", 100, "abcd efgh ijkl mnop"), codes.InvalidArgument, "card_number: byte 0 is 'a': a card number is digits"},
		{"PlaceOrder card_number failing Luhn", place("bad-10", "u-0001", 100, "4111 1111 1111 1112"), codes.InvalidArgument, "card_number: the Luhn check digit is wrong"},
		{"PlaceOrder card_number too short", place("bad-11", "u-0001", 100, "4111"), codes.InvalidArgument, "card_number: 4 digits, need 12 to 19"},
		{"PlaceOrder order_id with a non-ASCII letter", place("caf\u00e9", "u-0001", 100, card), codes.InvalidArgument, "order_id \"café\": byte 3 is 'é' U+00E9"},
		{"PlaceOrder order_id with U+FFFD", place("o-\ufffd", "u-0001", 100, card), codes.InvalidArgument, "byte 2 is '�' U+FFFD"},

		{"GetOrder empty order_id", getOrder(""), codes.InvalidArgument, "order_id"},
		{"GetOrder long order_id", getOrder(long), codes.InvalidArgument, "order_id"},
		{"GetOrder unknown order", getOrder("never-placed"), codes.NotFound, "never-placed"},

		{"GetUser empty user_id", getUser("", userv1.View_VIEW_FULL), codes.InvalidArgument, "user_id"},
		{"GetUser long user_id", getUser(long, userv1.View_VIEW_FULL), codes.InvalidArgument, "user_id"},
		{"GetUser huge user_id", getUser(huge, userv1.View_VIEW_FULL), codes.InvalidArgument, "user_id"},
		{"GetUser unknown user", getUser("u-9999", userv1.View_VIEW_FULL), codes.NotFound, "user_id"},
		{"GetUser non-canonical id", getUser("u-01", userv1.View_VIEW_FULL), codes.NotFound, "user_id"},
		{"GetUser path-like id", getUser("../u-0001", userv1.View_VIEW_FULL), codes.NotFound, "user_id"},
		{"GetUser view out of range", getUser("u-0001", userv1.View(99)), codes.InvalidArgument, "view"},
		{"GetUser negative view", getUser("u-0001", userv1.View(-1)), codes.InvalidArgument, "view"},

		{"Charge empty order_id", charge("", "u-0001", 100, "k1", card), codes.InvalidArgument, "order_id"},
		{"Charge empty user_id", charge("o1", "", 100, "k1", card), codes.InvalidArgument, "user_id"},
		{"Charge empty idempotency_key", charge("o1", "u-0001", 100, "", card), codes.InvalidArgument, "idempotency_key"},
		{"Charge zero amount", charge("o1", "u-0001", 0, "k1", card), codes.InvalidArgument, "amount_cents"},
		{"Charge negative amount", charge("o1", "u-0001", -1, "k1", card), codes.InvalidArgument, "amount_cents"},
		{"Charge huge amount", charge("o1", "u-0001", 1<<62, "k1", card), codes.InvalidArgument, "amount_cents"},
		{"Charge long order_id", charge(long, "u-0001", 100, "k1", card), codes.InvalidArgument, "order_id"},
		{"Charge long user_id", charge("o1", long, 100, "k1", card), codes.InvalidArgument, "user_id"},
		{"Charge huge idempotency_key", charge("o1", "u-0001", 100, huge, card), codes.InvalidArgument, "idempotency_key"},
		{"Charge long card_number", charge("o1", "u-0001", 100, "k1", long), codes.InvalidArgument, "card_number"},
		{"Charge card_number of letters", charge("o1", "u-0001", 100, "k1", "four one one one"), codes.InvalidArgument, "card_number: byte 0 is 'f'"},
		{"Charge card_number failing Luhn", charge("o1", "u-0001", 100, "k1", "4111111111111112"), codes.InvalidArgument, "card_number: the Luhn check digit is wrong"},

		{"ListCharges negative page_size", listCharges(-1, ""), codes.InvalidArgument, "page_size"},
		{"ListCharges page_size too large", listCharges(10_001, ""), codes.InvalidArgument, "page_size"},
		{"ListCharges page_token not a number", listCharges(0, "abc"), codes.InvalidArgument, "page_token"},
		{"ListCharges negative page_token", listCharges(0, "-1"), codes.InvalidArgument, "page_token"},
		{"ListCharges page_token past the end", listCharges(0, "1000000"), codes.InvalidArgument, "page_token"},
		{"ListCharges page_token overflowing", listCharges(0, "99999999999999999999999"), codes.InvalidArgument, "page_token"},
		{"ListCharges padded page_token", listCharges(0, "00"), codes.InvalidArgument, "page_token"},
		{"ListCharges huge page_token", listCharges(0, huge), codes.InvalidArgument, "page_token"},
	}
	for _, cc := range []consumerCase{{"notification", s.notification}, {"ledger", s.ledger}} {
		list := func(size int32, token string) func(context.Context) error {
			return func(ctx context.Context) error {
				_, err := cc.c.ListApplied(ctx, &consumerv1.ListAppliedRequest{PageSize: size, PageToken: token})
				return err
			}
		}
		tests = append(tests, []struct {
			name  string
			call  func(context.Context) error
			code  codes.Code
			field string
		}{
			{cc.name + " ListApplied negative page_size", list(-5, ""), codes.InvalidArgument, "page_size"},
			{cc.name + " ListApplied page_size too large", list(1<<30, ""), codes.InvalidArgument, "page_size"},
			{cc.name + " ListApplied page_token not a number", list(0, "next"), codes.InvalidArgument, "page_token"},
			{cc.name + " ListApplied page_token past the end", list(0, "5"), codes.InvalidArgument, "page_token"},
			{cc.name + " ListApplied huge page_token", list(0, huge), codes.InvalidArgument, "page_token"},
		}...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := tt.call(ctx)
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code %v (%s), want %v", st.Code(), clip(st.Message()), tt.code)
			}
			if !strings.Contains(st.Message(), tt.field) {
				t.Errorf("message %q does not name %s", clip(st.Message()), tt.field)
			}
			if len(st.Message()) > 512 {
				t.Errorf("message is %d bytes: it should not echo the input back", len(st.Message()))
			}
		})
	}

	// The methods without input, and the system after all of that: it
	// still places an order end to end, and nothing bad was recorded.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.order.GetStats(ctx, &orderv1.GetStatsRequest{}); err != nil {
		t.Errorf("order GetStats: %v", err)
	}
	if err := place("good-1", "u-0001", 100, card)(ctx); err != nil {
		t.Fatalf("a good order after the bad ones: %v", err)
	}
	charges, err := s.payment.ListCharges(ctx, &paymentv1.ListChargesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(charges.GetCharges()); n != 1 || charges.GetCharges()[0].GetOrderId() != "good-1" {
		t.Errorf("ledger = %v, want only good-1's charge", charges.GetCharges())
	}
	for name, c := range map[string]consumerv1.ConsumerServiceClient{"notification": s.notification, "ledger": s.ledger} {
		testenv.EventuallyNil(t, 10*time.Second, name+" to apply good-1's event", func() error {
			st, err := c.GetStats(ctx, &consumerv1.GetStatsRequest{})
			switch {
			case err != nil:
				return testenv.GiveUp(fmt.Errorf("%s GetStats: %w", name, err))
			case st.GetApplied() > 1:
				return testenv.GiveUp(fmt.Errorf("%s applied %d events, want exactly good-1's", name, st.GetApplied()))
			case st.GetApplied() == 0:
				return testenv.ErrNotYet
			}
			return nil
		})
	}
}

// TestBadInputUserHTTP sends malformed requests to user's JSON endpoint.
func TestBadInputUserHTTP(t *testing.T) {
	s := start(t)
	base := "http://" + s.ep.UserHTTP
	client := &http.Client{
		Timeout: 5 * time.Second,
		// A redirect is an answer too: look at it rather than follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tests := []struct {
		name  string
		path  string
		code  int
		field string // the JSON error names it; "" for a redirect
	}{
		{"good", "/users/u-0001?view=basic", http.StatusOK, ""},
		{"bad view", "/users/u-0001?view=everything", http.StatusBadRequest, "view"},
		{"view with a huge value", "/users/u-0001?view=" + strings.Repeat("z", 4000), http.StatusBadRequest, "view"},
		{"unknown id", "/users/u-9999", http.StatusNotFound, "user_id"},
		{"non-canonical id", "/users/u-1", http.StatusNotFound, "user_id"},
		{"long id", "/users/" + long, http.StatusBadRequest, "user_id"},
		{"encoded traversal", "/users/%2e%2e%2fetc%2fpasswd", http.StatusNotFound, "user_id"},
		{"encoded slash inside the id", "/users/u-0001%2F..%2Fu-0002", http.StatusNotFound, "user_id"},
		{"NUL in the id", "/users/u-0001%00", http.StatusNotFound, "user_id"},
		{"invalid UTF-8 in the id", "/users/u-%FF01", http.StatusBadRequest, "user_id: byte 2 is 0xff, not valid UTF-8"},
		{"no id", "/users/", http.StatusNotFound, "no route"},
		{"nested path", "/users/u-0001/secrets", http.StatusNotFound, "no route"},
		{"wrong method", "/users/u-0001", http.StatusNotFound, "no route for DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.name == "wrong method" {
				method = http.MethodDelete
			}
			req, err := http.NewRequestWithContext(t.Context(), method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, clip(string(body)), tt.code)
			}
			if tt.field == "" {
				return
			}
			if tt.code == http.StatusOK {
				return
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", clip(string(body)), err)
			}
			if !strings.Contains(e.Error, tt.field) {
				t.Errorf("error %q does not name %s", clip(e.Error), tt.field)
			}
		})
	}
	// Traversal that the router resolves itself is redirected to the clean
	// path: nothing is served from a path with dot segments.
	resp, err := client.Get(base + "/users/../healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/healthz" {
		t.Errorf("/users/../healthz: status %d, location %q: want a redirect to /healthz", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestBadInputUserHTTPCrossSite: user's JSON face refuses what a web page
// could send (another Origin, a rebound host name) with 403 and answers
// curl as before.
func TestBadInputUserHTTPCrossSite(t *testing.T) {
	s := start(t)
	_, port, _ := strings.Cut(s.ep.UserHTTP, ":")
	for _, tt := range []struct {
		name, host, origin string
		want               int
	}{
		{"curl", "", "", http.StatusOK},
		{"curl by localhost", "localhost:" + port, "", http.StatusOK},
		{"a web page elsewhere", "", "http://evil.example", http.StatusForbidden},
		{"DNS rebinding", "evil.example:" + port, "", http.StatusForbidden},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.ep.UserHTTP+"/users/u-0001?view=basic", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, resp.StatusCode, clip(string(body)), tt.want)
		}
		if tt.want == http.StatusForbidden && strings.Contains(string(body), "u-0001") {
			t.Errorf("%s: a refused request got the profile: %s", tt.name, clip(string(body)))
		}
	}
}

// TestBadInputReusedOrderID re-sends a placed order's id with another user
// or amount: the answer is ALREADY_EXISTS naming both, never the first
// order passed off as this one; the same request again is the first order.
func TestBadInputReusedOrderID(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	first, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: "reused-1", UserId: "u-0001", AmountCents: 1999, CardNumber: card})
	if err != nil {
		t.Fatalf("first PlaceOrder: %v", err)
	}
	for _, tt := range []struct {
		name   string
		user   string
		amount int64
		want   string
	}{
		{"another user", "u-0002", 1999, `order_id "reused-1" was placed for user "u-0001" amount 1999; this request is for user "u-0002" amount 1999`},
		{"another amount", "u-0001", 5, `order_id "reused-1" was placed for user "u-0001" amount 1999; this request is for user "u-0001" amount 5`},
	} {
		_, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: "reused-1", UserId: tt.user, AmountCents: tt.amount, CardNumber: card})
		if st := status.Convert(err); st.Code() != codes.AlreadyExists || st.Message() != tt.want {
			t.Errorf("%s: %v, want ALREADY_EXISTS %q", tt.name, err, tt.want)
		}
	}
	again, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: "reused-1", UserId: "u-0001", AmountCents: 1999, CardNumber: card})
	if err != nil || again.GetOrder().GetChargeId() != first.GetOrder().GetChargeId() {
		t.Errorf("the same request again: %v, %v; want the first order %v", again, err, first)
	}
	charges, err := s.payment.ListCharges(ctx, &paymentv1.ListChargesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(charges.GetCharges()); n != 1 {
		t.Errorf("%d charges, want the first order's only: %v", n, charges.GetCharges())
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
