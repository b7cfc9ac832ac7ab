package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// sample holds one figure's value from each repetition.
type sample []float64

func (s sample) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if n := len(c); n%2 == 1 {
		return c[n/2]
	} else {
		return (c[n/2-1] + c[n/2]) / 2
	}
}

// format writes the median and, with more than one repetition, the range:
// "41.2 (40.1–43.0)" with prec decimals.
func (s sample) format(prec int) string {
	if len(s) == 0 {
		return "–"
	}
	m := fmt.Sprintf("%.*f", prec, s.median())
	if len(s) == 1 {
		return m
	}
	return fmt.Sprintf("%s (%.*f–%.*f)", m, prec, slices.Min(s), prec, slices.Max(s))
}

// ms and us convert durations for samples.
func ms(d time.Duration) float64     { return float64(d) / float64(time.Millisecond) }
func fromMs(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
func us(d time.Duration) float64     { return float64(d) / float64(time.Microsecond) }

// newHist records latencies in nanoseconds from 1 µs to 2 minutes.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1_000, 120_000_000_000, 3) }

func quantile(h *hdrhistogram.Histogram, q float64) time.Duration {
	return time.Duration(h.ValueAtQuantile(q))
}

// loop is the outcome of a closed-loop run.
type loop struct {
	lat     *hdrhistogram.Histogram
	calls   int64
	elapsed time.Duration
}

func (l loop) p50() time.Duration { return quantile(l.lat, 50) }
func (l loop) p99() time.Duration { return quantile(l.lat, 99) }
func (l loop) perSecond() float64 { return float64(l.calls) / l.elapsed.Seconds() }

// Warm-up bounds. warmUpFor is how long a warm-up keeps calling;
// warmUpLimit is how long it waits for every worker's first call: a loaded
// machine may leave a worker off the CPU for longer than warmUpFor, so
// only a link on which a call does not complete within warmUpLimit fails.
const (
	warmUpFor   = 200 * time.Millisecond
	warmUpLimit = 30 * time.Second
)

// warmUp runs call from c workers for warmUpFor before a measurement, so
// that connections are up and windows open. Each worker makes at least one
// call, however late it is scheduled; a call that fails, or that has not
// completed warmUpLimit after the start, fails the warm-up with a message
// that says so.
func warmUp(ctx context.Context, c int, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, warmUpLimit)
	defer cancel()
	end := time.Now().Add(warmUpFor)
	errs := make(chan error, c)
	for range c {
		go func() {
			for {
				if err := call(ctx); err != nil {
					cancel()
					errs <- err
					return
				}
				if !time.Now().Before(end) {
					errs <- nil
					return
				}
			}
		}()
	}
	var first error
	for range c {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("warm-up, %d workers: a call failed or did not complete within %v (a broken link): %w", c, warmUpLimit, first)
	}
	return nil
}

// closedLoop runs call from c workers, each starting its next call when
// the last returned, for d (calls in flight then finish) or until maxCalls
// calls were made, and records every latency. The first error ends the
// run and is returned.
func closedLoop(ctx context.Context, c int, d time.Duration, maxCalls int64, call func(context.Context) error) (loop, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		started  atomic.Int64
	)
	all := newHist()
	start := time.Now()
	end := start.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			defer func() {
				mu.Lock()
				all.Merge(h)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if maxCalls > 0 && started.Add(1) > maxCalls {
					return
				}
				if err := call(ctx); err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				_ = h.RecordValue(int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loop{}, firstErr
	}
	if all.TotalCount() == 0 {
		return loop{}, fmt.Errorf("no call completed in %v", d)
	}
	return loop{lat: all, calls: all.TotalCount(), elapsed: elapsed}, nil
}
