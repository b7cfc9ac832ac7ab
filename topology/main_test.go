package topology_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
	"github.com/fallacies/fallacies/topology"
)

// binDir holds the fallacies binary the processes tests run; TestMain
// removes it after the tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fallacies-topology-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(3)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// fallaciesBinary builds cmd/fallacies once per test binary into binDir,
// the first time a test needs it (the -short run never does).
func fallaciesBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(binDir, "fallacies")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/fallacies/fallacies/cmd/fallacies")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/fallacies: %w\n%s", err, out)
			return
		}
		buildBin = bin
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// stopTimeout bounds a topology Stop in tests.
const stopTimeout = 15 * time.Second

// system returns config.Default() with the knobs set, failing the test on
// a bad knob.
func system(tb testing.TB, knobs ...string) config.System {
	tb.Helper()
	if len(knobs)%2 != 0 {
		tb.Fatalf("knobs come in name, value pairs: %q", knobs)
	}
	sys := config.Default()
	for i := 0; i < len(knobs); i += 2 {
		if err := config.Set(&sys, knobs[i], knobs[i+1]); err != nil {
			tb.Fatalf("set knob %s=%s: %v", knobs[i], knobs[i+1], err)
		}
	}
	if err := sys.Validate(); err != nil {
		tb.Fatalf("system: %v", err)
	}
	return sys
}

// startEmbedded starts the embedded topology for one test and stops it at
// the end of the test, failing the test when Stop fails.
func startEmbedded(t *testing.T, sys config.System) *topology.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	top, err := topology.StartEmbedded(ctx, topology.Options{System: sys})
	if err != nil {
		t.Fatalf("start embedded topology: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := top.Stop(ctx); err != nil {
			t.Errorf("stop embedded topology: %v", err)
		}
	})
	return top
}

// clients are gRPC clients of the services of one running topology.
type clients struct {
	order        orderv1.OrderServiceClient
	payment      paymentv1.PaymentServiceClient
	notification consumerv1.ConsumerServiceClient
	ledger       consumerv1.ConsumerServiceClient
}

// dialAll dials order, payment, notification and ledger directly (not
// through a proxy); the connections close at the end of the test.
func dialAll(t *testing.T, ep topology.Endpoints) clients {
	t.Helper()
	return clients{
		order:        orderv1.NewOrderServiceClient(dial(t, ep, "order")),
		payment:      paymentv1.NewPaymentServiceClient(dial(t, ep, "payment")),
		notification: consumerv1.NewConsumerServiceClient(dial(t, ep, "notification")),
		ledger:       consumerv1.NewConsumerServiceClient(dial(t, ep, "ledger")),
	}
}

func dial(t *testing.T, ep topology.Endpoints, service string) *grpc.ClientConn {
	t.Helper()
	addr := ep.Services[service]
	if addr == "" {
		t.Fatalf("endpoints name no address for %s: %+v", service, ep.Services)
	}
	conn, err := serve.Dial(addr, serve.Options{})
	if err != nil {
		t.Fatalf("dial %s at %s: %v", service, addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// orderIDs returns n order ids unique to this test.
func orderIDs(t *testing.T, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = orderID(t, prefix, i)
	}
	return ids
}

// orderID is the i-th order id of the test with the prefix, made of the
// bytes order accepts in an id (letters, digits, '-', '_', '.').
func orderID(t *testing.T, prefix string, i int) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("%s-%s-%04d", name, prefix, i)
}

// placeOrder places one order for a seeded user with its own deadline.
func placeOrder(ctx context.Context, c orderv1.OrderServiceClient, id string, timeout time.Duration) (*orderv1.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{
		OrderId: id, UserId: user.UserID(1), AmountCents: 1999, CardNumber: "4111 1111 1111 1111",
	})
	if err != nil {
		return nil, err
	}
	return resp.GetOrder(), nil
}

// mustPlace places every order and fails the test on the first that does
// not come back PLACED.
func mustPlace(t *testing.T, c orderv1.OrderServiceClient, ids []string) {
	t.Helper()
	for _, id := range ids {
		o, err := placeOrder(t.Context(), c, id, 5*time.Second)
		if err != nil {
			t.Fatalf("PlaceOrder %s: %v", id, err)
		}
		if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_PLACED || o.GetOrderId() != id || o.GetChargeId() == "" {
			t.Fatalf("PlaceOrder %s: got %v, want status PLACED with a charge id", id, o)
		}
	}
}

// listCharges reads payment's whole ledger of charges, page by page.
func listCharges(t *testing.T, c paymentv1.PaymentServiceClient) []*paymentv1.Charge {
	t.Helper()
	var out []*paymentv1.Charge
	token := ""
	for range 1000 {
		resp, err := c.ListCharges(t.Context(), &paymentv1.ListChargesRequest{PageSize: 50, PageToken: token})
		if err != nil {
			t.Fatalf("ListCharges: %v", err)
		}
		out = append(out, resp.GetCharges()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
	t.Fatal("ListCharges: more than 1000 pages")
	return nil
}

// listApplied reads every application of a consumer, page by page.
func listApplied(t *testing.T, c consumerv1.ConsumerServiceClient) []*consumerv1.Application {
	t.Helper()
	var out []*consumerv1.Application
	token := ""
	for range 1000 {
		resp, err := c.ListApplied(t.Context(), &consumerv1.ListAppliedRequest{PageSize: 50, PageToken: token})
		if err != nil {
			t.Fatalf("ListApplied: %v", err)
		}
		out = append(out, resp.GetApplications()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
	t.Fatal("ListApplied: more than 1000 pages")
	return nil
}

// waitApplied polls a consumer until it has applied at least want events.
func waitApplied(t *testing.T, name string, c consumerv1.ConsumerServiceClient, want int64, timeout time.Duration) {
	t.Helper()
	testenv.EventuallyNil(t, timeout, name+" to apply the events", func() error {
		st, err := c.GetStats(t.Context(), &consumerv1.GetStatsRequest{})
		if err != nil {
			return fmt.Errorf("%s GetStats: %w", name, err)
		}
		if st.GetApplied() < want {
			return fmt.Errorf("%s applied %d of %d events", name, st.GetApplied(), want)
		}
		return nil
	})
}

// assertExactlyOnce checks that the ids appear in got exactly once each
// and that nothing else appears.
func assertExactlyOnce(t *testing.T, what string, got []string, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	var missing, dup, extra []string
	for _, id := range want {
		switch count[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dup = append(dup, fmt.Sprintf("%s×%d", id, count[id]))
		}
	}
	for id := range count {
		if !slices.Contains(want, id) {
			extra = append(extra, id)
		}
	}
	if len(got) != len(want) || len(missing)+len(dup)+len(extra) > 0 {
		t.Errorf("%s: %d records for %d orders; missing %v, duplicated %v, unexpected %v", what, len(got), len(want), missing, dup, extra)
	}
}

// assertAllAccounted asserts what an acknowledged batch of orders must
// leave behind: one charge per order, and exactly one application of its
// event in notification and in ledger, with no duplicates.
func assertAllAccounted(t *testing.T, cl clients, ids []string) {
	t.Helper()
	charges := listCharges(t, cl.payment)
	chargedIDs := make([]string, len(charges))
	for i, c := range charges {
		chargedIDs[i] = c.GetOrderId()
	}
	assertExactlyOnce(t, "payment charges", chargedIDs, ids)

	for _, c := range []struct {
		name   string
		client consumerv1.ConsumerServiceClient
	}{{"notification", cl.notification}, {"ledger", cl.ledger}} {
		waitApplied(t, c.name, c.client, int64(len(ids)), 20*time.Second)
		st, err := c.client.GetStats(t.Context(), &consumerv1.GetStatsRequest{})
		if err != nil {
			t.Fatalf("%s GetStats: %v", c.name, err)
		}
		if st.GetApplied() != int64(len(ids)) || st.GetDuplicatesApplied() != 0 {
			t.Errorf("%s stats: applied %d, duplicates applied %d; want %d and 0", c.name, st.GetApplied(), st.GetDuplicatesApplied(), len(ids))
		}
		apps := listApplied(t, c.client)
		appliedIDs := make([]string, len(apps))
		for i, a := range apps {
			appliedIDs[i] = a.GetOrderId()
		}
		assertExactlyOnce(t, c.name+" applications", appliedIDs, ids)
	}
}

// wantCode fails the test unless err is a gRPC status with the code.
func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", what, want)
	}
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

// linkStats returns order's stats of one outgoing link.
func linkStats(t *testing.T, c orderv1.OrderServiceClient, link string) *orderv1.LinkStats {
	t.Helper()
	st, err := c.GetStats(t.Context(), &orderv1.GetStatsRequest{})
	if err != nil {
		t.Fatalf("order GetStats: %v", err)
	}
	for _, l := range st.GetLinks() {
		if l.GetLink() == link {
			return l
		}
	}
	t.Fatalf("order GetStats has no link %q: %v", link, st)
	return nil
}

// faultInjector is an Injector over the topology's Toxiproxy API with a
// journal in the test's temp dir. At the end of the test it removes what
// is still on and checks that the journal has nothing outstanding.
type faultInjector struct {
	*toxiproxy.Injector
	t *testing.T
}

func newInjector(t *testing.T, ep topology.Endpoints) faultInjector {
	t.Helper()
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "faults.journal"))
	if err != nil {
		t.Fatal(err)
	}
	inj := toxiproxy.NewInjector(ep.ToxiproxyAPI, j)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := inj.RemoveAll(ctx); err != nil {
			t.Errorf("remove faults: %v", err)
		}
		if out, err := j.Outstanding(); err != nil || len(out) > 0 {
			t.Errorf("journal after the test: outstanding %v, err %v", out, err)
		}
		j.Close()
	})
	return faultInjector{Injector: inj, t: t}
}

// apply puts a fault on and fails the test when it cannot.
func (f faultInjector) apply(fault faults.Fault) faults.Applied {
	f.t.Helper()
	if fault.Name == "" {
		fault.Name = string(fault.Kind) + "-" + fault.Target
	}
	a, err := f.Apply(f.t.Context(), fault)
	if err != nil {
		f.t.Fatalf("apply %s: %v", fault, err)
	}
	return a
}

// remove takes a fault off and fails the test when it cannot.
func (f faultInjector) remove(a faults.Applied) {
	f.t.Helper()
	if err := f.Remove(f.t.Context(), a); err != nil {
		f.t.Fatalf("remove %s: %v", a.Fault, err)
	}
}
