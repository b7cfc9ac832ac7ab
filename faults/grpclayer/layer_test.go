package grpclayer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults/grpclayer"
	"github.com/fallacies/fallacies/internal/testenv"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/payment"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const charge = "payment.v1.PaymentService/Charge"

// setup serves a real payment server, a layer in front of it with rules,
// and returns the server, the layer and a client of the layer.
func setup(t testing.TB, rules ...grpclayer.Rule) (*payment.Server, *grpclayer.Layer, paymentv1.PaymentServiceClient) {
	t.Helper()
	srv, err := payment.New(config.Payment{}, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	layer, err := grpclayer.Listen("127.0.0.1", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+layer.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		if err := layer.Close(); err != nil {
			t.Errorf("layer Close: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return srv, layer, paymentv1.NewPaymentServiceClient(conn)
}

func req(order string) *paymentv1.ChargeRequest {
	return &paymentv1.ChargeRequest{OrderId: order, UserId: "u-1", AmountCents: 100, IdempotencyKey: order}
}

func TestRelayWithoutRules(t *testing.T) {
	srv, layer, c := setup(t)
	ctx := context.Background()
	resp, err := c.Charge(ctx, req("o-1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCharge().GetOrderId() != "o-1" || resp.GetCharge().GetAmountCents() != 100 {
		t.Fatalf("charge through the layer = %v", resp)
	}
	again, err := c.Charge(ctx, req("o-1"))
	if err != nil || !again.GetReplayed() {
		t.Fatalf("second charge: replayed=%v err=%v, want a replay", again.GetReplayed(), err)
	}
	list, err := c.ListCharges(ctx, &paymentv1.ListChargesRequest{})
	if err != nil || len(list.GetCharges()) != 1 || list.GetAttempts() != 2 {
		t.Fatalf("ListCharges = %v, %v; want 1 charge of 2 attempts", list, err)
	}
	// A server error status comes through with its code and message.
	_, err = c.Charge(ctx, &paymentv1.ChargeRequest{OrderId: "o-2"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "user_id") {
		t.Fatalf("invalid charge through the layer: %v, want InvalidArgument about the user id", err)
	}
	if srv.Attempts() != 3 || len(layer.Counters()) != 0 {
		t.Fatalf("server attempts %d, counters %v", srv.Attempts(), layer.Counters())
	}
}

// TestMetadataAndDeadline checks the call's metadata and deadline reach the
// real server behind the layer.
func TestMetadataAndDeadline(t *testing.T) {
	got := make(chan metadata.MD, 1)
	deadline := make(chan time.Duration, 1)
	gs := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, s grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(s.Context())
		got <- md
		d, _ := s.Context().Deadline()
		deadline <- time.Until(d)
		return status.Error(codes.NotFound, "nothing here: 100%")
	}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.Stop()
	layer, err := grpclayer.Listen("127.0.0.1", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	conn, err := grpc.NewClient("passthrough:///"+layer.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-order", "o-7", "trace-bin", string([]byte{0, 1, 2, 255}))
	_, err = paymentv1.NewPaymentServiceClient(conn).Charge(ctx, req("o-7"))
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "nothing here: 100%" {
		t.Fatalf("status through the layer: %v", err)
	}
	md := <-got
	if v := md.Get("x-order"); len(v) != 1 || v[0] != "o-7" {
		t.Errorf("x-order at the server = %v", v)
	}
	if v := md.Get("trace-bin"); len(v) != 1 || v[0] != string([]byte{0, 1, 2, 255}) {
		t.Errorf("trace-bin at the server = %q", v)
	}
	if d := <-deadline; d <= 0 || d > 30*time.Second {
		t.Errorf("deadline at the server %v from now, want the client's 30s deadline", d)
	}
}

func TestErrorProbability(t *testing.T) {
	srv, layer, c := setup(t, grpclayer.Rule{Name: "unavailable", Kind: grpclayer.Error, Method: charge,
		Probability: 0.3, Code: codes.Unavailable, Message: "injected"})
	const n = 1000
	failed := 0
	for i := range n {
		_, err := c.Charge(context.Background(), req(fmt.Sprintf("o-%d", i)))
		switch {
		case err == nil:
		case status.Code(err) == codes.Unavailable && status.Convert(err).Message() == "injected":
			failed++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	got := layer.Counters()["unavailable"]
	if got.Calls != n || got.Faulted != int64(failed) {
		t.Fatalf("counters %+v, want calls %d faulted %d", got, n, failed)
	}
	// The faulted calls never reached the server; the others all did.
	if srv.Attempts() != int64(n-failed) {
		t.Fatalf("server saw %d calls, want %d", srv.Attempts(), n-failed)
	}
	// 30% of 1000: the binomial's standard deviation is 14.5; six of them.
	if failed < 213 || failed > 387 {
		t.Fatalf("%d of %d faulted, want about 300", failed, n)
	}
	// ListCharges is another method: not counted, not faulted.
	for range 20 {
		if _, err := c.ListCharges(context.Background(), &paymentv1.ListChargesRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if layer.Counters()["unavailable"].Calls != n {
		t.Fatal("a call of another method was counted")
	}
}

// TestErrorAttempts retries every request until it succeeds: with attempts
// 2 each needs exactly 3 attempts, and the server sees exactly one.
func TestErrorAttempts(t *testing.T) {
	srv, layer, c := setup(t, grpclayer.Rule{Name: "first-two", Kind: grpclayer.Error, Method: "/" + charge,
		Code: codes.Unavailable, Attempts: 2})
	const orders = 200
	var wg sync.WaitGroup
	tries := make([]int, orders)
	for i := range orders {
		wg.Go(func() {
			for tries[i] < 10 {
				tries[i]++
				if _, err := c.Charge(context.Background(), req(fmt.Sprintf("o-%d", i))); err == nil {
					return
				} else if status.Code(err) != codes.Unavailable {
					t.Errorf("order %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, n := range tries {
		if n != 3 {
			t.Fatalf("order %d took %d attempts, want exactly 3", i, n)
		}
	}
	if srv.Attempts() != orders {
		t.Fatalf("server saw %d calls, want %d", srv.Attempts(), orders)
	}
	if got := layer.Counters()["first-two"]; got.Calls != 3*orders || got.Faulted != 2*orders {
		t.Fatalf("counters %+v", got)
	}
}

func TestDelay(t *testing.T) {
	_, layer, c := setup(t, grpclayer.Rule{Name: "slow", Kind: grpclayer.Delay, Method: charge,
		Latency: 60 * time.Millisecond, Jitter: 20 * time.Millisecond})
	for i := range 10 {
		start := time.Now()
		if _, err := c.Charge(context.Background(), req(fmt.Sprintf("o-%d", i))); err != nil {
			t.Fatal(err)
		}
		// The hold is at least latency - jitter; a loaded machine only adds.
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Fatalf("call %d took %v, want at least 40ms", i, d)
		}
	}
	// A deadline shorter than the hold ends the call, as without the layer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := c.Charge(ctx, req("late")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call with a 5ms deadline: %v", err)
	}
	// The late call counts if the layer read it before its deadline ran
	// out, which a loaded machine may not let it do in 5 ms.
	if got := layer.Counters()["slow"]; got.Calls < 10 || got.Calls > 11 || got.Faulted != got.Calls {
		t.Fatalf("counters %+v, want 10 or 11 calls, all held", got)
	}
}

// TestDropResponse: the server charges, the client only sees its deadline
// run out; the retry with the same key is a replay.
func TestDropResponse(t *testing.T) {
	srv, layer, c := setup(t, grpclayer.Rule{Name: "lost", Kind: grpclayer.DropResponse, Method: charge, Attempts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Charge(ctx, req("o-1")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("dropped call: %v, want DeadlineExceeded", err)
	}
	if ch := srv.Charges(); len(ch) != 1 || ch[0].GetOrderId() != "o-1" {
		t.Fatalf("server ledger %v, want the charge of o-1: the server executed the call", ch)
	}
	resp, err := c.Charge(context.Background(), req("o-1"))
	if err != nil || !resp.GetReplayed() {
		t.Fatalf("retry: %v, %v; want the replayed first charge", resp, err)
	}
	if got := layer.Counters()["lost"]; got.Calls != 2 || got.Faulted != 1 {
		t.Fatalf("counters %+v", got)
	}
}

// TestAbort: the stream is reset mid-response while another call on the
// same connection goes through.
func TestAbort(t *testing.T) {
	srv, layer, c := setup(t, grpclayer.Rule{Name: "reset", Kind: grpclayer.Abort, Method: charge})
	_, err := c.Charge(context.Background(), req("o-1"))
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "RST_STREAM") {
		t.Fatalf("aborted call: %v, want Internal from RST_STREAM", err)
	}
	if len(srv.Charges()) != 1 {
		t.Fatal("the server did not execute the aborted call")
	}
	if _, err := c.ListCharges(context.Background(), &paymentv1.ListChargesRequest{}); err != nil {
		t.Fatalf("a call on the same connection after the reset: %v", err)
	}
	if got := layer.Counters()["reset"]; got.Calls != 1 || got.Faulted != 1 {
		t.Fatalf("counters %+v", got)
	}
}

// TestAbortOnAConnectionAlreadyOpen: a grpc-abort rule set while a
// client's connection is open acts on that connection's next call, and
// the connection's other calls go on; with the rule off, calls pass.
func TestAbortOnAConnectionAlreadyOpen(t *testing.T) {
	srv, layer, c := setup(t)
	if _, err := c.Charge(context.Background(), req("o-before")); err != nil {
		t.Fatal(err)
	}
	if err := layer.SetRules([]grpclayer.Rule{{Name: "reset", Kind: grpclayer.Abort, Method: charge}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	testenv.EventuallyNil(t, 10*time.Second, "a Charge reset by the layer", func() error {
		n++
		_, err := c.Charge(context.Background(), req(fmt.Sprintf("o-%d", n)))
		if status.Code(err) == codes.Internal && strings.Contains(err.Error(), "RST_STREAM") {
			return nil
		}
		return fmt.Errorf("Charge: %v", err)
	})
	if n != 1 {
		t.Fatalf("the rule reset call %d after it was set, want the first", n)
	}
	if _, err := c.ListCharges(context.Background(), &paymentv1.ListChargesRequest{}); err != nil {
		t.Fatalf("a call on the same connection after the reset: %v", err)
	}
	if got := layer.Counters()["reset"]; got.Faulted != 1 {
		t.Fatalf("counters %+v: one call aborted", got)
	}
	if len(srv.Charges()) != n+1 {
		t.Fatalf("%d charges, want %d: every call reached the server", len(srv.Charges()), n+1)
	}
	// With the rule off, calls pass again.
	if err := layer.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Charge(context.Background(), req("o-after")); err != nil {
		t.Fatal(err)
	}
}

// TestUnmatchedMethodsPassUnlooked: a rule on one method leaves the
// others' calls, unary and not, as the server answers them, uncounted.
func TestUnmatchedMethodsPassUnlooked(t *testing.T) {
	_, layer, c := setup(t, grpclayer.Rule{Name: "down", Kind: grpclayer.Error, Method: "payment.v1.PaymentService/ListCharges", Code: codes.Unavailable})
	if _, err := c.Charge(context.Background(), req("o-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListCharges(context.Background(), &paymentv1.ListChargesRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("ListCharges under the rule: %v", err)
	}
	if got := layer.Counters()["down"]; got.Calls != 1 || got.Faulted != 1 {
		t.Fatalf("counters %+v: only ListCharges counted", got)
	}
}

// TestCloseEndsHeldCalls: closing the layer ends a call whose response it
// was holding back.
func TestCloseEndsHeldCalls(t *testing.T) {
	_, layer, c := setup(t, grpclayer.Rule{Name: "lost", Kind: grpclayer.DropResponse})
	done := make(chan error, 1)
	go func() {
		_, err := c.Charge(context.Background(), req("o-1"))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for layer.Counters()["lost"].Faulted == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	layer.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a dropped call succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held call outlived the layer")
	}
}

func TestRuleCheck(t *testing.T) {
	for _, r := range []grpclayer.Rule{
		{Name: "a", Kind: "grpc-nope"},
		{Name: "b", Kind: grpclayer.Error},
		{Name: "c", Kind: grpclayer.Error, Code: codes.Unavailable, Probability: 1.5},
		{Name: "d", Kind: grpclayer.Delay, Latency: -1},
		{Name: "e", Kind: grpclayer.Delay, Method: "Charge"},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
	l, err := grpclayer.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ok := grpclayer.Rule{Name: "ok", Kind: grpclayer.Delay}
	if err := l.SetRules([]grpclayer.Rule{ok, {Name: "bad", Kind: "x"}}); err == nil || len(l.Counters()) != 0 {
		t.Fatalf("a wrong rule among good ones: %v, rules %v", err, l.Counters())
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
