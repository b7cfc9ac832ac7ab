package explore

import (
	"context"
	"slices"
	"time"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
)

// StepTime is where a search's time went: one step of the runs (the
// runner's steps, Options.Step) summed over every run of the search.
type StepTime struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"` // over every run
	Runs    int     `json:"runs"`    // runs that had the step
	Median  float64 `json:"median_seconds"`
	Max     float64 `json:"max_seconds"`
}

// clock sums the steps of the runs.
type clock struct {
	order []string
	took  map[string][]time.Duration
}

func (c *clock) add(step string, d time.Duration) {
	if c.took == nil {
		c.took = map[string][]time.Duration{}
	}
	if _, ok := c.took[step]; !ok {
		c.order = append(c.order, step)
	}
	c.took[step] = append(c.took[step], d)
}

// steps lists the steps in the order they first ran.
func (c *clock) steps() []StepTime {
	var out []StepTime
	for _, name := range c.order {
		ds := c.took[name]
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		out = append(out, StepTime{Step: name, Seconds: sum.Seconds(), Runs: len(ds),
			Median: percentile(ds, 0.5).Seconds(), Max: slices.Max(ds).Seconds()})
	}
	return out
}

// runTimed runs exp with h, adding its steps to the search's clock; the
// time the run took outside the runner's steps (rendering, judging,
// starting and ending the run) is its own step, "other".
func (s *search) runTimed(ctx context.Context, exp *definition.Experiment, h Hooks) (*report.Report, error) {
	var inSteps time.Duration
	h.Step = func(step string, took time.Duration) {
		s.mu.Lock()
		defer s.mu.Unlock()
		inSteps += took
		s.clock.add(step, took)
	}
	start := s.o.Now()
	rep, err := s.o.Run(ctx, exp, h)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock.add("other", max(0, s.o.Now().Sub(start)-inSteps))
	return rep, err
}
