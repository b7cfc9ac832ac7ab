package runner

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
)

// The services keep a bounded window of their most recent records
// (store.Recent): a run that outgrows it, or a --target system that has
// run long enough, forgets the start of the run's own records before the
// runner reads them, and the consistency checker would then count lost
// payments and lost events that are not. The runner notes each window's
// total before the load and how many records it has forgotten when it
// reads them; a window that forgot any record appended since is reported
// as a testbed failure, never judged.

// lister reads one page of a service's window: how many records it held
// and the next page's token. The services' page tokens are absolute
// positions (the n-th record ever appended is at n-1).
type lister func(ctx context.Context, size int32, token string) (n int, next string, err error)

// windows are the listers of every window the checker reads, by service
// name (payment, its replicas payment-1…, the consumers).
func (c *clients) windows() map[string]lister {
	out := map[string]lister{}
	for i, pc := range append([]paymentv1.PaymentServiceClient{c.payment}, c.replicas...) {
		name := "payment"
		if i > 0 {
			name = fmt.Sprintf("payment-%d", i)
		}
		out[name] = func(ctx context.Context, size int32, token string) (int, string, error) {
			resp, err := pc.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: size, PageToken: token})
			return len(resp.GetCharges()), resp.GetNextPageToken(), err
		}
	}
	for name, cc := range c.consumer {
		out[name] = func(ctx context.Context, size int32, token string) (int, string, error) {
			resp, err := cc.ListApplied(ctx, &consumerv1.ListAppliedRequest{PageSize: size, PageToken: token})
			return len(resp.GetApplications()), resp.GetNextPageToken(), err
		}
	}
	return out
}

// forgotten returns how many records the window behind list has dropped:
// the position of the oldest record it holds, one less than the token
// after a first page of one record. No next token means at most one record
// held, so nothing forgotten (a window that forgot holds nine tenths of
// its limit).
func forgotten(ctx context.Context, list lister) (int64, error) {
	n, next, err := list(ctx, 1, "")
	if err != nil || next == "" {
		return 0, err
	}
	pos, err := strconv.ParseInt(next, 10, 64)
	if err != nil || pos < int64(n) {
		return 0, fmt.Errorf("page token %q is not a record position", next)
	}
	return pos - int64(n), nil
}

// appended returns how many records were ever appended to the window
// behind list: those it forgot and those it holds.
func appended(ctx context.Context, list lister) (int64, error) {
	total, err := forgotten(ctx, list)
	if err != nil {
		return 0, err
	}
	token := ""
	for {
		n, next, err := list(ctx, 10000, token)
		if err != nil {
			return 0, err
		}
		total += int64(n)
		if token = next; token == "" {
			return total, nil
		}
	}
}

// windowTotals reads how many records each window holds and forgot, as
// the load begins.
func (c *clients) windowTotals(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for name, list := range c.windows() {
		n, err := appended(ctx, list)
		if err != nil {
			return nil, fmt.Errorf("read the window of %s: %w", name, err)
		}
		out[name] = n
	}
	return out, nil
}

// evicted reports the windows that forgot records appended since before
// (the totals windowTotals read as the load began): nil when none did, else
// an error naming each service and how many of the run's records it lost.
func (c *clients) evicted(ctx context.Context, before map[string]int64) error {
	var lost []string
	for name, list := range c.windows() {
		f, err := forgotten(ctx, list)
		if err != nil {
			return fmt.Errorf("read the window of %s: %w", name, err)
		}
		if n := f - before[name]; n > 0 {
			lost = append(lost, fmt.Sprintf("%s forgot %d", name, n))
		}
	}
	if len(lost) == 0 {
		return nil
	}
	sort.Strings(lost)
	return fmt.Errorf("the services' windows of recent records overflowed during the run (%s of the run's records before they were read), so the consistency check cannot be judged; place fewer orders per run, or restart a long-lived target system", strings.Join(lost, ", "))
}
