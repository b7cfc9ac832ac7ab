package faults

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// Kind names a fault kind, as experiment files write it.
type Kind string

// KindDef is one fault kind. Each kind is one file of this package
// (kind_<name>.go) holding a type that implements KindDef and registers
// itself from init with register. Everything else reads the registry:
// the loader and the JSON Schema (experiments/definition), the docs and
// the injectors, which find how to apply a kind through the optional
// capabilities below (As).
//
// Optional capabilities of a KindDef:
//   - Validator: rules between its attributes, beyond each one's bounds;
//   - ProxyKind: applied by faults/toxiproxy on a proxy (a toxic per
//     stream, or the proxy disabled);
//   - ProcessKind: applied by faults/process on a service process;
//   - ContainerKind: applied by faults/container on a compose container.
type KindDef interface {
	Spec() Spec
}

// Spec is what a kind declares about itself: everything the loader, the
// schema and the docs need.
type Spec struct {
	Kind   Kind
	Target TargetKind
	// Directional kinds take direction and toxicity: they act on one
	// stream or both, on a share of the connections (Toxiproxy toxics).
	Directional bool
	Attrs       []Attr
	Doc         string   // one line: what it does
	Synonyms    []string // words people write for it (delay for latency), for did-you-mean hints
}

// Attr describes one attribute of a fault kind.
type Attr struct {
	Name    string // as in experiment files (and Toxiproxy's API)
	Unit    Unit
	Default int64
	Doc     string
	// Min and Max bound the value, in Unit, inclusive: the range the
	// kind's implementation survives (outside it Toxiproxy panics,
	// overflows or loops forever). Experiment files are checked against
	// them and the JSON Schema carries them.
	Min, Max int64
	// Required attributes have no default: a fault of the kind must set
	// them. Example is the value suggested when one is missing, as
	// written in a file (300ms).
	Required bool
	Example  string
	// Values are the words a Text attribute may take (an enum); none:
	// any text matching Pattern.
	Values []string
	// Pattern is the regular expression a Text attribute without Values
	// must match; "" for any text.
	Pattern string
	// Choices are the words a Choice attribute is written as; its value
	// is the index of the word.
	Choices []string
}

// Unit is how an attribute's value is written and stored.
type Unit string

// Attribute units. Durations are stored in milliseconds, the unit
// Toxiproxy's API takes.
const (
	Millis       Unit = "ms"    // written as a duration: 300ms, 1s
	Microseconds Unit = "us"    // written as a duration: 500us
	KBps         Unit = "KB/s"  // written as a number of kilobytes per second
	Bytes        Unit = "bytes" // written as a number of bytes
	Count        Unit = "count" // written as a whole number
	// Fraction is written as a number from 0 to 1 (0.3) and stored in
	// millionths: FractionOne is 1.
	Fraction Unit = "fraction"
	// Text is written as a string and stored in Fault.Text, not Attrs.
	Text Unit = "text"
)

// FractionOne is the stored value of a Fraction of 1.
const FractionOne = 1_000_000

// Validator is the optional capability of a kind with rules between its
// attributes. Validate gets a value for every attribute (the defaults
// filled in, each within its bounds) and names the attribute at fault.
type Validator interface {
	Validate(attrs map[string]int64) (attr string, err error)
}

// ProxyKind is the optional capability of a kind that faults/toxiproxy
// applies on a proxy.
type ProxyKind interface {
	// OnProxy says what applying a fault with attrs (a value for every
	// attribute, checked) does to the proxy.
	OnProxy(attrs map[string]int64) ProxyAction
}

// ProxyAction is what a fault does to a Toxiproxy proxy: a toxic on each
// stream of the fault's direction, or the proxy disabled.
type ProxyAction struct {
	Toxic      string           // Toxiproxy toxic type; "" for none
	Attributes map[string]int64 // the toxic's attributes, in its API's units
	Disable    bool             // disable the proxy: connections refused, open ones cut
}

// registered holds every kind by name.
var registered = map[Kind]entry{}

type entry struct {
	spec Spec
	def  KindDef
}

// register adds a kind; a kind file calls it from init. Two kinds of one
// name, or a spec that contradicts itself, panic at start-up.
func register(d KindDef) {
	s := d.Spec()
	if _, dup := registered[s.Kind]; dup {
		panic(fmt.Sprintf("faults: kind %q registered twice", s.Kind))
	}
	if err := s.selfCheck(); err != nil {
		panic(fmt.Sprintf("faults: kind %q: %v", s.Kind, err))
	}
	registered[s.Kind] = entry{spec: s, def: d}
}

// selfCheck reports a spec no fault could satisfy.
func (s Spec) selfCheck() error {
	if s.Kind == "" || s.Doc == "" {
		return fmt.Errorf("no name or doc")
	}
	if _, ok := targets[s.Target]; !ok {
		return fmt.Errorf("unknown target kind %q", s.Target)
	}
	for _, a := range s.Attrs {
		switch {
		case a.Min > a.Max:
			return fmt.Errorf("attribute %s: min %d above max %d", a.Name, a.Min, a.Max)
		case !a.Required && (a.Default < a.Min || a.Default > a.Max):
			return fmt.Errorf("attribute %s: default %d out of bounds", a.Name, a.Default)
		case a.Unit == Choice && (a.Min != 0 || a.Max != int64(len(a.Choices))-1):
			return fmt.Errorf("attribute %s: a choice's bounds are 0 and its last word", a.Name)
		case a.Required && a.Example == "":
			return fmt.Errorf("attribute %s: required without an example", a.Name)
		case (len(a.Values) > 0 || a.Pattern != "") && a.Unit != Text:
			return fmt.Errorf("attribute %s: values or a pattern on a %s attribute", a.Name, a.Unit)
		}
	}
	return nil
}

// Specs returns every fault kind: those on proxies, then on processes,
// then on containers, each group by name.
func Specs() []Spec {
	out := make([]Spec, 0, len(registered))
	for _, e := range registered {
		out = append(out, e.spec)
	}
	slices.SortFunc(out, func(a, b Spec) int {
		return cmp.Or(cmp.Compare(targets[a.Target].rank, targets[b.Target].rank), cmp.Compare(a.Kind, b.Kind))
	})
	for i := range out {
		out[i].Attrs = slices.Clone(out[i].Attrs)
	}
	return out
}

// Lookup returns the spec of a kind.
func Lookup(k Kind) (Spec, bool) {
	e, ok := registered[k]
	e.spec.Attrs = slices.Clone(e.spec.Attrs)
	return e.spec, ok
}

// As returns kind k's definition as the capability C (ProxyKind,
// Validator, …) when it has it.
func As[C any](k Kind) (C, bool) {
	c, ok := registered[k].def.(C)
	return c, ok
}

// Attr returns the named attribute of the kind.
func (s Spec) Attr(name string) (Attr, bool) {
	for _, a := range s.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// AttrNames lists the names of the kind's attributes, in order.
func (s Spec) AttrNames() []string {
	var out []string
	for _, a := range s.Attrs {
		out = append(out, a.Name)
	}
	return out
}

// WithDefaults returns attrs with every attribute of the kind it lacks set
// to its default.
func (s Spec) WithDefaults(attrs map[string]int64) map[string]int64 {
	out := maps.Clone(attrs)
	if out == nil {
		out = map[string]int64{}
	}
	for _, a := range s.Attrs {
		if _, ok := out[a.Name]; !ok && a.Unit != Text {
			out[a.Name] = a.Default
		}
	}
	return out
}

// MaxText bounds a Text attribute, in bytes.
const MaxText = 1024

// CheckText reports a value a Text attribute may not take: a word not
// among its Values, text longer than MaxText or not matching its
// Pattern. Experiment files and the console's requests are checked by it.
func (a Attr) CheckText(t string) error {
	switch {
	case len(a.Values) > 0:
		if !slices.Contains(a.Values, t) {
			return fmt.Errorf("%q is not a %s", t, a.Name)
		}
	case len(t) > MaxText:
		return fmt.Errorf("%d bytes, at most %d", len(t), MaxText)
	case a.Pattern != "" && !regexp.MustCompile(a.Pattern).MatchString(t):
		return fmt.Errorf("%q is not a valid %s", t, a.Name)
	}
	return nil
}

// Check reports a value outside the attribute's bounds.
func (a Attr) Check(v int64) error {
	if v < a.Min || v > a.Max {
		return fmt.Errorf("%s %d is out of range: %d to %d %s", a.Name, v, a.Min, a.Max, a.Unit)
	}
	return nil
}

// CheckAttrs checks attrs, a value for every attribute of the kind (the
// defaults filled in), against the bounds of each attribute and the
// kind's rules between them (Validator). The error names the attribute
// at fault.
func (s Spec) CheckAttrs(attrs map[string]int64) (attr string, err error) {
	for _, a := range s.Attrs {
		if v, ok := attrs[a.Name]; ok {
			if err := a.Check(v); err != nil {
				return a.Name, err
			}
		}
	}
	if v, ok := As[Validator](s.Kind); ok {
		return v.Validate(attrs)
	}
	return "", nil
}

// ProcessKind is the optional capability of a kind that faults/process
// applies on a service process through the topology's Controller.
type ProcessKind interface {
	OnProcess() ProcessAction
}

// ProcessAction is what a process fault does.
type ProcessAction struct {
	Apply  ProcessOp // when the fault starts
	Remove ProcessOp // when it ends; "" when it is over once applied
	// OnCompose is the container kind that does the same to the service's
	// container on the compose topology.
	OnCompose Kind
}

// ProcessOp is one operation of a process Controller.
type ProcessOp string

// Process operations.
const (
	ProcessKill    ProcessOp = "kill"    // SIGKILL; the process stays down
	ProcessPause   ProcessOp = "pause"   // SIGSTOP
	ProcessResume  ProcessOp = "resume"  // SIGCONT
	ProcessRestart ProcessOp = "restart" // SIGKILL if it runs, then start it again
)

// ContainerKind is the optional capability of a kind that faults/container
// applies on a compose container with the docker CLI.
type ContainerKind interface {
	OnContainer() ContainerAction
}

// ContainerAction is what a container fault does.
type ContainerAction struct {
	Apply ContainerOp // when the fault starts
	// Remove undoes Apply when the fault ends; "" when the fault is over
	// once applied and the container healthy again.
	Remove ContainerOp
}

// ContainerOp is one docker CLI operation on a container.
type ContainerOp string

// Container operations.
const (
	ContainerOpKill       ContainerOp = "kill"       // docker kill
	ContainerOpStart      ContainerOp = "start"      // docker start
	ContainerOpPause      ContainerOp = "pause"      // docker pause
	ContainerOpUnpause    ContainerOp = "unpause"    // docker unpause
	ContainerOpRestart    ContainerOp = "restart"    // docker restart
	ContainerOpDisconnect ContainerOp = "disconnect" // docker network disconnect from every network
	ContainerOpConnect    ContainerOp = "connect"    // docker network connect to the networks it was disconnected from
)
