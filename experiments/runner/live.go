package runner

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/experiments/load"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/tracing"
)

// Live is what a page showing a run in progress is told of it (the
// console of `fallacies run --console`). The runner calls its functions
// from its own goroutines, some on the path of the load: they must return
// at once. Any of them may be nil. It only watches: nothing it is told
// can change the run.
type Live struct {
	// Variant is called once a variant's system is up and its faults are
	// armed, right before its load starts.
	Variant func(LiveVariant)
	// Progress is called about once a second while the load runs: the
	// phase, the time gone and the load's whole duration.
	Progress func(load.Snapshot)
	// Completed is called as each request of the load completes: when,
	// its latency from its intended send time (open loop), whether it
	// succeeded.
	Completed func(at time.Time, latency time.Duration, ok bool)
	// Fault is called once the schedule has put a fault on (on) or taken
	// it off, with the time that took effect.
	Fault func(f faults.Fault, on bool, at time.Time)
}

// LiveVariant is one variant of a run as its load starts.
type LiveVariant struct {
	Experiment string
	Variant    string
	Index, Of  int               // Index counts from 0
	Proxies    map[string]string // its system's proxies: name → listen address
	// Spans returns the spans its services ended since the last call;
	// the run keeps them for its report all the same (tracing.Capture.From).
	Spans func() []tracing.Span
}

// liveVariant tells o.Live that vr's load is about to start.
func (vr *variantRun) liveVariant() {
	l := vr.opts.Live
	if l == nil || l.Variant == nil {
		return
	}
	capture, pos := vr.capture, 0
	if capture != nil {
		_, pos = capture.From(capture.Len()) // from now on: the spans of the load
	}
	l.Variant(LiveVariant{
		Experiment: vr.exp.Name, Variant: vr.variant.Name, Index: vr.index, Of: vr.of, Proxies: vr.ep.Proxies,
		Spans: func() []tracing.Span {
			if capture == nil {
				return nil
			}
			var spans []tracing.Span
			spans, pos = capture.From(pos)
			return spans
		},
	})
}

// liveDoer tells o.Live of each request doer completes.
func (o Options) liveDoer(doer load.Doer) load.Doer {
	if o.Live == nil || o.Live.Completed == nil {
		return doer
	}
	done := o.Live.Completed
	return load.DoerFunc(func(ctx context.Context, r load.Request) load.Outcome {
		out := doer.Do(ctx, r)
		now := time.Now()
		done(now, now.Sub(r.Intended), out.Code == codes.OK)
		return out
	})
}

// liveInjector tells o.Live of each fault inj puts on or takes off.
type liveInjector struct {
	faults.Injector
	tell func(f faults.Fault, on bool, at time.Time)
}

func (o Options) liveInjector(inj faults.Injector) faults.Injector {
	if o.Live == nil || o.Live.Fault == nil {
		return inj
	}
	return liveInjector{inj, o.Live.Fault}
}

func (l liveInjector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	a, err := l.Injector.Apply(ctx, f)
	if err == nil {
		at := a.Start
		if at.IsZero() {
			at = time.Now()
		}
		l.tell(f, true, at)
	}
	return a, err
}

func (l liveInjector) Remove(ctx context.Context, a faults.Applied) error {
	err := l.Injector.Remove(ctx, a)
	if err == nil {
		l.tell(a.Fault, false, time.Now())
	}
	return err
}
