package load

import (
	"context"
	"fmt"
	"time"
)

// TimerFloor waits n times at rate per second, each time on one timer
// reset to the tick's intended time (the way Run waits for an arrival),
// and summarizes how late each wait returned. It is the send lag of a
// generator that does nothing but wait: the floor of this machine, here
// and now, that Run's own send lag is read against.
func TimerFloor(ctx context.Context, rate float64, n int) (LatencySummary, error) {
	if rate <= 0 || n <= 0 {
		return LatencySummary{}, fmt.Errorf("measure the timer floor: rate %v and count %d must be positive", rate, n)
	}
	h := newHist()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i+1) * float64(time.Second) / rate))
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return LatencySummary{}, fmt.Errorf("measure the timer floor: %w", ctx.Err())
		case <-timer.C:
		}
		recordDuration(h, time.Since(due))
	}
	return summarize(h), nil
}

// What the generator promises (BENCHMARKS.md's targets; its tests hold it
// to them): its achieved rate within RateTolerance of the target, and its
// send lag within SendLagLimits of the floor measured beside it.
const (
	// RateTolerance is how far, as a fraction, the achieved rate may be
	// off the target.
	RateTolerance = 0.01
	// SendLagP50Margin and SendLagP99Margin are what the generator's own
	// work may add to twice the bare timer's lateness, at p50 and p99.
	SendLagP50Margin = 250 * time.Microsecond
	SendLagP99Margin = time.Millisecond
)

// SendLagLimits returns the most send lag at p50 and at p99 the generator
// may show against floor, the lateness of a bare timer (TimerFloor) on
// the same schedule at the same time: twice the floor plus a margin.
func SendLagLimits(floor LatencySummary) (p50, p99 time.Duration) {
	return 2*floor.P50 + SendLagP50Margin, 2*floor.P99 + SendLagP99Margin
}
