package runner

import (
	"fmt"
	"github.com/fallacies/fallacies/experiments/metrics"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
)

// TestConsumerSeriesBacklog checks the per-second arithmetic on a consumer
// that stalls: three events published in second 0, one applied at once,
// one redelivered and applied twice in second 2, one applied in second 3.
func TestConsumerSeriesBacklog(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) int64 { return start.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	exp := &definition.Experiment{Load: definition.Workload{Duration: 2 * time.Second, Drain: 5 * time.Second}}
	obs := &observation{
		publishedAt: map[string]time.Time{
			"a": time.Unix(0, at(100)), "b": time.Unix(0, at(200)), "c": time.Unix(0, at(300)),
		},
		applied: map[string][]*consumerv1.Application{"ledger": {
			{OrderId: "a", PublishedUnixNano: at(100), AppliedUnixNano: at(150)},
			{OrderId: "b", PublishedUnixNano: at(200), AppliedUnixNano: at(2500)},
			{OrderId: "b", PublishedUnixNano: at(200), AppliedUnixNano: at(2600)}, // a duplicate: not applied twice
			{OrderId: "c", PublishedUnixNano: at(300), AppliedUnixNano: at(3100)},
		}},
	}
	got := consumerSeries(exp, obs, start)
	if len(got) != 1 || got[0].Consumer != "ledger" {
		t.Fatalf("series = %+v", got)
	}
	want := []report.ConsumerSecond{
		{T: 0, Published: 3, Applied: 1, LagEvents: 2, LagMs: 800}, // b waited 0.8 s at the end of second 0
		{T: 1, LagEvents: 2, LagMs: 1800},
		{T: 2, Applied: 1, LagEvents: 1, LagMs: 2700}, // c is left
		{T: 3, Applied: 1},
	}
	if s := got[0].Seconds; len(s) != len(want) {
		t.Fatalf("seconds = %+v, want %+v", s, want)
	}
	for i, w := range want {
		if g := got[0].Seconds[i]; g != w {
			t.Errorf("second %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestMechanismsInReportOrder(t *testing.T) {
	reading := func(userFallbacks, payRetries, hedges, won, dups int64) *metrics.Counters {
		return &metrics.Counters{
			Links: map[string]metrics.LinkCounters{
				"user":    {Fallbacks: userFallbacks, Deadlines: userFallbacks},
				"payment": {Retries: payRetries, HedgesSent: hedges, HedgesWon: won},
			},
			Consumers: map[string]metrics.ConsumerCounters{"ledger": {DuplicatesRecognised: dups}, "notification": {}},
		}
	}
	// A system up before the run (a --target) had counted 94 fallbacks
	// and a duplicate already: not this run's.
	pc := newPhaseCounters()
	pc.mark(string(definition.Before), reading(94, 0, 0, 0, 1), nil)
	pc.mark(string(definition.During), reading(94, 2, 0, 0, 1), nil)
	pc.mark(string(definition.After), reading(588, 7, 3, 2, 1), nil)
	pc.mark(metrics.End, reading(588, 7, 3, 2, 5), nil)
	got := mechanisms(pc)
	want := []report.Mechanism{
		{Kind: report.MechanismFallback, Where: "order.user", Count: 494, Phases: map[string]int64{"before": 0, "during": 494, "after": 0}},
		{Kind: report.MechanismRetry, Where: "order.payment", Count: 7, Phases: map[string]int64{"before": 2, "during": 5, "after": 0}},
		{Kind: report.MechanismDeadline, Where: "order.user", Count: 494, Phases: map[string]int64{"before": 0, "during": 494, "after": 0}},
		{Kind: report.MechanismHedge, Where: "order.payment", Count: 3, Phases: map[string]int64{"before": 0, "during": 3, "after": 0}},
		{Kind: report.MechanismHedgeWon, Where: "order.payment", Count: 2, Phases: map[string]int64{"before": 0, "during": 2, "after": 0}},
		{Kind: report.MechanismDuplicateSkipped, Where: "ledger", Count: 4, Phases: map[string]int64{"before": 0, "during": 0, "after": 4}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("mechanisms =\n%v\nwant\n%v", got, want)
	}
	if m := mechanisms(newPhaseCounters()); m != nil {
		t.Errorf("without readings: %v, want nothing", m)
	}
}
