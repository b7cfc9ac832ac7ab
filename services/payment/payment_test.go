package payment

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/testenv"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves a payment server on a random loopback port and returns it
// with a client; both are closed at cleanup.
func start(t *testing.T, cfg config.Payment) (*Server, paymentv1.PaymentServiceClient, healthpb.HealthClient) {
	t.Helper()
	srv, err := New(cfg, serve.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := serve.Dial(lis.Addr().String(), serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve after Shutdown = %v, want nil", err)
		}
	})
	return srv, paymentv1.NewPaymentServiceClient(conn), healthpb.NewHealthClient(conn)
}

func charge(order string) *paymentv1.ChargeRequest {
	return &paymentv1.ChargeRequest{OrderId: order, UserId: "u-0001", AmountCents: 1250, IdempotencyKey: "key-" + order, CardNumber: "4111111111111111"}
}

func TestNewRejectsNegativeProcessingTime(t *testing.T) {
	_, err := New(config.Payment{ProcessingTime: -time.Second}, serve.Options{})
	if err == nil || !strings.Contains(err.Error(), "payment.processing_time: -1s") {
		t.Fatalf("New = %v, want error naming the value", err)
	}
}

func TestValidation(t *testing.T) {
	srv, client, health := start(t, config.Payment{})
	ctx := t.Context()
	if r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: paymentv1.PaymentService_ServiceDesc.ServiceName}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", r, err)
	}
	mod := func(f func(r *paymentv1.ChargeRequest)) *paymentv1.ChargeRequest {
		r := charge("o-1")
		f(r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  *paymentv1.ChargeRequest
		msg  string
	}{
		{"empty order", mod(func(r *paymentv1.ChargeRequest) { r.OrderId = "" }), "order_id"},
		{"empty user", mod(func(r *paymentv1.ChargeRequest) { r.UserId = "" }), "user_id"},
		{"empty key", mod(func(r *paymentv1.ChargeRequest) { r.IdempotencyKey = "" }), "idempotency_key"},
		{"zero amount", mod(func(r *paymentv1.ChargeRequest) { r.AmountCents = 0 }), "amount_cents: 0"},
		{"negative amount", mod(func(r *paymentv1.ChargeRequest) { r.AmountCents = -3 }), "amount_cents: -3"},
	} {
		t.Run("Charge/"+tc.name, func(t *testing.T) {
			_, err := client.Charge(ctx, tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("Charge = %v, want InvalidArgument naming %q", err, tc.msg)
			}
		})
	}
	if n := len(srv.Charges()); n != 0 {
		t.Fatalf("invalid charges recorded %d charges", n)
	}
	if _, err := client.Charge(ctx, charge("o-1")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  *paymentv1.ListChargesRequest
		msg  string
	}{
		{"negative size", &paymentv1.ListChargesRequest{PageSize: -1}, "page_size: -1"},
		{"huge size", &paymentv1.ListChargesRequest{PageSize: 10001}, "page_size: 10001"},
		{"garbage token", &paymentv1.ListChargesRequest{PageToken: "abc"}, `page_token: "abc"`},
		{"negative token", &paymentv1.ListChargesRequest{PageToken: "-1"}, `page_token: "-1"`},
		{"token past end", &paymentv1.ListChargesRequest{PageToken: "2"}, `page_token: "2"`},
		{"non-canonical token", &paymentv1.ListChargesRequest{PageToken: "01"}, `page_token: "01"`},
	} {
		t.Run("ListCharges/"+tc.name, func(t *testing.T) {
			_, err := client.ListCharges(ctx, tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("ListCharges = %v, want InvalidArgument naming %q", err, tc.msg)
			}
		})
	}
}

func TestChargeIsIdempotentSequentially(t *testing.T) {
	srv, client, _ := start(t, config.Payment{})
	ctx := t.Context()
	first, err := client.Charge(ctx, charge("o-7"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed || first.Charge.ChargeId != "ch-1" || first.Charge.OrderId != "o-7" || first.Charge.AmountCents != 1250 || first.Charge.CreatedUnixNano == 0 {
		t.Fatalf("first = %v", first)
	}
	for range 3 {
		again, err := client.Charge(ctx, charge("o-7"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || !proto.Equal(again.Charge, first.Charge) {
			t.Fatalf("retry = %v, want replay of %v", again, first.Charge)
		}
	}
	for _, tc := range []struct {
		name string
		f    func(r *paymentv1.ChargeRequest)
	}{
		{"other order", func(r *paymentv1.ChargeRequest) { r.OrderId = "o-8" }},
		{"other amount", func(r *paymentv1.ChargeRequest) { r.AmountCents = 99 }},
		{"other user", func(r *paymentv1.ChargeRequest) { r.UserId = "u-0002" }},
	} {
		req := charge("o-7")
		tc.f(req)
		if _, err := client.Charge(ctx, req); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "key-o-7") {
			t.Errorf("%s: Charge = %v, want FailedPrecondition naming the key", tc.name, err)
		}
	}
	second, err := client.Charge(ctx, charge("o-8"))
	if err != nil || second.Charge.ChargeId != "ch-2" || second.Replayed {
		t.Fatalf("another order = %v, %v; want ch-2", second, err)
	}
	if n := len(srv.Charges()); n != 2 {
		t.Errorf("ledger has %d charges, want 2", n)
	}
	list, err := client.ListCharges(ctx, &paymentv1.ListChargesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if list.Attempts != 8 || len(list.Charges) != 2 {
		t.Errorf("ListCharges attempts %d charges %d, want 8 and 2", list.Attempts, len(list.Charges))
	}
}

func TestConcurrentChargesWithOneKeyChargeOnce(t *testing.T) {
	srv, client, _ := start(t, config.Payment{ProcessingTime: 50 * time.Millisecond})
	ctx := t.Context()
	const n = 20
	resps := make([]*paymentv1.ChargeResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { resps[i], errs[i] = client.Charge(ctx, charge("o-c")) })
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !resps[i].Replayed {
			fresh++
		}
		if !proto.Equal(resps[i].Charge, resps[0].Charge) {
			t.Errorf("call %d got %v, call 0 got %v", i, resps[i].Charge, resps[0].Charge)
		}
	}
	if fresh != 1 {
		t.Errorf("%d calls were not replays, want exactly 1", fresh)
	}
	if got := srv.Charges(); len(got) != 1 {
		t.Errorf("ledger has %d charges, want 1", len(got))
	}
	if srv.Attempts() != n {
		t.Errorf("attempts %d, want %d", srv.Attempts(), n)
	}
}

func TestProcessingTimeRespectsDeadline(t *testing.T) {
	srv, client, _ := start(t, config.Payment{ProcessingTime: 300 * time.Millisecond})
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := client.Charge(short, charge("o-d")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Charge with a short deadline = %v, want DeadlineExceeded", err)
	}
	// The server gives up when the deadline reaches it; nothing is recorded.
	testenv.Eventually(t, 5*time.Second, "the abandoned charge to leave the in-flight set", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.inflight) == 0
	})
	if n := len(srv.Charges()); n != 0 {
		t.Fatalf("an abandoned charge was recorded: %d charges", n)
	}

	// A call that gives up while a concurrent one with the same key waits:
	// the waiter takes over and exactly one charge is recorded.
	var wg sync.WaitGroup
	var errShort, errLong error
	var long *paymentv1.ChargeResponse
	short2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	wg.Go(func() { _, errShort = client.Charge(short2, charge("o-e")) })
	wg.Go(func() { long, errLong = client.Charge(t.Context(), charge("o-e")) })
	wg.Wait()
	if status.Code(errShort) != codes.DeadlineExceeded {
		t.Errorf("short call = %v, want DeadlineExceeded", errShort)
	}
	if errLong != nil || long.Charge.OrderId != "o-e" {
		t.Fatalf("long call = %v, %v", long, errLong)
	}
	if n := len(srv.Charges()); n != 1 {
		t.Errorf("ledger has %d charges, want 1", n)
	}
}

func TestListChargesPages(t *testing.T) {
	_, client, _ := start(t, config.Payment{})
	ctx := t.Context()
	const n = 25
	for i := range n {
		if _, err := client.Charge(ctx, charge(fmt.Sprintf("o-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var got []*paymentv1.Charge
	token, pages := "", 0
	for {
		resp, err := client.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: 10, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, resp.Charges...)
		if resp.Attempts != n {
			t.Errorf("attempts %d, want %d", resp.Attempts, n)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
		if pages > n {
			t.Fatal("paging does not end")
		}
	}
	if pages != 3 || len(got) != n {
		t.Fatalf("%d pages, %d charges; want 3 and %d", pages, len(got), n)
	}
	for i, c := range got {
		if c.ChargeId != fmt.Sprintf("ch-%d", i+1) || c.OrderId != fmt.Sprintf("o-%02d", i) {
			t.Errorf("charge %d = %s for %s", i, c.ChargeId, c.OrderId)
		}
	}
	all, err := client.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: 0})
	if err != nil || len(all.Charges) != n || all.NextPageToken != "" {
		t.Fatalf("page_size 0: %d charges, next %q, %v; want all %d on one page", len(all.GetCharges()), all.GetNextPageToken(), err, n)
	}
}

// TestLedgerWindow shrinks the ledger's window and checks that the charges
// leaving it take their idempotency keys along, charge ids stay unique,
// and the charges held are listed.
func TestLedgerWindow(t *testing.T) {
	srv, client, _ := start(t, config.Payment{})
	srv.mu.Lock()
	srv.ledger = store.NewRecent[chargeRecord](10)
	srv.mu.Unlock()
	ctx := t.Context()
	for i := range 25 {
		if _, err := client.Charge(ctx, charge(fmt.Sprintf("o-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Lock()
	keys, held := len(srv.byKey), len(srv.ledger.Held())
	srv.mu.Unlock()
	if held > 10 || keys != held {
		t.Errorf("%d charges held, %d keys indexed; want at most 10, and as many keys", held, keys)
	}
	resp, err := client.ListCharges(ctx, &paymentv1.ListChargesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	last := resp.Charges[len(resp.Charges)-1]
	if len(resp.Charges) != held || last.ChargeId != "ch-25" || last.OrderId != "o-24" {
		t.Errorf("listed %d charges ending %s for %s; want %d ending ch-25 for o-24", len(resp.Charges), last.ChargeId, last.OrderId, held)
	}
	again, err := client.Charge(ctx, charge("o-24"))
	if err != nil || !again.Replayed || again.Charge.ChargeId != "ch-25" {
		t.Errorf("a key still in the window: %v, %v; want ch-25 replayed", again, err)
	}
	old, err := client.Charge(ctx, charge("o-00"))
	if err != nil || old.Replayed || old.Charge.ChargeId != "ch-26" {
		t.Errorf("a key that left the window: %v, %v; want a new charge ch-26", old, err)
	}
}

// TestChargeCompact checks that the ledger's compact form of a charge gives
// back every field of the message it was made from.
func TestChargeCompact(t *testing.T) {
	c := &paymentv1.Charge{ChargeId: "ch-1", OrderId: "o-1", UserId: "u-1", AmountCents: 5, IdempotencyKey: "k-1", CreatedUnixNano: 7}
	if got := compact(c).message(); !proto.Equal(got, c) {
		t.Errorf("compact(%v).message() = %v", c, got)
	}
}
