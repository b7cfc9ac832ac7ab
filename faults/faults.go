// Package faults is the fault vocabulary shared by experiment files and
// injectors: the kinds of fault, the attributes each takes, the targets they
// apply to, and the Injector interface that puts a fault on the system and
// takes it off again.
//
// Each fault kind is one file, kind_<name>.go: a type implementing KindDef
// (its Spec: target, attributes with units, bounds and defaults, doc) and
// the optional capabilities that say how it is checked and applied
// (Validator, ProxyKind, ProcessKind, ContainerKind). The kinds register
// themselves; the loader, the schema, the docs and the injectors read the
// registry (Specs, Lookup, As) and know no kind by name.
//
// A fault is data. Injecting it is the job of an Injector: faults/toxiproxy
// for network faults through the Toxiproxy API, faults/process for process
// faults, faults/container for container faults. This package itself does no
// I/O but reading small input files safely (ReadRegularFile) and the one
// fault journal of a run (Journal), which every injector writes to.
package faults

import (
	"context"
	"fmt"
	"time"
)

// MaxAttrMillis is the longest duration attribute, in milliseconds: ten
// minutes, the longest load an experiment may run.
const MaxAttrMillis = 10 * 60 * 1000

// Direction is the stream a toxic applies to, as Toxiproxy names them:
// upstream is client→server, downstream is server→client.
type Direction string

// Directions.
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
	Both       Direction = "both"
)

// Fault is one fault on the schedule.
type Fault struct {
	Name      string // unique in an experiment; shown in reports and the journal
	Kind      Kind
	Target    string
	Direction Direction // Both when unset
	Toxicity  float64   // 0 < t <= 1; 1 when unset
	Attrs     map[string]int64
	Text      map[string]string // the attributes of unit Text (a method name, a status code)
	At        time.Duration     // offset from the start of the run
	For       time.Duration     // 0: until the end of the run
}

// String describes the fault in one line for progress output, e.g.
// "latency on user (downstream) latency=300ms".
func (f Fault) String() string {
	s := fmt.Sprintf("%s on %s", f.Kind, f.Target)
	if spec, ok := Lookup(f.Kind); ok {
		if spec.Directional && f.Direction != "" {
			s += " (" + string(f.Direction) + ")"
		}
		for _, a := range spec.Attrs {
			switch v, ok := f.Attrs[a.Name]; {
			case a.Unit == Text:
				if t := f.Text[a.Name]; t != "" {
					s += fmt.Sprintf(" %s=%s", a.Name, t)
				}
			case !ok:
			case a.Unit == Fraction:
				s += fmt.Sprintf(" %s=%g", a.Name, float64(v)/FractionOne)
			case a.Unit == PerMillion || a.Unit == Choice:
				s += fmt.Sprintf(" %s=%s", a.Name, a.Written(v))
			case a.Unit == Count:
				s += fmt.Sprintf(" %s=%d", a.Name, v)
			default:
				s += fmt.Sprintf(" %s=%d%s", a.Name, v, a.Unit)
			}
		}
	}
	return s
}

// Applied is a fault that is on the system: what it takes to remove it.
type Applied struct {
	Fault   Fault
	Handles []string  // injector-specific ids, e.g. toxic names
	Start   time.Time // when it took effect
}

// Injector puts faults on a system and takes them off. Implementations are
// safe for concurrent use; Apply and Remove block until the system has
// acknowledged the change or ctx ends. Remove of an Applied that is already
// gone succeeds.
type Injector interface {
	Apply(ctx context.Context, f Fault) (Applied, error)
	Remove(ctx context.Context, a Applied) error
}
