package explore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fallacies/fallacies/experiments/definition"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/tracing"
)

// baseline runs the fault-free load with full tracing, builds the graph
// from its spans, and keeps the hypotheses of --from that hold without
// any fault (each judged over the whole baseline: one that fails there
// is about the file's own faults, not about the system).
func (s *search) baseline(ctx context.Context) error {
	// Render judges the hypotheses of a phase over the baseline's one.
	exp, _, err := s.experiment("explore-baseline", Scenario{}, s.setup)
	if err != nil {
		return err
	}
	s.sys = exp.Variants[0].System
	s.progress("baseline (fault-free, every span)")
	var spans []tracing.Span
	var proxies map[string]string
	var rep *report.Report
	// A steady state that fails without any fault is the machine's
	// (another load on it): tried three times before giving up.
	for attempt := 0; attempt < 3; attempt++ {
		rep, err = s.runTimed(ctx, exp, Hooks{Spans: func(_ string, sp []tracing.Span, px map[string]string) { spans, proxies = sp, px }})
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		if ctx.Err() != nil || judge(rep).note == "" || !strings.HasPrefix(judge(rep).note, "steady state") {
			break
		}
	}
	if rep.Interrupted != nil {
		return fmt.Errorf("baseline: %s", rep.Interrupted.Reason)
	}
	if len(rep.Variants) != 1 || rep.Variants[0].Error != "" {
		return fmt.Errorf("baseline: the testbed failed: %s", rep.Error+variantError(rep.Variants))
	}
	var broken []string
	for _, h := range rep.Variants[0].Hypotheses {
		if h.Passed || h.Skipped {
			continue
		}
		i := slices.IndexFunc(s.setup.Hypotheses, func(x definition.Hypothesis) bool { return x.Name == h.Name })
		if i < 0 { // a default invariant: the system breaks it with no fault
			broken = append(broken, fmt.Sprintf("%s (%s): observed %s", h.Name, h.Expr, h.Observed))
			continue
		}
		s.res.Dropped = append(s.res.Dropped, DroppedHypothesis{Name: h.Name, Check: h.Expr, Observed: h.Observed})
		s.setup.Hypotheses = slices.Delete(s.setup.Hypotheses, i, i+1)
	}
	if len(broken) > 0 {
		return fmt.Errorf("baseline: without any fault the system already fails %v; nothing a fault does could be told apart (a slower machine? try a lower --rate)", broken)
	}
	for _, h := range s.setup.Hypotheses {
		s.res.Hypotheses = append(s.res.Hypotheses, fmt.Sprintf("%s: %s (%s)", h.When, h.Check, h.Name))
	}
	s.res.Graph = BuildGraph(spans, proxies)
	if s.res.Graph.Successes == 0 {
		return fmt.Errorf("baseline: %w (%d order traces)", errNoOrders, s.res.Graph.Orders)
	}
	return nil
}

func variantError(vs []reportVariant) string {
	for _, v := range vs {
		if v.Error != "" {
			return v.Error
		}
	}
	return ""
}

func (s *search) sysOf() config.System { return s.sys }
