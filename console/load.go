package console

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/experiments/load"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// Bounds of the page's load.
const (
	MaxLoadRate     = 1000             // orders per second
	MaxLoadDuration = load.MaxDuration // a load stops by itself after this
	loadTimeout     = 10 * time.Second // per order
	seriesKeep      = 180              // seconds of chart
)

// loadDriver runs the page's constant-rate load with the open-loop
// generator (load.Run) and keeps its figures per second of completion.
type loadDriver struct {
	order orderv1.OrderServiceClient

	mu      sync.Mutex
	cancel  context.CancelFunc // nil when no load runs
	done    chan struct{}
	rate    float64
	started time.Time
	runs    int
	lastErr string
	seconds map[int64]*second // by Unix second of completion
}

// second is what completed in one second of wall time.
type second struct {
	lat    []time.Duration // from the intended send time: an open-loop latency
	failed int
}

func newLoadDriver(order orderv1.OrderServiceClient) *loadDriver {
	return &loadDriver{order: order, seconds: map[int64]*second{}}
}

// loadRequest is the body of POST /api/load.
type loadRequest struct {
	Rate     float64 `json:"rate"`     // orders per second
	Duration string  `json:"duration"` // Go duration; default and at most 1h
}

// start begins a load at the requested rate; a load already running is
// replaced.
func (d *loadDriver) start(req loadRequest) error {
	if !(req.Rate > 0 && req.Rate <= MaxLoadRate) {
		return badf("rate %v: want more than 0 and at most %d orders per second", req.Rate, MaxLoadRate)
	}
	dur := MaxLoadDuration
	if req.Duration != "" {
		v, err := time.ParseDuration(req.Duration)
		if err != nil || v <= 0 || v > MaxLoadDuration {
			return badf("duration %q: want a duration above 0 and at most %v, e.g. 2m", req.Duration, MaxLoadDuration)
		}
		dur = v
	}
	d.stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs++
	cfg := load.Config{
		Rate: req.Rate, Duration: dur, MaxInFlight: max(64, int(req.Rate*loadTimeout.Seconds())),
		Timeout: loadTimeout, Users: 100, Seed: time.Now().UnixNano(),
		RunID: fmt.Sprintf("console-%d-%d", time.Now().Unix(), d.runs),
	}
	if err := cfg.Validate(); err != nil {
		return badf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.cancel, d.done, d.rate, d.started, d.lastErr = cancel, done, req.Rate, time.Now(), ""
	doer := load.NewOrderDoer(d.order, loadTimeout)
	go func() {
		defer close(done)
		_, err := load.Run(ctx, cfg, load.DoerFunc(func(ctx context.Context, r load.Request) load.Outcome {
			out := doer.Do(ctx, r)
			d.record(time.Now(), time.Since(r.Intended), out.Code == codes.OK)
			return out
		}))
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.lastErr = err.Error()
		}
		if d.done == done {
			d.cancel, d.done = nil, nil
		}
		cancel()
	}()
	return nil
}

// stop ends the load, if one runs, and waits for its requests.
func (d *loadDriver) stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel, d.done = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// record counts one completed order.
func (d *loadDriver) record(now time.Time, lat time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.seconds[now.Unix()]
	if s == nil {
		s = &second{}
		d.seconds[now.Unix()] = s
	}
	if ok {
		s.lat = append(s.lat, lat)
	} else {
		s.failed++
	}
}

// point is one second of the chart.
type point struct {
	T       int64   `json:"t"` // Unix second
	N       int     `json:"n"` // completed
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Success float64 `json:"success"` // share of the completed that succeeded, 0..1
}

// loadView is the load as the page shows it.
type loadView struct {
	Running bool      `json:"running"`
	Rate    float64   `json:"rate"`
	Since   time.Time `json:"since,omitzero"`
	Error   string    `json:"error,omitempty"`
	Series  []point   `json:"series"` // complete seconds, oldest first
}

// view returns the load's state and the chart's complete seconds up to
// now (the current second is still filling).
func (d *loadDriver) view(now time.Time) loadView {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := loadView{Running: d.cancel != nil, Rate: d.rate, Error: d.lastErr, Series: []point{}}
	if v.Running {
		v.Since = d.started
	}
	cur := now.Unix()
	for t := range d.seconds {
		if t <= cur-seriesKeep {
			delete(d.seconds, t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(d.seconds)) {
		if t >= cur {
			continue
		}
		s := d.seconds[t]
		p := point{T: t, N: len(s.lat) + s.failed}
		slices.Sort(s.lat)
		p.P50, p.P99 = millis(quantile(s.lat, 0.50)), millis(quantile(s.lat, 0.99))
		if p.N > 0 {
			p.Success = float64(len(s.lat)) / float64(p.N)
		}
		v.Series = append(v.Series, p)
	}
	return v
}
