package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Components of the full chain that a CPU profile's samples are charged to.
const (
	compTracing      = "tracing (OpenTelemetry API, recorder, gRPC interceptors, capture)"
	compProxies      = "proxies (Toxiproxy)"
	compOrder        = "order service"
	compUser         = "user service"
	compPayment      = "payment service"
	compConsumers    = "consumers (notification, ledger)"
	compNATSServer   = "NATS server (JetStream)"
	compNATSClient   = "NATS client library"
	compLoad         = "load generator (bench clients)"
	compGC           = "garbage collector (background)"
	compTransport    = "gRPC transport and runtime, not attributed"
	componentsPrefix = "github.com/fallacies/fallacies/"
)

// componentOrder is the order the breakdown lists components in.
var componentOrder = []string{compTracing, compProxies, compOrder, compUser, compPayment, compConsumers, compNATSServer, compNATSClient, compLoad, compGC, compTransport}

// componentRules map a function name prefix to its component. A sample is
// charged to the component of the frame nearest its leaf that matches a
// rule; shared service plumbing (serve, resilience, events, store) matches
// none, so its time goes to the service that called it.
var componentRules = []struct{ prefix, component string }{
	{"go.opentelemetry.io/", compTracing},
	{componentsPrefix + "tracing.", compTracing},
	// The gRPC tracing interceptors' own work, not the calls they wrap
	// (those frames sit above the whole call).
	{componentsPrefix + "services/serve.(*rpcTracing).start", compTracing},
	{componentsPrefix + "services/serve.(*rpcTracing).inject", compTracing},
	{componentsPrefix + "services/serve.(*rpcTracing).serverSpan", compTracing},
	{componentsPrefix + "services/serve.endSpan", compTracing},
	{componentsPrefix + "services/serve.serverAddr", compTracing},
	{componentsPrefix + "services/serve.incomingCarrier", compTracing},
	{componentsPrefix + "services/serve.(*outgoingCarrier)", compTracing},
	{"github.com/Shopify/toxiproxy/", compProxies},
	{componentsPrefix + "services/order.", compOrder},
	{componentsPrefix + "services/user.", compUser},
	{componentsPrefix + "services/payment.", compPayment},
	{componentsPrefix + "services/consumer.", compConsumers},
	{componentsPrefix + "services/notification.", compConsumers},
	{componentsPrefix + "services/ledger.", compConsumers},
	{"github.com/nats-io/nats-server/", compNATSServer},
	{"github.com/nats-io/nats.go", compNATSClient},
	{componentsPrefix + "experiments/bench.", compLoad},
	{componentsPrefix + "experiments/load.", compLoad},
	{"runtime.gcBgMarkWorker", compGC},
}

// componentOf returns the component a stack (leaf first) is charged to.
func componentOf(funcs []string) string {
	for _, f := range funcs {
		for _, r := range componentRules {
			if strings.HasPrefix(f, r.prefix) {
				return r.component
			}
		}
	}
	return compTransport
}

// cpuProfile records this process's CPU profile until stop is called.
type cpuProfile struct{ buf bytes.Buffer }

// startCPUProfile starts profiling; it fails when a profile is already
// being recorded (go test -cpuprofile, say).
func startCPUProfile() (*cpuProfile, error) {
	p := &cpuProfile{}
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return p, nil
}

// stop ends the profile and returns each component's share of the CPU time
// sampled (shares sum to 1). With save, the profile is also written there.
func (p *cpuProfile) stop(save string) (map[string]float64, error) {
	pprof.StopCPUProfile()
	if save != "" {
		if err := os.WriteFile(save, p.buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("save CPU profile: %w", err)
		}
	}
	prof, err := profile.Parse(&p.buf)
	if err != nil {
		return nil, fmt.Errorf("read CPU profile: %w", err)
	}
	return componentShares(prof)
}

// componentShares charges every sample of a CPU profile to a component.
func componentShares(prof *profile.Profile) (map[string]float64, error) {
	byComp, total, err := chargeByStack(prof, "cpu", componentOf)
	if err != nil {
		return nil, fmt.Errorf("read CPU profile: %w", err)
	}
	if total == 0 {
		return nil, fmt.Errorf("read CPU profile: no samples in %v", time.Duration(prof.DurationNanos))
	}
	for k := range byComp {
		byComp[k] /= total
	}
	return byComp, nil
}

// chargeByStack sums the values of type typ of prof's samples by the class
// that classify gives each sample's stack (function names, leaf first,
// inlined frames included), and returns the sums and their total.
func chargeByStack(prof *profile.Profile, typ string, classify func(funcs []string) string) (map[string]float64, float64, error) {
	idx := slices.IndexFunc(prof.SampleType, func(t *profile.ValueType) bool { return t.Type == typ })
	if idx < 0 {
		return nil, 0, fmt.Errorf("no %s samples", typ)
	}
	byClass := map[string]float64{}
	var total float64
	var funcs []string
	for _, s := range prof.Sample {
		funcs = funcs[:0]
		for _, loc := range s.Location {
			for _, line := range loc.Line { // innermost (inlined) first
				if line.Function != nil {
					funcs = append(funcs, line.Function.Name)
				}
			}
		}
		v := float64(s.Value[idx])
		byClass[classify(funcs)] += v
		total += v
	}
	return byClass, total, nil
}

// profilePath is where a profile named name goes, "" when profiles are
// not kept.
func (b *bench) profilePath(name string) string {
	if b.cfg.Profiles == "" {
		return ""
	}
	return filepath.Join(b.cfg.Profiles, name)
}

// saveHeapProfile writes the heap profile (after the collection the caller
// forced) as name, when profiles are kept.
func (b *bench) saveHeapProfile(name string) error {
	path := b.profilePath(name)
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("save heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("save heap profile %s: %w", path, err)
	}
	return f.Close()
}
