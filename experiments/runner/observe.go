package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"google.golang.org/grpc"
)

// consumers are the asynchronous consumers the checker reads.
var consumers = []string{"notification", "ledger"}

// clients are the runner's connections to the services' own addresses
// (never through a proxy: the runner observes, it is not under test).
type clients struct {
	conns    []*grpc.ClientConn
	order    orderv1.OrderServiceClient
	payment  paymentv1.PaymentServiceClient
	replicas []paymentv1.PaymentServiceClient // payment replicas after the first, if any
	consumer map[string]consumerv1.ConsumerServiceClient
}

// dialClients connects to the services at their own addresses, with so's
// credentials (the observer's client certificate when the system runs
// mTLS).
func dialClients(ep topology.Endpoints, so serve.Options) (*clients, error) {
	c := &clients{consumer: map[string]consumerv1.ConsumerServiceClient{}}
	dial := func(service string) (*grpc.ClientConn, error) {
		addr := ep.Services[service]
		if addr == "" {
			return nil, fmt.Errorf("no address for %s", service)
		}
		conn, err := serve.Dial(addr, serve.Options{ClientCreds: so.ClientCreds})
		if err != nil {
			return nil, fmt.Errorf("dial %s at %s: %w", service, addr, err)
		}
		c.conns = append(c.conns, conn)
		return conn, nil
	}
	conn, err := dial("order")
	if err != nil {
		c.close()
		return nil, err
	}
	c.order = orderv1.NewOrderServiceClient(conn)
	if conn, err = dial("payment"); err != nil {
		c.close()
		return nil, err
	}
	c.payment = paymentv1.NewPaymentServiceClient(conn)
	for i := 1; ep.Services[fmt.Sprintf("payment-%d", i)] != ""; i++ {
		if conn, err = dial(fmt.Sprintf("payment-%d", i)); err != nil {
			c.close()
			return nil, err
		}
		c.replicas = append(c.replicas, paymentv1.NewPaymentServiceClient(conn))
	}
	for _, name := range consumers {
		if conn, err = dial(name); err != nil {
			c.close()
			return nil, err
		}
		c.consumer[name] = consumerv1.NewConsumerServiceClient(conn)
	}
	return c, nil
}

func (c *clients) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
}

// observation is what the services recorded, read after the drain.
type observation struct {
	charges        []*paymentv1.Charge
	chargeAttempts int64
	applied        map[string][]*consumerv1.Application
	stats          map[string]*consumerv1.GetStatsResponse
	order          *orderv1.GetStatsResponse
	// published counts the orders.created messages in the ORDERS stream by
	// order id; nil when not known (no stream, or it could not be read).
	published map[string]int
	// publishedAt is when the stream stored each order's first
	// orders.created message; nil when not known.
	publishedAt map[string]time.Time
}

// observe reads what the services recorded since since: charges created
// and applications applied at or after it (a system that was up before
// the run, a --target, keeps earlier runs' records; they are not this
// run's). The clocks compared are the services' and the runner's, the same
// host's on loopback.
func (c *clients) observe(ctx context.Context, since time.Time) (*observation, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	from := since.UnixNano()
	obs := &observation{applied: map[string][]*consumerv1.Application{}, stats: map[string]*consumerv1.GetStatsResponse{}}
	// Every replica's ledger: a charge on two replicas is two charges.
	for i, pc := range append([]paymentv1.PaymentServiceClient{c.payment}, c.replicas...) {
		token := ""
		for {
			resp, err := pc.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: 10000, PageToken: token})
			if err != nil {
				return nil, fmt.Errorf("read ledger of payment replica %d: %w", i, err)
			}
			for _, ch := range resp.GetCharges() {
				if ch.GetCreatedUnixNano() >= from {
					obs.charges = append(obs.charges, ch)
				}
			}
			if token = resp.GetNextPageToken(); token == "" {
				obs.chargeAttempts += resp.GetAttempts()
				break
			}
		}
	}
	for name, cc := range c.consumer {
		apps, err := listApplied(ctx, cc, from)
		if err != nil {
			return nil, fmt.Errorf("read %s applications: %w", name, err)
		}
		obs.applied[name] = apps
		st, err := cc.GetStats(ctx, &consumerv1.GetStatsRequest{})
		if err != nil {
			return nil, fmt.Errorf("read %s stats: %w", name, err)
		}
		obs.stats[name] = st
	}
	st, err := c.order.GetStats(ctx, &orderv1.GetStatsRequest{})
	if err != nil {
		return nil, fmt.Errorf("read order stats: %w", err)
	}
	obs.order = st
	return obs, nil
}

// listApplied reads one consumer's applications applied at or after from
// (Unix nanoseconds).
func listApplied(ctx context.Context, cc consumerv1.ConsumerServiceClient, from int64) ([]*consumerv1.Application, error) {
	var out []*consumerv1.Application
	token := ""
	for {
		resp, err := cc.ListApplied(ctx, &consumerv1.ListAppliedRequest{PageSize: 10000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, a := range resp.GetApplications() {
			if a.GetAppliedUnixNano() >= from {
				out = append(out, a)
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// distinctApplied reads each consumer's count of distinct orders applied.
func (c *clients) distinctApplied(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(c.consumer))
	for name, cc := range c.consumer {
		st, err := cc.GetStats(ctx, &consumerv1.GetStatsRequest{})
		if err != nil {
			return nil, fmt.Errorf("read %s stats: %w", name, err)
		}
		out[name] = st.GetApplied() - st.GetDuplicatesApplied()
	}
	return out, nil
}

// drain waits until every consumer has applied every acknowledged order of
// the run, or until limit passes. It polls the consumers' counters (cheap)
// until each has applied len(acked) more distinct orders than baseline
// (its count before the load), then confirms by reading what each applied
// since since: a count alone can be met by records that are not this
// run's. It reports whether the consumers caught up.
func (c *clients) drain(ctx context.Context, acked []string, baseline map[string]int64, since time.Time, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	want := int64(len(acked))
	pause := 25 * time.Millisecond
	for {
		if counts, err := c.distinctApplied(ctx); err == nil && caughtUp(counts, baseline, want) {
			if c.appliedAll(ctx, acked, since) {
				return true
			}
			pause = 250 * time.Millisecond // confirming reads everything: poll slower
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
	}
}

func caughtUp(counts, baseline map[string]int64, want int64) bool {
	for name, n := range counts {
		if n-baseline[name] < want {
			return false
		}
	}
	return true
}

// appliedAll reports whether every consumer applied every order in ids
// since since.
func (c *clients) appliedAll(ctx context.Context, ids []string, since time.Time) bool {
	for _, cc := range c.consumer {
		apps, err := listApplied(ctx, cc, since.UnixNano())
		if err != nil {
			return false
		}
		seen := make(map[string]bool, len(apps))
		for _, a := range apps {
			seen[a.GetOrderId()] = true
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
	}
	return true
}

// ackedIDs lists the distinct order ids the clients were told succeeded.
func ackedIDs(history []check.Attempt) []string {
	seen := make(map[string]bool)
	var out []string
	for _, a := range history {
		if a.Outcome == check.OutcomeAcknowledged && a.OrderID != "" && !seen[a.OrderID] {
			seen[a.OrderID] = true
			out = append(out, a.OrderID)
		}
	}
	return out
}
