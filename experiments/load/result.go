package load

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/experiments/check"
)

// Histogram bounds: microseconds from 1 µs to 60 s, 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(MaxTimeout / time.Microsecond)
	histDigits  = 3
)

// newHist returns an empty latency histogram in microseconds.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histLowest, histHighest, histDigits) }

// recordDuration records d, clamped to the histogram's range.
func recordDuration(h *hdrhistogram.Histogram, d time.Duration) {
	us := min(max(d.Microseconds(), 0), histHighest)
	_ = h.RecordValue(us) // in range by construction
}

// quantile returns the q-th percentile (0..100) of h, 0 when h is nil or
// empty.
func quantile(h *hdrhistogram.Histogram, q float64) time.Duration {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond
}

// codeNames are the gRPC code names in UPPER_SNAKE form.
var codeNames = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// CodeName returns the UPPER_SNAKE name of a gRPC code ("DEADLINE_EXCEEDED"),
// or "CODE_n" for a code gRPC does not define.
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// LatencySummary holds the usual quantiles of a latency distribution.
type LatencySummary struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P99   time.Duration `json:"p99"`
	P999  time.Duration `json:"p999"`
	Max   time.Duration `json:"max"`
	Mean  time.Duration `json:"mean"`
}

// summarize reads the summary of h (zero when h is nil).
func summarize(h *hdrhistogram.Histogram) LatencySummary {
	if h == nil || h.TotalCount() == 0 {
		return LatencySummary{}
	}
	return LatencySummary{
		Count: h.TotalCount(),
		P50:   quantile(h, 50),
		P90:   quantile(h, 90),
		P99:   quantile(h, 99),
		P999:  quantile(h, 99.9),
		Max:   time.Duration(h.Max()) * time.Microsecond,
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
	}
}

// Stats are the figures of one operation (or of all of them) in one phase.
// Latency counts every request sent, whatever its outcome, timed from its
// intended send time to its answer (or to the client giving up).
type Stats struct {
	// Requests counts requests sent (attempted); dropped arrivals are not
	// requests.
	Requests int64 `json:"requests"`
	// Successes counts requests answered OK.
	Successes int64 `json:"successes"`
	// Errors counts the other requests by gRPC code name in UPPER_SNAKE
	// form; requests the client gave up on count under the code it got
	// (usually DEADLINE_EXCEEDED or CANCELED).
	Errors map[string]int64 `json:"errors"`
	// Dropped counts arrivals not sent because MaxInFlight requests were
	// in flight.
	Dropped int64 `json:"dropped"`
	// Unknown counts requests whose outcome is unknown: the client gave up
	// (they are also in Errors).
	Unknown int64 `json:"unknown"`
	// Latency is the distribution in microseconds; use the accessors.
	Latency *hdrhistogram.Histogram `json:"-"`
	// InFlightMax is the most requests of the operation (of any operation,
	// for the all-operations Stats) in flight at once, sampled at sends.
	InFlightMax int64 `json:"in_flight_max"`
	// Throughput is successes per second over the phase's wall time.
	Throughput float64 `json:"throughput"`
}

// newStats returns empty stats.
func newStats() *Stats { return &Stats{Errors: map[string]int64{}, Latency: newHist()} }

// ErrorCount returns the number of requests not answered OK.
func (s *Stats) ErrorCount() int64 { return s.Requests - s.Successes }

// SuccessRate returns Successes/Requests, 0 when nothing was sent.
func (s *Stats) SuccessRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Successes) / float64(s.Requests)
}

// ErrorRate returns ErrorCount/Requests, 0 when nothing was sent.
func (s *Stats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.ErrorCount()) / float64(s.Requests)
}

// Quantile returns the q-th percentile latency, q in [0, 100].
func (s *Stats) Quantile(q float64) time.Duration { return quantile(s.Latency, q) }

// P50 returns the median latency.
func (s *Stats) P50() time.Duration { return s.Quantile(50) }

// P90 returns the 90th percentile latency.
func (s *Stats) P90() time.Duration { return s.Quantile(90) }

// P99 returns the 99th percentile latency.
func (s *Stats) P99() time.Duration { return s.Quantile(99) }

// P999 returns the 99.9th percentile latency.
func (s *Stats) P999() time.Duration { return s.Quantile(99.9) }

// Max returns the highest latency (to the histogram's precision).
func (s *Stats) Max() time.Duration {
	if s.Latency == nil {
		return 0
	}
	return time.Duration(s.Latency.Max()) * time.Microsecond
}

// Mean returns the mean latency.
func (s *Stats) Mean() time.Duration {
	if s.Latency == nil {
		return 0
	}
	return time.Duration(s.Latency.Mean() * float64(time.Microsecond))
}

// LatencySummary returns all quantiles at once.
func (s *Stats) LatencySummary() LatencySummary { return summarize(s.Latency) }

// MarshalJSON encodes the counts and the latency summary.
func (s *Stats) MarshalJSON() ([]byte, error) {
	type plain Stats
	return json.Marshal(struct {
		*plain
		LatencySummary LatencySummary `json:"latency"`
	}{(*plain)(s), summarize(s.Latency)})
}

// add records one completed request.
func (s *Stats) add(out Outcome, lat time.Duration, inFlight int64) {
	s.Requests++
	if out.Code == codes.OK {
		s.Successes++
	} else {
		s.Errors[CodeName(out.Code)]++
		if out.Unknown {
			s.Unknown++
		}
	}
	recordDuration(s.Latency, lat)
	s.InFlightMax = max(s.InFlightMax, inFlight)
}

// Phase holds the figures of one phase.
type Phase struct {
	// Wall is the schedule time classified into the phase.
	Wall time.Duration `json:"wall"`
	// Ops holds the figures of each operation.
	Ops map[Op]*Stats `json:"ops"`
	// Total holds the figures of all operations together.
	Total *Stats `json:"total"`
}

// newPhase returns an empty phase.
func newPhase() *Phase {
	p := &Phase{Ops: make(map[Op]*Stats, len(Ops)), Total: newStats()}
	for _, op := range Ops {
		p.Ops[op] = newStats()
	}
	return p
}

// SecondStats are the figures of one operation in one second of the run,
// by intended send time.
type SecondStats struct {
	Requests  int64         `json:"requests"`
	Successes int64         `json:"successes"`
	Errors    int64         `json:"errors"`
	Dropped   int64         `json:"dropped"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	// InFlight is the most requests of the operation in flight at once,
	// sampled at sends.
	InFlight int64 `json:"in_flight"`
}

// Second is one second of the run: arrivals intended in [Offset s,
// Offset+1 s).
type Second struct {
	Offset     int         `json:"offset"`
	Phase      string      `json:"phase"`
	PlaceOrder SecondStats `json:"place_order"`
	GetOrder   SecondStats `json:"get_order"`
}

// Op returns the figures of one operation.
func (s Second) Op(op Op) SecondStats {
	if op == OpGetOrder {
		return s.GetOrder
	}
	return s.PlaceOrder
}

// Result is everything a run measured.
type Result struct {
	RunID string    `json:"run_id"`
	Seed  int64     `json:"seed"`
	Start time.Time `json:"start"`
	// Duration is the schedule time the run covered: Config.Duration, or
	// less when the context ended first.
	Duration time.Duration `json:"duration"`
	// Elapsed is the wall time of Run, in-flight requests drained.
	Elapsed time.Duration `json:"elapsed"`
	// Canceled reports that the context ended before Duration.
	Canceled bool `json:"canceled"`
	// Scheduled counts arrivals: Sent + Dropped.
	Scheduled int64 `json:"scheduled"`
	Sent      int64 `json:"sent"`
	Dropped   int64 `json:"dropped"`
	// Achieved is the rate the requests really left at: the Sent−1 sends
	// after the first over SendWindow, per second (0 with fewer than two
	// sends). A generator that falls behind its schedule stretches the
	// window, so Achieved falls below Target whatever the count.
	Achieved float64 `json:"achieved"`
	// Target is the rate the schedule asked of the same requests: Sent−1
	// over the time between the first and the last one's intended send
	// times, per second. With a constant rate and nothing dropped it is
	// Config.Rate.
	Target float64 `json:"target"`
	// SendWindow is the time from the first request sent to the last.
	SendWindow time.Duration `json:"send_window"`
	// SendLag summarizes how late requests left: actual − intended.
	SendLag LatencySummary `json:"send_lag"`
	// Phases maps PhaseBefore, PhaseDuring, PhaseAfter and PhaseAll (always
	// present, maybe empty) and any other name Config.Phase returned to
	// the phase's figures.
	Phases map[string]*Phase `json:"phases"`
	// Seconds holds one entry per second of Config.Duration.
	Seconds []Second `json:"seconds"`
	// History holds one attempt per place_order request sent, in intended
	// order: the consistency checker's input.
	History []check.Attempt `json:"-"`
}

// Stats returns the figures of op in phase; op "" gives all operations
// together. It never returns nil: an unknown phase or op gives empty
// stats.
func (r *Result) Stats(phase string, op Op) *Stats {
	p := r.Phases[phase]
	if p == nil {
		return newStats()
	}
	if op == "" {
		return p.Total
	}
	if s := p.Ops[op]; s != nil {
		return s
	}
	return newStats()
}

// PhaseNames returns the names in Phases, sorted.
func (r *Result) PhaseNames() []string { return slices.Sorted(maps.Keys(r.Phases)) }
