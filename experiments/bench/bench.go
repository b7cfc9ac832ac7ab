// Package bench measures the testbed itself: how much a Toxiproxy hop adds,
// how exactly faults are injected, how much load the generator drives, what
// the whole order chain sustains with and without tracing, how fast the
// topologies start and how long the catalogue takes. `fallacies bench`
// runs it and writes BENCHMARKS.md.
//
// Every figure is measured Reps times and reported as the median with the
// range of the repetitions; overheads are ratios against a direct path
// measured in the same repetition, so that other load on a shared machine
// hits both sides alike. Every loop is bounded in time and runs on loopback.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Sections, in the order they run and appear.
const (
	SectionProxy     = "proxy"
	SectionInjection = "injection"
	SectionPacket    = "packet"
	SectionCalls     = "grpc-layer"
	SectionNATSLayer = "nats-layer"
	SectionLoad      = "load"
	SectionChain     = "chain"
	SectionTrace     = "trace"
	// SectionSoak runs only when named in Only: it takes Config.SoakFor.
	SectionSoak      = "soak"
	SectionStartup   = "startup"
	SectionCatalogue = "catalogue"
)

// Sections lists every section name.
var Sections = []string{SectionProxy, SectionInjection, SectionPacket, SectionCalls, SectionNATSLayer, SectionLoad, SectionChain, SectionStartup, SectionCatalogue, SectionTrace, SectionSoak}

// Config says what to measure and how often.
type Config struct {
	// Reps is how many times each figure is measured (at least 3 for a
	// median with a spread).
	Reps int
	// Only lists the sections to run; empty means all of them.
	Only []string
	// Binary is the fallacies executable: the processes topology's
	// services and the catalogue run are started from it.
	Binary string
	// GHZ is the ghz executable used to cross-check the load generator;
	// "" skips the cross-check (and says so in the report).
	GHZ string
	// Catalogue is the folder of experiment files run as one suite.
	Catalogue string
	// Compose also times the compose topology's start (needs Docker and
	// the images of `make images`).
	Compose bool
	// SoakFor is how long the soak section keeps `fallacies up` under
	// load (whole minutes, at least 2).
	SoakFor time.Duration
	// Profiles, when set, is a folder that receives the profiles behind the
	// figures: the CPU profile of every round of the trace section
	// (cpu-off-r0p0.pb.gz, cpu-on-r0p0.pb.gz, …) and the heap profile
	// after every round of the chain over time (heap-round-01.pb.gz, …),
	// for go tool pprof.
	Profiles string
	// Progress receives one line per measurement; nil discards them.
	Progress io.Writer
}

func (c Config) runs(section string) bool {
	if len(c.Only) == 0 {
		return section != SectionSoak // half an hour: only on request
	}
	return slices.Contains(c.Only, section)
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	if c.Reps < 1 || c.Reps > 20 {
		return fmt.Errorf("reps: %d, want 1 to 20 (3 or more for a spread)", c.Reps)
	}
	for _, s := range c.Only {
		if !slices.Contains(Sections, s) {
			return fmt.Errorf("section %q: unknown, want one of %s", s, strings.Join(Sections, ", "))
		}
	}
	if c.runs(SectionSoak) && c.SoakFor < 2*time.Minute {
		return fmt.Errorf("soak: %v, want at least 2m", c.SoakFor)
	}
	if c.runs(SectionCatalogue) && c.Catalogue == "" {
		return fmt.Errorf("catalogue: no folder of experiments given")
	}
	return nil
}

// Report is the outcome of a benchmark run.
type Report struct {
	Start    time.Time
	Elapsed  time.Duration
	Machine  string
	Go       string
	Reps     int
	Sections []*Section
}

// Section is one table of the report.
type Section struct {
	Title   string
	Intro   string
	Header  []string
	Rows    [][]string
	Notes   []string
	Targets []Target
}

// Target is one budget and whether the measured figure kept it.
type Target struct {
	What     string
	Measured string
	Met      bool
}

func (s *Section) row(cells ...string) { s.Rows = append(s.Rows, cells) }

func (s *Section) target(what, measured string, met bool) {
	s.Targets = append(s.Targets, Target{What: what, Measured: measured, Met: met})
}

func (s *Section) note(format string, a ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, a...)) }

// Run measures every configured section in turn. A section that cannot run
// in this environment (no Docker, no ghz) says so in its notes; an error
// that makes a figure meaningless ends the run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Report{Start: time.Now(), Machine: machine(), Go: runtime.Version(), Reps: cfg.Reps}
	b := &bench{cfg: cfg, progress: cfg.Progress}
	if b.progress == nil {
		b.progress = io.Discard
	}
	steps := []struct {
		name string
		run  func(context.Context) ([]*Section, error)
	}{
		{SectionProxy, one(b.proxyOverhead)},
		{SectionInjection, one(b.injectionAccuracy)},
		{SectionPacket, one(b.packetFaults)},
		{SectionCalls, one(b.callLayer)},
		{SectionNATSLayer, one(b.natsLayer)},
		{SectionLoad, one(b.loadGenerator)},
		{SectionChain, b.fullChain},
		{SectionStartup, one(b.startup)},
		{SectionCatalogue, one(b.catalogue)},
		{SectionTrace, b.tracingCost},
		{SectionSoak, one(b.soak)},
	}
	for _, st := range steps {
		if !cfg.runs(st.name) {
			continue
		}
		s, err := st.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
		r.Sections = append(r.Sections, s...)
	}
	r.Elapsed = time.Since(r.Start)
	return r, nil
}

// one adapts a step that writes one section.
func one(run func(context.Context) (*Section, error)) func(context.Context) ([]*Section, error) {
	return func(ctx context.Context) ([]*Section, error) {
		s, err := run(ctx)
		if err != nil {
			return nil, err
		}
		return []*Section{s}, nil
	}
}

// bench carries what the sections share.
type bench struct {
	cfg      Config
	progress io.Writer
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", a...)
}

// machine describes the CPU this runs on.
func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(value)
				break
			}
		}
	}
	s := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if model != "" {
		s += " (" + model + ")"
	}
	return s
}

// Markdown renders the report as BENCHMARKS.md.
func (r *Report) Markdown() []byte {
	var w strings.Builder
	fmt.Fprintf(&w, "# Benchmarks\n\n")
	fmt.Fprintf(&w, "Written by `make bench` (`fallacies bench`) on %s, in %s.\n\n", r.Start.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second))
	fmt.Fprintf(&w, "- Machine: %s\n- Go: %s\n- Repetitions: %d; every figure is the median of the repetitions, with their range in brackets: `median (min–max)`.\n\n", r.Machine, r.Go, r.Reps)
	fmt.Fprintf(&w, "The machine is shared and noisy: compare figures within one run (the ratios), not across runs.\n\n")
	fmt.Fprintf(&w, "## Targets\n\n| target | measured | kept |\n|---|---|---|\n")
	for _, s := range r.Sections {
		for _, t := range s.Targets {
			mark := "yes"
			if !t.Met {
				mark = "**no**"
			}
			fmt.Fprintf(&w, "| %s | %s | %s |\n", t.What, t.Measured, mark)
		}
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&w, "\n## %s\n\n%s\n\n", s.Title, s.Intro)
		if len(s.Rows) > 0 {
			fmt.Fprintf(&w, "| %s |\n|%s\n", strings.Join(s.Header, " | "), strings.Repeat("---|", len(s.Header)))
			for _, row := range s.Rows {
				fmt.Fprintf(&w, "| %s |\n", strings.Join(row, " | "))
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&w, "\n%s\n", n)
		}
	}
	return []byte(w.String())
}

// Missed returns the targets the run did not keep.
func (r *Report) Missed() []Target {
	var out []Target
	for _, s := range r.Sections {
		for _, t := range s.Targets {
			if !t.Met {
				out = append(out, t)
			}
		}
	}
	return out
}
