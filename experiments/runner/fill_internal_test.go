package runner

import (
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/fallacies/fallacies/experiments/load"
)

// phaseStats is a phase of requests with the given latencies in ms.
func phaseStats(lats ...int) *load.Stats {
	st := &load.Stats{Latency: hdrhistogram.New(1, int64(load.MaxTimeout/time.Microsecond), 3)}
	for _, ms := range lats {
		_ = st.Latency.RecordValue(int64(ms) * 1000)
		st.Requests++
		st.Successes++
	}
	return st
}

// Each phase counts its requests slower than the before phase's p99 and
// p999: 1 ms to 1,000 ms before has 10 above its p99 (990 ms) and 1 above
// its p999; a phase with 20 requests stalled 5 s has those 20 above both.
func TestPhaseReportCountsOverTheBeforeTail(t *testing.T) {
	var b, d []int
	for ms := 1; ms <= 1000; ms++ {
		b = append(b, ms)
		if ms <= 980 {
			d = append(d, ms)
		}
	}
	for range 20 {
		d = append(d, 5000)
	}
	before, during := phaseStats(b...), phaseStats(d...)
	for _, c := range []struct {
		name            string
		st              *load.Stats
		over99, over999 int64
	}{{"before", before, 10, 1}, {"during", during, 20, 20}, {"empty", phaseStats(), 0, 0}} {
		p := phaseReport(c.st, before)
		if p.OverBeforeP99 == nil || p.OverBeforeP999 == nil || *p.OverBeforeP99 != c.over99 || *p.OverBeforeP999 != c.over999 {
			t.Errorf("%s: over the before p99 %v, p999 %v; want %d, %d", c.name, p.OverBeforeP99, p.OverBeforeP999, c.over99, c.over999)
		}
	}
	if p := phaseReport(during, phaseStats()); p.OverBeforeP99 != nil {
		t.Errorf("no requests before: counted %d, want none", *p.OverBeforeP99)
	}
}
