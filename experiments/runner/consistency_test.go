package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/experiments/report"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

// The consistency tests build each category of the checker for real on
// the embedded topology, configured by hand and run as a --target (so that
// the test can read the services itself afterwards), and check the
// figures the runner wrote into report.json.

// targetRun is one experiment run against a topology the test started.
type targetRun struct {
	ep      topology.Endpoints
	variant report.Variant
}

// runAgainst starts the embedded topology with the knobs set, runs the
// experiment against it and returns the single variant of its report.json.
func runAgainst(t *testing.T, knobs map[string]string, src string) targetRun {
	t.Helper()
	sys := config.Default()
	for k, v := range knobs {
		if err := config.Set(&sys, k, v); err != nil {
			t.Fatal(err)
		}
	}
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: sys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Stop(context.Background()) })
	ep := topo.Endpoints()
	res, err := Run(t.Context(), mustParse(t, src), Options{Target: &ep, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, res.Dir)
	if len(rep.Variants) != 1 || rep.Error != "" {
		t.Fatalf("report: %d variants, error %q", len(rep.Variants), rep.Error)
	}
	v := rep.Variants[0]
	c := v.Consistency
	t.Logf("acknowledged %d lost %d duplicated %d ghost %d recovered %d unexpected %d payments %+v consumers %+v published %v",
		c.Acknowledged, c.Lost, c.Duplicated, c.Ghost, c.Recovered, c.Unexpected, c.Payments, c.Consumers, v.Metrics["always.events.published"])
	return targetRun{ep: ep, variant: v}
}

// readReport reads report.json of the report folder dir.
func readReport(t *testing.T, dir string) report.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// total sums a figure over the three phases.
func total(v report.Variant, f func(report.Phase) int64) int64 {
	var n int64
	for _, p := range []string{report.PhaseBefore, report.PhaseDuring, report.PhaseAfter} {
		n += f(v.Phases[p])
	}
	return n
}

func successes(v report.Variant) int64 {
	return total(v, func(p report.Phase) int64 { return p.Successes })
}
func requests(v report.Variant) int64 {
	return total(v, func(p report.Phase) int64 { return p.Requests })
}
func errorsOf(v report.Variant, code string) int64 {
	return total(v, func(p report.Phase) int64 { return p.Errors[code] })
}

// ledgerSize reads payment's whole ledger directly.
func ledgerSize(t *testing.T, ep topology.Endpoints) int {
	t.Helper()
	conn, err := serve.Dial(ep.Services["payment"], serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := paymentv1.NewPaymentServiceClient(conn).ListCharges(t.Context(), &paymentv1.ListChargesRequest{PageSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetCharges())
}

func wantEq(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// TestConsistencyExactAccounting: nothing goes wrong, and one charge and
// one event nobody ordered are slipped in while the run is on. Every figure
// is then deterministic.
func TestConsistencyExactAccounting(t *testing.T) {
	var ep topology.Endpoints
	testHookLoadDone = func() {
		ctx := context.Background()
		conn, err := serve.Dial(ep.Services["payment"], serve.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if _, err := paymentv1.NewPaymentServiceClient(conn).Charge(ctx, &paymentv1.ChargeRequest{
			OrderId: "stray-charge", UserId: "u-0001", AmountCents: 100, IdempotencyKey: "stray-charge",
		}); err != nil {
			t.Error(err)
		}
		nc, err := nats.Connect(ep.NATS)
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Error(err)
			return
		}
		ev := events.OrderCreated{OrderID: "stray-event", UserID: "u-0001", AmountCents: 100, ChargeID: "none"}
		if _, err := js.Publish(ctx, events.SubjectCreated, ev.Marshal(), jetstream.WithMsgID("stray-event")); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookLoadDone = nil })

	// The topology is started inside runAgainst; the hook reads ep when
	// the load is done, by which time runAgainst has set it through here.
	sys := config.Default()
	topo, err := topology.StartEmbedded(t.Context(), topology.Options{System: sys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Stop(context.Background()) })
	ep = topo.Endpoints()
	res, err := Run(t.Context(), mustParse(t, `
name: exact
fallacy: latency-is-zero
description: no fault; a stray charge and a stray event
load: { rate: 25/s, duration: 2s }
variants: { only: {} }
hypotheses:
  - { when: always, check: "records.unexpected == 2" }
`), Options{Target: &ep, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Report.Variants[0]
	c := v.Consistency
	acked := int(successes(v))
	if acked == 0 || int64(acked) != requests(v) {
		t.Fatalf("%d of %d orders acknowledged, want all of at least one", acked, requests(v))
	}
	wantEq(t, "acknowledged", c.Acknowledged, acked)
	wantEq(t, "lost", c.Lost, 0)
	wantEq(t, "duplicated", c.Duplicated, 0)
	wantEq(t, "ghost", c.Ghost, 0)
	wantEq(t, "recovered", c.Recovered, 0)
	wantEq(t, "unexpected", c.Unexpected, 2)
	wantEq(t, "payments.lost", c.Payments.Lost, 0)
	for _, name := range []string{"notification", "ledger"} {
		cc, ok := c.Consumers[name]
		if !ok {
			t.Fatalf("consumers = %v, want %s", c.Consumers, name)
		}
		wantEq(t, name+".applied", cc.Applied, acked+1)
		wantEq(t, name+".lost", cc.Lost, 0)
		wantEq(t, name+".duplicated", cc.Duplicated, 0)
		wantEq(t, name+".unexpected", cc.Unexpected, 1)
	}
	// Read from the ORDERS stream: every acknowledged order's event and
	// the stray one.
	wantEq(t, "events.published", int(v.Metrics["always.events.published"]), acked+1)
	wantEq(t, "ledger size", ledgerSize(t, ep), acked+1)
	if !v.Passed {
		t.Errorf("hypotheses: %+v", v.Hypotheses)
	}

	// A second run on the same system sees only its own records: the
	// earlier run's orders, charges and events are not unexpected.
	testHookLoadDone = nil
	res, err = Run(t.Context(), mustParse(t, `
name: again
fallacy: latency-is-zero
description: the same system, a second run
load: { rate: 25/s, duration: 1s }
variants: { only: {} }
hypotheses:
  - { when: always, check: "records.unexpected == 0 and events.lost == 0" }
`), Options{Target: &ep, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v = res.Report.Variants[0]
	c = v.Consistency
	acked = int(successes(v))
	wantEq(t, "second run: unexpected", c.Unexpected, 0)
	wantEq(t, "second run: lost", c.Lost, 0)
	wantEq(t, "second run: acknowledged", c.Acknowledged, acked)
	wantEq(t, "second run: events.published", int(v.Metrics["always.events.published"]), acked)
	wantEq(t, "second run: ledger.applied", c.Consumers["ledger"].Applied, acked)
}

// TestConsistencyGhostCharges: payment answers slowly (a latency toxic on
// its responses) while order's deadline on the link is shorter. Payment
// has charged by the time order gives up and tells the client
// DEADLINE_EXCEEDED: money taken for an order the customer believes
// failed. (A payment.processing_time longer than the deadline makes no
// ghost: payment honours the deadline it is sent and records nothing.)
func TestConsistencyGhostCharges(t *testing.T) {
	r := runAgainst(t, map[string]string{
		"order.payment.timeout": "100ms", "order.payment.retries": "0", "order.payment.breaker": "off",
	}, `
name: ghost
fallacy: latency-is-zero
description: payment's answers arrive after order's deadline
load: { rate: 25/s, duration: 2500ms }
variants: { only: {} }
faults:
  - { name: slow-answers, at: 500ms, for: 1s, target: payment, kind: latency, latency: 300ms, direction: downstream }
hypotheses:
  - { when: always, check: "payments.ghost > 0" }
`)
	v, c := r.variant, r.variant.Consistency
	deadline := int(errorsOf(v, "DEADLINE_EXCEEDED"))
	if c.Ghost == 0 || deadline == 0 {
		t.Fatalf("ghost %d, DEADLINE_EXCEEDED %d: want both > 0", c.Ghost, deadline)
	}
	// Every charge is accounted for exactly: acknowledged, ghost (told
	// failed), or recovered (the client's own deadline passed first, on a
	// stalled machine). An order that timed out before payment saw it was
	// not charged: so at most every DEADLINE_EXCEEDED is a ghost.
	if c.Ghost+c.Recovered > deadline {
		t.Errorf("ghost %d + recovered %d > DEADLINE_EXCEEDED %d", c.Ghost, c.Recovered, deadline)
	}
	wantEq(t, "payments.ghost", c.Payments.Ghost, c.Ghost)
	wantEq(t, "metric payments.ghost", int(v.Metrics["always.payments.ghost"]), c.Ghost)
	wantEq(t, "lost", c.Lost, 0)
	wantEq(t, "duplicated", c.Duplicated, 0)
	wantEq(t, "unexpected", c.Unexpected, 0)
	wantEq(t, "acknowledged", c.Acknowledged, int(successes(v)))
	wantEq(t, "events.published", int(v.Metrics["always.events.published"]), c.Acknowledged)
	wantEq(t, "ledger size", ledgerSize(t, r.ep), c.Acknowledged+c.Ghost+c.Recovered)
}

// TestConsistencyRecovered: the client's own deadline is shorter than
// payment's slowed answers, and order has no deadline of its own. The
// client gives up without an answer (unknown outcome); payment had
// charged: the orders completed after all.
func TestConsistencyRecovered(t *testing.T) {
	r := runAgainst(t, map[string]string{"order.payment.timeout": "off", "order.payment.breaker": "off"}, `
name: recovered
fallacy: latency-is-zero
description: the client gives up before payment's answer arrives
load: { rate: 25/s, duration: 2500ms, timeout: 150ms }
variants: { only: {} }
faults:
  - { name: slow-answers, at: 500ms, for: 1s, target: payment, kind: latency, latency: 400ms, direction: downstream }
hypotheses:
  - { when: always, check: "orders.recovered > 0" }
`)
	v, c := r.variant, r.variant.Consistency
	deadline := int(errorsOf(v, "DEADLINE_EXCEEDED"))
	if c.Recovered == 0 {
		t.Fatalf("recovered = 0 (DEADLINE_EXCEEDED %d), want > 0", deadline)
	}
	wantEq(t, "ghost", c.Ghost, 0)
	// The client timed out on each; most had been charged by then (an
	// order slowed before it reached payment was not).
	if c.Recovered > deadline {
		t.Errorf("recovered %d > DEADLINE_EXCEEDED %d", c.Recovered, deadline)
	}
	wantEq(t, "metric orders.recovered", int(v.Metrics["always.orders.recovered"]), c.Recovered)
	wantEq(t, "lost", c.Lost, 0)
	wantEq(t, "duplicated", c.Duplicated, 0)
	wantEq(t, "unexpected", c.Unexpected, 0)
	wantEq(t, "ledger size", ledgerSize(t, r.ep), c.Acknowledged+c.Recovered)
}

// TestConsistencyLostEvents: core NATS publishing (fire-and-forget) while
// ledger's link to NATS is cut. Order acknowledges every order; ledger
// never sees the events published during the cut; notification sees all.
func TestConsistencyLostEvents(t *testing.T) {
	r := runAgainst(t, map[string]string{"order.publish_mode": "core"}, `
name: lost
fallacy: network-is-reliable
description: core publishing while ledger is cut off
load: { rate: 40/s, duration: 2500ms, drain: 2s }
variants: { only: {} }
faults:
  - { name: cut-ledger, at: 500ms, for: 1s, target: nats-ledger, kind: partition }
hypotheses:
  - { when: always, check: "events.lost > 0" }
`)
	v, c := r.variant, r.variant.Consistency
	acked := int(successes(v))
	ledger, notification := c.Consumers["ledger"], c.Consumers["notification"]
	if ledger.Lost == 0 {
		t.Fatalf("ledger lost nothing: %+v", c)
	}
	wantEq(t, "acknowledged", c.Acknowledged, acked)
	wantEq(t, "ledger.lost", ledger.Lost, acked-ledger.Applied)
	wantEq(t, "notification.lost", notification.Lost, 0)
	wantEq(t, "notification.applied", notification.Applied, acked)
	wantEq(t, "lost", c.Lost, ledger.Lost)
	wantEq(t, "metric events.lost", int(v.Metrics["always.events.lost"]), ledger.Lost)
	wantEq(t, "payments.lost", c.Payments.Lost, 0)
	wantEq(t, "duplicated", c.Duplicated, 0)
	// Core publishing stores nothing: there is no stream to count.
	wantEq(t, "events.published", int(v.Metrics["always.events.published"]), 0)
}

// TestConsistencyDuplicatedEvents: ledger applies every delivery (not
// idempotent) and takes longer per event than its ack wait, so JetStream
// redelivers events it is still working on, and ledger applies them again.
func TestConsistencyDuplicatedEvents(t *testing.T) {
	r := runAgainst(t, map[string]string{
		"ledger.idempotent": "false", "ledger.ack_wait": "100ms", "ledger.processing_time": "150ms", "ledger.max_deliver": "2",
	}, `
name: duplicated
fallacy: network-is-reliable
description: a slow, non-idempotent consumer and redelivery
load: { rate: 5/s, duration: 2s, drain: 5s }
variants: { only: {} }
hypotheses:
  - { when: always, check: "events.duplicated > 0" }
`)
	v, c := r.variant, r.variant.Consistency
	acked := int(successes(v))
	ledger := c.Consumers["ledger"]
	if ledger.Duplicated == 0 {
		t.Fatalf("ledger duplicated nothing: %+v", c)
	}
	wantEq(t, "duplicated", c.Duplicated, ledger.Duplicated)
	wantEq(t, "metric events.duplicated", int(v.Metrics["always.events.duplicated"]), ledger.Duplicated)
	wantEq(t, "ledger.applied", ledger.Applied, acked)
	wantEq(t, "ledger.lost", ledger.Lost, 0)
	wantEq(t, "notification.duplicated", c.Consumers["notification"].Duplicated, 0)
	wantEq(t, "payments.duplicated", c.Payments.Duplicated, 0)
	wantEq(t, "lost", c.Lost, 0)
	// Redelivery is the consumer's business: the stream holds each event once.
	wantEq(t, "events.published", int(v.Metrics["always.events.published"]), acked)
	if dups := v.Metrics["always.ledger.duplicates_applied"]; int(dups) < ledger.Duplicated {
		t.Errorf("ledger.duplicates_applied = %v, want at least %d", dups, ledger.Duplicated)
	}
}
