package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/metrics"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
)

// This file gives each phase its own share of the counters the services
// keep for their whole life (order's retries, fallbacks and rejections per
// link, each consumer's applications and redeliveries, payment's
// attempts). The runner reads them at the phase boundaries and a phase's
// figure is the difference between the readings that delimit it:
//
//	load starts      first fault goes on    last fault comes off    drained
//	    │  reading ─┐     ┌─ reading              reading ─┐           │ reading
//	    ▼           ▼     ▼                                 ▼           ▼
//	    ├── before ───────┼──────────── during ─────────────┼── after ──┤
//
// The boundary readings are taken by the fault scheduler right before it
// applies the first fault and right after it removes the last one, so that
// nothing the fault caused is counted before it, and nothing counted
// during it happened without it. An event is counted in the phase in
// which the service counted it; the after phase runs to the end of the
// drain (a consumer applies its backlog then).

// readCounters reads every counter the phase metrics need, from every
// service at once: at a boundary, the fault waits for it.
func (c *clients) readCounters(ctx context.Context) (*metrics.Counters, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := &metrics.Counters{Links: map[string]metrics.LinkCounters{}, Consumers: map[string]metrics.ConsumerCounters{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	read := func(what string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("read %s: %w", what, err))
				mu.Unlock()
			}
		})
	}
	read("order stats", func() error {
		st, err := c.order.GetStats(ctx, &orderv1.GetStatsRequest{})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range st.GetLinks() {
			out.Links[l.GetLink()] = linkCounters(l)
		}
		return nil
	})
	for name, cc := range c.consumer {
		read(name+" stats", func() error {
			st, err := cc.GetStats(ctx, &consumerv1.GetStatsRequest{})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			out.Consumers[name] = consumerCounters(st)
			return nil
		})
	}
	for i, pc := range append([]paymentv1.PaymentServiceClient{c.payment}, c.replicas...) {
		read(fmt.Sprintf("attempts of payment replica %d", i), func() error {
			// Every page carries the attempts; the smallest page is the cheapest.
			resp, err := pc.ListCharges(ctx, &paymentv1.ListChargesRequest{PageSize: 1})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			out.PaymentAttempts += resp.GetAttempts()
			return nil
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// countersOf is the reading contained in the observation after the drain.
func countersOf(o *observation) *metrics.Counters {
	out := &metrics.Counters{Links: map[string]metrics.LinkCounters{}, Consumers: map[string]metrics.ConsumerCounters{}, PaymentAttempts: o.chargeAttempts}
	for _, l := range o.order.GetLinks() {
		out.Links[l.GetLink()] = linkCounters(l)
	}
	for name, st := range o.stats {
		out.Consumers[name] = consumerCounters(st)
	}
	return out
}

// linkCounters are the counters order keeps for one link.
func linkCounters(l *orderv1.LinkStats) metrics.LinkCounters {
	return metrics.LinkCounters{
		Calls: l.GetCalls(), Attempts: l.GetAttempts(), Retries: l.GetRetries(), Fallbacks: l.GetFallbacks(),
		Deadlines: l.GetDeadlines(), BreakerOpened: l.GetBreakerOpened(), BreakerRejected: l.GetBreakerRejected(),
		BulkheadRejected: l.GetBulkheadRejected(), HedgesSent: l.GetHedgesSent(), HedgesWon: l.GetHedgesWon(),
	}
}

// consumerCounters are the counters of one consumer.
func consumerCounters(st *consumerv1.GetStatsResponse) metrics.ConsumerCounters {
	return metrics.ConsumerCounters{
		Applied: st.GetApplied(), DuplicatesApplied: st.GetDuplicatesApplied(),
		DuplicatesRecognised: st.GetDuplicatesRecognised(), Redeliveries: st.GetRedeliveries(),
		StaleApplied: st.GetStaleApplied(), StaleSkipped: st.GetStaleSkipped(), KeysBehind: st.GetKeysBehind(),
	}
}

// phaseCounters holds the readings that delimit the phases, by the phase
// that begins at each (and metrics.End for the reading after the drain).
type phaseCounters struct {
	mu       sync.Mutex
	readings map[string]*metrics.Counters
}

func newPhaseCounters() *phaseCounters {
	return &phaseCounters{readings: map[string]*metrics.Counters{}}
}

// mark records a reading taken as phase begins ("before", "during",
// "after") or at the end (metrics.End); a failed reading leaves the phases
// next to it without counter metrics.
func (pc *phaseCounters) mark(phase string, c *metrics.Counters, err error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if err == nil {
		pc.readings[phase] = c
	}
}

// window returns the readings at the start and at the end of a phase
// (metrics.Window).
func (pc *phaseCounters) window(phase string) (from, to *metrics.Counters) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return metrics.Window(pc.readings, phase)
}

// all returns a copy of every reading, for the metric families.
func (pc *phaseCounters) all() map[string]*metrics.Counters {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return maps.Clone(pc.readings)
}
