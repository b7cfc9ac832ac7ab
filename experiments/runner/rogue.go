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

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/load"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
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
