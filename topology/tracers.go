package topology

import (
	"context"
	"errors"
	"sync"

	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/tracing"
)

// Tracers gives every service of an in-process topology its own tracer
// provider (so that each has its own service.name), all feeding one
// Capture and, when an OTLP endpoint is set, exporting there too. Pass
// ServeOptions as Options.Tracing; Shutdown flushes and stops them.
type Tracers struct {
	capture   *tracing.Capture
	export    string
	ratio     float64
	mu        sync.Mutex
	providers map[string]serve.Options
	shutdowns []func(context.Context) error
	err       error
}

// NewTracers returns providers feeding capture and, unless export is "",
// the OTLP endpoint export (host:port or URL).
func NewTracers(capture *tracing.Capture, export string) *Tracers {
	return &Tracers{capture: capture, export: export, providers: map[string]serve.Options{}}
}

// WithSampleRatio makes the providers sample this fraction of new traces
// (spans with a parent follow it); the default, 0, samples every trace.
// Call it before the first ServeOptions.
func (t *Tracers) WithSampleRatio(ratio float64) *Tracers {
	t.ratio = ratio
	return t
}

// Export is the OTLP endpoint spans also go to; "" when none.
func (t *Tracers) Export() string { return t.export }

// ServeOptions returns the serve options of service, building its provider
// on first use. A provider that cannot be built leaves the service
// untraced; Err reports it.
func (t *Tracers) ServeOptions(service string) serve.Options {
	t.mu.Lock()
	defer t.mu.Unlock()
	if so, ok := t.providers[service]; ok {
		return so
	}
	p, shutdown, err := tracing.Setup(context.Background(), tracing.Config{Service: service, Capture: t.capture, OTLPEndpoint: t.export, SampleRatio: t.ratio})
	if err != nil {
		t.err = errors.Join(t.err, err)
		return serve.Options{}
	}
	so := serve.Options{TracerProvider: p.TracerProvider, Propagator: p.Propagator}
	t.providers[service] = so
	t.shutdowns = append(t.shutdowns, shutdown)
	return so
}

// Err reports the providers that could not be built.
func (t *Tracers) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Shutdown flushes every pending span and stops every provider. The
// providers stop at once, each with all of ctx: one flushing towards a
// collector that is gone does not use up the others' time. It may be
// called more than once; a nil Tracers does nothing.
func (t *Tracers) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := make([]error, len(t.shutdowns))
	var wg sync.WaitGroup
	for i, s := range t.shutdowns {
		wg.Go(func() { errs[i] = s(ctx) })
	}
	wg.Wait()
	t.shutdowns = nil
	return errors.Join(errs...)
}
