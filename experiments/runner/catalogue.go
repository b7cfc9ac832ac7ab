package runner

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/experiments/report"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/tracing"
)

// rogueTimeout bounds the rogue client's one charge.
const rogueTimeout = 3 * time.Second

// wantsRogue reports whether a hypothesis of the experiment reads the
// rogue client's metrics: only then does the runner send it.
func wantsRogue(exp *definition.Experiment) bool {
	for _, h := range exp.Hypotheses {
		if strings.Contains(h.Check, "rogue.") {
			return true
		}
	}
	return false
}

// rogueCharge is the rogue client: someone on the network who is not part
// of the system, with no certificate of the testbed's CA, sending one
// Charge straight to the payment proxy with a key of its own. It speaks
// plaintext when the system does, and TLS without a client certificate
// (and without checking the server's: it does not care who answers) when
// the system runs with mTLS. It reports whether payment made the charge.
func rogueCharge(ctx context.Context, addr string, mtls bool, runID string) (bool, error) {
	if addr == "" {
		return false, fmt.Errorf("rogue client: no payment proxy")
	}
	creds := insecure.NewCredentials()
	if mtls {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}) //nolint:gosec // the rogue verifies nothing
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, fmt.Errorf("rogue client: dial %s: %w", addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, rogueTimeout)
	defer cancel()
	id := "rogue-" + runID
	_, err = paymentv1.NewPaymentServiceClient(conn).Charge(ctx, &paymentv1.ChargeRequest{
		OrderId: id, UserId: "u-0000", AmountCents: 99_999, IdempotencyKey: id, CardNumber: load.TestCard,
	})
	return err == nil, nil
}

// catalogueMeasured is what the catalogue's metrics need beyond measured.
type catalogueMeasured struct {
	rogue *bool // the rogue client's result; nil when it was not sent
}

// addCatalogue adds the metrics of the security, topology,
// administrators and heterogeneous experiments: the rogue client's
// result, the client amplification seen in traces and
// the time order took to recover from the first fault.
func (m *metrics) addCatalogue(in measured, faults []report.Fault, extra catalogueMeasured) {
	if extra.rogue != nil {
		m.setRun("rogue.charge_succeeded", check.BoolValue(*extra.rogue))
	}

	// Client amplification: every PlaceOrder of one order id, the client's
	// retries included, is one client request; its phase is its first
	// attempt's.
	byPhase := map[string][]tracing.ClientRequest{}
	for _, r := range tracing.ClientRequests(in.traces.orders[string(definition.Always)]) {
		p := phaseAt(in.exp, r.Start().Sub(in.start))
		byPhase[p] = append(byPhase[p], r)
		byPhase[string(definition.Always)] = append(byPhase[string(definition.Always)], r)
	}
	for p, reqs := range byPhase {
		var p50, p99, mx int
		var mean float64
		for svc, a := range tracing.ClientAmplification(reqs) {
			if svc == "order" {
				continue // order itself sees one attempt per client attempt
			}
			p50, p99, mx, mean = max(p50, a.P50), max(p99, a.P99), max(mx, a.Max), max(mean, a.Mean)
		}
		m.values[p]["trace.client_amplification.p50"] = check.NumberValue(float64(p50))
		m.values[p]["trace.client_amplification.p99"] = check.NumberValue(float64(p99))
		m.values[p]["trace.client_amplification.max"] = check.NumberValue(float64(mx))
		m.values[p]["trace.client_amplification.mean"] = check.NumberValue(mean)
	}

	if len(faults) > 0 && len(in.exp.Faults) > 0 && in.load != nil {
		// From when the first fault was due: applying one can take a while
		// (a restart is done when the replacement is up), and the outage
		// begins when it starts.
		first := in.exp.Faults[0].At
		for _, f := range in.exp.Faults {
			first = min(first, f.At)
		}
		end := in.start.Add(in.exp.Load.Duration)
		m.setRun("recovery.order.time", check.DurationValue(recoveryTime(in.load.History, in.start.Add(first), end)))
	}
}

// recoveryTime is how long order took to recover from a fault that began
// at from: from then to the first acknowledged order answered after the
// outage began (the first failed order intended at or after from). It is
// 0 when no order failed, and end−from when none succeeded again before
// end (the end of the load): a lower bound.
func recoveryTime(history []check.Attempt, from, end time.Time) time.Duration {
	var outage time.Time
	for _, a := range history {
		if !a.Intended.Before(from) && a.Outcome != check.OutcomeAcknowledged && (outage.IsZero() || a.Intended.Before(outage)) {
			outage = a.Intended
		}
	}
	if outage.IsZero() {
		return 0
	}
	var back time.Time
	for _, a := range history {
		if a.Outcome != check.OutcomeAcknowledged || !a.Intended.After(outage) {
			continue
		}
		if done := a.Intended.Add(a.Latency); back.IsZero() || done.Before(back) {
			back = done
		}
	}
	if back.IsZero() {
		return max(0, end.Sub(from))
	}
	return max(0, back.Sub(from))
}

// clientRetries is the load client's retry policy in a variant: the load
// section's, overridden by the variant's client.* knobs.
func clientRetries(w definition.Workload, c config.Client) (int, time.Duration) {
	retries, backoff := w.Retries, w.RetryBackoff
	if c.RetriesSet {
		retries = c.Retries
	}
	if c.RetryBackoff > 0 {
		backoff = c.RetryBackoff
	}
	if retries > 0 && backoff <= 0 {
		backoff = 50 * time.Millisecond
	}
	return retries, backoff
}
