package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/definition"
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

// counters is one reading of the services' cumulative counters.
type counters struct {
	links           map[string]*orderv1.LinkStats
	consumers       map[string]*consumerv1.GetStatsResponse
	paymentAttempts int64
}

// readCounters reads every counter the phase metrics need, from every
// service at once: at a boundary, the fault waits for it.
func (c *clients) readCounters(ctx context.Context) (*counters, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := &counters{links: map[string]*orderv1.LinkStats{}, consumers: map[string]*consumerv1.GetStatsResponse{}}
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
			out.links[l.GetLink()] = l
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
			out.consumers[name] = st
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
			out.paymentAttempts += resp.GetAttempts()
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
func countersOf(o *observation) *counters {
	out := &counters{links: map[string]*orderv1.LinkStats{}, consumers: o.stats, paymentAttempts: o.chargeAttempts}
	for _, l := range o.order.GetLinks() {
		out.links[l.GetLink()] = l
	}
	return out
}

// phaseCounters holds the readings that delimit the phases, by the phase
// that begins at each (and "end" for the reading after the drain).
type phaseCounters struct {
	mu       sync.Mutex
	readings map[string]*counters
}

func newPhaseCounters() *phaseCounters { return &phaseCounters{readings: map[string]*counters{}} }

// mark records a reading taken as phase begins ("before", "during",
// "after") or at the end ("end"); a failed reading leaves the phases next
// to it without counter metrics.
func (pc *phaseCounters) mark(phase string, c *counters, err error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if err == nil {
		pc.readings[phase] = c
	}
}

// window returns the readings at the start and at the end of a phase, or
// nils when one of them is missing. A phase ends where the next phase
// that has a reading begins, else at the end.
func (pc *phaseCounters) window(phase string) (from, to *counters) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	order := []string{string(definition.Before), string(definition.During), string(definition.After), "end"}
	if phase == string(definition.Always) {
		return pc.readings[string(definition.Before)], pc.readings["end"]
	}
	for i, p := range order[:3] {
		if p != phase {
			continue
		}
		from = pc.readings[p]
		for _, q := range order[i+1:] {
			if r, ok := pc.readings[q]; ok {
				return from, r
			}
		}
	}
	return from, nil
}

// delta is how much a counter grew between two readings. A counter that
// shrank belongs to a service that restarted in between: it counted from
// zero since.
func delta(from, to int64) int64 {
	if to < from {
		return to
	}
	return to - from
}

// addCounters sets the counter metrics of every phase.
func (m *metrics) addCounters(pc *phaseCounters) {
	if pc == nil {
		return
	}
	num := func(n int64) check.Value { return check.NumberValue(float64(n)) }
	for _, p := range phases {
		from, to := pc.window(p)
		if from == nil || to == nil {
			continue
		}
		set := func(name string, v check.Value) { m.values[p][name] = v }
		for link, l := range to.links {
			f := from.links[link] // nil reads as zeros
			set("breaker."+link+".rejected", num(delta(f.GetBreakerRejected(), l.GetBreakerRejected())))
			set("bulkhead."+link+".rejected", num(delta(f.GetBulkheadRejected(), l.GetBulkheadRejected())))
			set("retries."+link, num(delta(f.GetRetries(), l.GetRetries())))
			set("fallback."+link, num(delta(f.GetFallbacks(), l.GetFallbacks())))
			if calls := delta(f.GetCalls(), l.GetCalls()); calls > 0 {
				set("retry."+link+".amplification", check.NumberValue(float64(delta(f.GetAttempts(), l.GetAttempts()))/float64(calls)))
			}
		}
		for name, st := range to.consumers {
			f := from.consumers[name]
			set(name+".applied", num(delta(f.GetApplied(), st.GetApplied())))
			set(name+".duplicates_applied", num(delta(f.GetDuplicatesApplied(), st.GetDuplicatesApplied())))
			set(name+".duplicates_recognised", num(delta(f.GetDuplicatesRecognised(), st.GetDuplicatesRecognised())))
			set(name+".redeliveries", num(delta(f.GetRedeliveries(), st.GetRedeliveries())))
		}
		set("payment.attempts", num(delta(from.paymentAttempts, to.paymentAttempts)))
	}
}
