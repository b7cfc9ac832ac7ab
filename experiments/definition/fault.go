package definition

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fallacies/fallacies/faults"
)

// The fault schedule (faults:). Everything about a kind (its attributes,
// targets, topologies and rules) comes from the registry of package
// faults; nothing here knows a kind by name.

// builtFault is a fault with where it came from, for the overlap check.
type builtFault struct {
	f    faults.Fault
	node *yaml.Node
	path string
	src  int // index in the file's faults list
}

// The names of the fault vocabulary, computed once: the loader asks for
// them for every fault.
var (
	allAttrNames = computeAllAttrs()
	allKindNames = computeKindNames()
)

func allAttrs() []string  { return allAttrNames }
func kindNames() []string { return allKindNames }

// computeAllAttrs lists every attribute name of every kind.
func computeAllAttrs() []string {
	var out []string
	for _, s := range faults.Specs() {
		for _, a := range s.Attrs {
			if !slices.Contains(out, a.Name) {
				out = append(out, a.Name)
			}
		}
	}
	return out
}

func computeKindNames() []string {
	var out []string
	for _, s := range faults.Specs() {
		out = append(out, string(s.Kind))
	}
	return out
}

// schedule is what reading each fault of a file shares.
type schedule struct {
	e      *Experiment
	loadOK bool // the load parsed: its duration bounds the faults
	names  *faultNames
}

// faultEntry is one entry of the schedule as read so far.
type faultEntry struct {
	path   string
	src    int // index in the file's faults list
	f      *fields
	spec   faults.Spec // the zero Spec when the kind is not known
	kindOK bool
	at     time.Duration
	atOK   bool
}

// faults parses the schedule; it returns false when it reported an error.
func (p *parser) faults(n *yaml.Node, e *Experiment, loadOK bool) bool {
	before := p.total
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, "faults", "want a list, got "+describe(n), "write e.g. faults: [ { at: 10s, for: 10s, target: user, kind: latency, latency: 300ms } ]")
		return false
	}
	var built []builtFault
	s := &schedule{e: e, loadOK: loadOK, names: newFaultNames()}
	for i, item := range n.Content {
		built = append(built, p.fault(deref(item), index("faults", i), i, s)...)
	}
	p.overlaps(built, e.Load.Duration)
	p.readable(built, e.Variants)
	for _, b := range built {
		e.Faults = append(e.Faults, b.f)
	}
	return p.total == before
}

// readable reports the faults whose layer reads the link's protocol (the
// call-level and message-level kinds) in an experiment with a variant that
// encrypts every link: the layer could not read a byte of it (a gRPC layer
// would fail every call, a NATS layer would relay the connection untouched
// and fault nothing).
func (p *parser) readable(built []builtFault, variants []Variant) {
	var encrypted []string
	for _, v := range variants {
		if v.System.Security.MTLS {
			encrypted = append(encrypted, v.Name)
		}
	}
	if len(encrypted) == 0 {
		return
	}
	reported := map[int]bool{}
	for _, b := range built {
		_, call := faults.As[faults.CallKind](b.f.Kind)
		_, message := faults.As[faults.MessageKind](b.f.Kind)
		if (!call && !message) || reported[b.src] {
			continue
		}
		reported[b.src] = true
		what := "gRPC calls"
		if message {
			what = "NATS protocol"
		}
		p.add(b.node, b.path, fmt.Sprintf("a %s fault reads the link's %s, which security.mtls: on encrypts (variant %s)", b.f.Kind, what, strings.Join(encrypted, ", ")),
			"leave security.mtls off in an experiment with call-level or message-level faults")
	}
}

// fault parses one entry of the schedule: one fault, or one per step.
func (p *parser) fault(n *yaml.Node, path string, src int, s *schedule) []builtFault {
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "want a mapping, got "+describe(n), "write e.g. { at: 10s, for: 10s, target: user, kind: latency, latency: 300ms }")
		return nil
	}
	fe := &faultEntry{path: path, src: src}
	p.faultKeys(n, fe)
	base, good := p.faultBase(fe, s)
	p.faultAt(fe, s)
	good = good && fe.atOK

	stepsEntry, hasSteps := fe.f.get("steps")
	forEntry, hasFor := fe.f.get("for")
	if hasSteps && hasFor {
		p.add(forEntry.key, path+".for", "a fault with steps takes no for", "give each step its for")
		good = false
	}
	if hasSteps {
		return p.faultSteps(fe, s, base, good, stepsEntry.val)
	}
	fd, ok := p.faultFor(forEntry, hasFor, path, fe.at, fe.atOK, s)
	if !ok || !good || !p.attrsComplete(fe.f, path, fe.spec, &base) {
		return nil
	}
	base.At, base.For = fe.at, fd
	base.Name = s.names.unique(base)
	return []builtFault{{f: base, node: fe.f.node, path: path, src: src}}
}

// faultKeys reads the kind of the fault first, as it decides which keys
// are allowed, then checks the keys: the attributes of another kind, the
// required keys, direction and toxicity on a kind that takes neither.
func (p *parser) faultKeys(n *yaml.Node, fe *faultEntry) {
	path := fe.path
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == "kind" {
			v := deref(n.Content[i+1])
			if s, ok := p.oneOf(v, path+".kind", "fault kind", kindNames()); ok {
				fe.spec, _ = faults.Lookup(faults.Kind(s))
				fe.kindOK = true
			}
			break
		}
	}
	allowed := slices.Clone(faultKeys)
	if fe.kindOK {
		allowed = append(allowed, fe.spec.AttrNames()...)
	} else {
		allowed = append(allowed, allAttrs()...)
	}
	notForKind := func(en entry) bool {
		if !fe.kindOK || !slices.Contains(allAttrs(), en.name) {
			return false
		}
		hint := "it takes no attributes"
		if an := fe.spec.AttrNames(); len(an) > 0 {
			hint = "it takes " + strings.Join(an, ", ")
		}
		p.add(en.key, join(path, en.name), fmt.Sprintf("%s is not an attribute of a %s fault", en.name, fe.spec.Kind), hint)
		return true
	}
	fe.f, _ = p.mapping(n, path, allowed, notForKind)
	p.require(fe.f, path, map[string]string{
		"at":     "write e.g. at: 10s",
		"target": "write e.g. target: user",
		"kind":   "one of " + strings.Join(kindNames(), ", "),
	})
	if fe.kindOK && !fe.spec.Directional {
		for _, key := range []string{"direction", "toxicity"} {
			if en, ok := fe.f.get(key); ok {
				p.add(en.key, join(path, key), fmt.Sprintf("%s does not apply to a %s fault", key, fe.spec.Kind), "")
			}
		}
	}
}

// faultBase reads what every step of the fault shares: name, target,
// direction, toxicity and the attributes written on the fault. It checks
// that the experiment's topology has the kind's target.
func (p *parser) faultBase(fe *faultEntry, s *schedule) (faults.Fault, bool) {
	f, path, spec := fe.f, fe.path, fe.spec
	// Without direction a toxic acts downstream (server to client), as
	// Toxiproxy's own toxics do: both directions would double a latency.
	// A fault that is no toxic acts on the whole link or process: both.
	base := faults.Fault{Kind: spec.Kind, Direction: DefaultDirection, Toxicity: 1, Attrs: map[string]int64{}}
	if !spec.Directional {
		base.Direction = faults.Both
	}
	good := fe.kindOK
	if en, ok := f.get("name"); ok {
		base.Name, ok = p.faultName(en.val, path+".name", s.names)
		good = good && ok
	}
	if en, ok := f.get("target"); ok {
		if name, ok := p.str(en.val, path+".target"); ok && fe.kindOK {
			if msg, hint := spec.Target.CheckName(spec.Kind, name); msg != "" {
				p.add(en.val, path+".target", msg, hint)
				good = false
			} else if msg, hint := missingReplica(name, s.e.Variants); msg != "" {
				p.add(en.val, path+".target", msg, hint)
				good = false
			}
			base.Target = name
		} else {
			good = false
		}
	}
	if fe.kindOK {
		if msg, hint := spec.Target.CheckTopology(spec.Kind, s.e.Topology); msg != "" {
			en, _ := f.get("kind")
			p.add(en.val, path+".kind", msg, hint)
			good = false
		}
	}
	if en, ok := f.get("direction"); ok && spec.Directional {
		if d, ok := p.oneOf(en.val, path+".direction", "direction", directions); ok {
			base.Direction = faults.Direction(d)
		} else {
			good = false
		}
	}
	if en, ok := f.get("toxicity"); ok && spec.Directional {
		if t, ok := p.toxicity(en.val, path+".toxicity"); ok {
			base.Toxicity = t
		} else {
			good = false
		}
	}
	if fe.kindOK {
		good = p.attrs(f, path, spec, &base) && good
	}
	return base, good
}

// faultName reads the name of a fault: valid and not taken.
func (p *parser) faultName(n *yaml.Node, path string, names *faultNames) (string, bool) {
	s, ok := p.str(n, path)
	switch {
	case !ok:
		return "", false
	case !identPattern.MatchString(s):
		p.add(n, path, fmt.Sprintf("%q is not a valid fault name", s), "lower-case letters, digits, _ and -, e.g. slow-user")
		return "", false
	case names.taken[s]:
		p.add(n, path, fmt.Sprintf("%q names another fault too", s), "fault names are unique in an experiment")
		return "", false
	}
	return s, true
}

// faultAt reads the start of the fault, before the end of the load.
func (p *parser) faultAt(fe *faultEntry, s *schedule) {
	en, ok := fe.f.get("at")
	if !ok {
		return
	}
	path := fe.path + ".at"
	fe.at, fe.atOK = p.duration(en.val, path, "s")
	if fe.atOK && s.loadOK && fe.at >= s.e.Load.Duration {
		p.add(en.val, path, fmt.Sprintf("%v is not before the end of the load (duration %v)", fe.at, s.e.Load.Duration), "")
		fe.atOK = false
	}
}

// faultSteps reads a step schedule: one fault per step, each starting when
// the one before ends, named NAME-1, NAME-2, ….
func (p *parser) faultSteps(fe *faultEntry, s *schedule, base faults.Fault, good bool, sn *yaml.Node) []builtFault {
	path, spec := fe.path, fe.spec
	if sn.Kind != yaml.SequenceNode || len(sn.Content) == 0 {
		p.add(sn, path+".steps", "want a list of steps, got "+describe(sn), "write e.g. steps: [ { for: 5s, latency: 100ms }, { for: 5s, latency: 200ms } ]")
		return nil
	}
	stepAllowed := []string{"for", "toxicity"}
	if fe.kindOK {
		stepAllowed = append(stepAllowed, spec.AttrNames()...)
	}
	var out []builtFault
	start := fe.at
	baseName := base.Name
	if baseName == "" {
		baseName = s.names.unique(base)
	}
	for i, item := range sn.Content {
		spath := index(path+".steps", i)
		sf, ok := p.mapping(item, spath, stepAllowed, nil)
		if !ok {
			good = false
			continue
		}
		step := base
		step.Attrs = maps.Clone(base.Attrs)
		step.Text = maps.Clone(base.Text)
		if en, ok := sf.get("toxicity"); ok && spec.Directional {
			if t, ok := p.toxicity(en.val, spath+".toxicity"); ok {
				step.Toxicity = t
			} else {
				good = false
			}
		} else if ok {
			p.add(en.key, spath+".toxicity", fmt.Sprintf("toxicity does not apply to a %s fault", spec.Kind), "")
			good = false
		}
		if !p.faultStep(fe, sf, spath, &step, i == len(sn.Content)-1, start, s) {
			good = false
			continue
		}
		step.Name = fmt.Sprintf("%s-%d", baseName, i+1)
		s.names.taken[step.Name] = true
		out = append(out, builtFault{f: step, node: sf.node, path: spath, src: fe.src})
		start += step.For
	}
	if !good {
		return nil
	}
	return out
}

// faultStep reads the window and attributes of one step starting at
// start: its for (which only the last may leave out) and the attributes
// it sets over those of the fault.
func (p *parser) faultStep(fe *faultEntry, sf *fields, spath string, step *faults.Fault, last bool, start time.Duration, s *schedule) bool {
	if fe.kindOK && !p.attrs(sf, spath, fe.spec, step) {
		return false
	}
	en, hasFor := sf.get("for")
	if !hasFor && !last {
		p.add(sf.node, spath+".for", "missing", "every step but the last needs a for")
		return false
	}
	fd, ok := p.faultFor(en, hasFor, spath, start, fe.atOK, s)
	if !ok || !p.attrsComplete(sf, spath, fe.spec, step) {
		return false
	}
	step.At, step.For = start, fd
	return true
}

// overlaps reports faults of one kind on one target and direction that
// overlap in time, each at the fault later in the file, naming the other.
// It sorts each kind and target by start and sweeps, keeping per
// direction the fault that ends last so far: n log n, not n².
func (p *parser) overlaps(built []builtFault, duration time.Duration) {
	type group struct {
		kind   faults.Kind
		target string
	}
	groups := map[group][]int{}
	var order []group
	for i, b := range built {
		g := group{b.f.Kind, b.f.Target}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	reported := map[int]bool{}
	for _, g := range order {
		idx := groups[g]
		slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(built[i].f.At, built[j].f.At) })
		last := map[faults.Direction]int{} // the fault that ends last so far, per direction
		for _, j := range idx {
			b := built[j]
			for _, d := range []faults.Direction{faults.Upstream, faults.Downstream, faults.Both} {
				i, ok := last[d]
				if !ok {
					continue
				}
				a := built[i]
				if a.src == b.src || !conflicting(a.f, b.f) || faultEnd(a.f, duration) <= b.f.At {
					continue
				}
				li, ei := j, i
				if a.src > b.src {
					li, ei = i, j
				}
				if later, earlier := built[li], built[ei]; !reported[li] {
					reported[li] = true
					es, ee := earlier.f.At, faultEnd(earlier.f, duration)
					p.add(later.node, later.path, fmt.Sprintf("overlaps %s (%s on %s%s, %v to %v)", earlier.path, earlier.f.Kind, earlier.f.Target, dirText(earlier.f), es, ee),
						"two faults of one kind on one target and direction would collide; end one before the other starts")
				}
				break
			}
			if i, ok := last[b.f.Direction]; !ok || faultEnd(built[i].f, duration) < faultEnd(b.f, duration) {
				last[b.f.Direction] = j
			}
		}
	}
}

func dirText(f faults.Fault) string {
	if spec, ok := faults.Lookup(f.Kind); !ok || !spec.Directional {
		return ""
	}
	if f.Direction == faults.Both {
		return ", both directions"
	}
	return ", " + string(f.Direction)
}

func conflicting(a, b faults.Fault) bool {
	if a.Kind != b.Kind || a.Target != b.Target {
		return false
	}
	return a.Direction == b.Direction || a.Direction == faults.Both || b.Direction == faults.Both
}

// faultFor parses the for of a fault starting at start; absent, the fault
// lasts until the end of the run (For 0).
func (p *parser) faultFor(en entry, has bool, path string, start time.Duration, startOK bool, s *schedule) (time.Duration, bool) {
	if !has {
		return 0, true
	}
	d, ok := p.duration(en.val, path+".for", "s")
	if !ok {
		return 0, false
	}
	if d == 0 {
		p.add(en.val, path+".for", "must be more than 0", "leave for out to last until the end of the run")
		return 0, false
	}
	if startOK && s.loadOK && start+d > s.e.Load.Duration {
		p.add(en.val, path+".for", fmt.Sprintf("the fault ends at %v, after the end of the load (duration %v)", start+d, s.e.Load.Duration), "shorten it, or leave for out to last until the end")
		return 0, false
	}
	return d, true
}

func (p *parser) toxicity(n *yaml.Node, path string) (float64, bool) {
	t, ok := p.number(n, path)
	if !ok {
		return 0, false
	}
	if t == 0 || t > 1 {
		p.add(n, path, fmt.Sprintf("%s is not in (0, 1]", n.Value), "the share of connections affected, e.g. 0.5")
		return 0, false
	}
	return t, true
}

// attrs parses the attributes of spec present in f into flt: Attrs, and
// Text for the attributes of unit Text.
func (p *parser) attrs(f *fields, path string, spec faults.Spec, flt *faults.Fault) bool {
	attrs := flt.Attrs
	good := true
	for _, a := range spec.Attrs {
		en, ok := f.get(a.Name)
		if !ok {
			continue
		}
		apath := join(path, a.Name)
		switch a.Unit {
		case faults.Millis, faults.Microseconds:
			unit, unitName, step := "ms", "milliseconds", time.Millisecond
			if a.Unit == faults.Microseconds {
				unit, unitName, step = "us", "microseconds", time.Microsecond
			}
			d, ok := p.duration(en.val, apath, unit)
			if !ok {
				good = false
				continue
			}
			if d%step != 0 {
				p.add(en.val, apath, fmt.Sprintf("%v is not a whole number of %s", d, unitName), "")
				good = false
				continue
			}
			if !p.attrBound(en.val, apath, a, int64(d/step)) {
				good = false
				continue
			}
			attrs[a.Name] = int64(d / step)
		case faults.Text:
			t, ok := p.textAttr(en.val, apath, a)
			if !ok {
				good = false
				continue
			}
			if flt.Text == nil {
				flt.Text = map[string]string{}
			}
			flt.Text[a.Name] = t
		case faults.Fraction:
			v, ok := p.number(en.val, apath)
			if !ok {
				good = false
				continue
			}
			if v <= 0 || v > 1 {
				p.add(en.val, apath, fmt.Sprintf("%s is not in (0, 1]", en.val.Value), "a share of the calls, e.g. 0.3")
				good = false
				continue
			}
			attrs[a.Name] = max(int64(math.Round(v*faults.FractionOne)), 1)
		case faults.PerMillion, faults.Choice:
			v, err := a.ParseWritten(en.val.Value)
			if err != nil {
				hint := "a percentage, e.g. " + a.Written(10_000)
				if a.Unit == faults.Choice {
					hint = "one of " + strings.Join(a.Choices, ", ")
				}
				p.add(en.val, apath, err.Error(), hint)
				good = false
				continue
			}
			if !p.attrBound(en.val, apath, a, v) {
				good = false
				continue
			}
			attrs[a.Name] = v
		default:
			i, ok := p.integer(en.val, apath, 0)
			if !ok || !p.attrBound(en.val, apath, a, i) {
				good = false
				continue
			}
			attrs[a.Name] = i
		}
	}
	return good
}

// attrsAgree checks the rules between the attributes of a fault (the
// defaults filled in), reporting at the attribute at fault when f sets it
// and at the fault otherwise.
func (p *parser) attrsAgree(f *fields, path string, spec faults.Spec, attrs map[string]int64) bool {
	name, err := spec.CheckAttrs(attrs)
	if err == nil {
		return true
	}
	n := f.node
	if en, ok := f.get(name); ok {
		n = en.val
	}
	p.add(n, join(path, name), err.Error(), "")
	return false
}

// attrsComplete checks the attributes of a fault once they are all read:
// every required one set, then, the defaults filled in, the rules between
// them.
func (p *parser) attrsComplete(f *fields, path string, spec faults.Spec, flt *faults.Fault) bool {
	attrs := flt.Attrs
	good := true
	for _, a := range spec.Attrs {
		_, set := attrs[a.Name]
		if a.Unit == faults.Text {
			_, set = flt.Text[a.Name]
		}
		if a.Required && !set {
			p.add(f.node, join(path, a.Name), "missing", fmt.Sprintf("a %s fault needs %s, e.g. %s: %s", spec.Kind, a.Name, a.Name, a.Example))
			good = false
		}
	}
	if !good {
		return false
	}
	fillDefaults(spec, attrs)
	return p.attrsAgree(f, path, spec, attrs)
}

func fillDefaults(spec faults.Spec, attrs map[string]int64) {
	for _, a := range spec.Attrs {
		if _, ok := attrs[a.Name]; !ok && a.Unit != faults.Text {
			attrs[a.Name] = a.Default
		}
	}
}

// textAttr reads a Text attribute: one of its values, or text matching
// its pattern (Attr.CheckText).
func (p *parser) textAttr(n *yaml.Node, path string, a faults.Attr) (string, bool) {
	t, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	if err := a.CheckText(t); err != nil {
		hint := ""
		switch {
		case len(a.Values) > 0:
			hint = closestHint(t, a.Values)
		case a.Example != "" && len(t) <= faults.MaxText:
			hint = "e.g. " + a.Example
		}
		p.add(n, path, err.Error(), hint)
		return "", false
	}
	return t, true
}

// faultNames are the names of an experiment's faults, taken so far.
type faultNames struct {
	taken map[string]bool
	next  map[string]int // for KIND-TARGET: the number to try next
}

func newFaultNames() *faultNames {
	return &faultNames{taken: map[string]bool{}, next: map[string]int{}}
}

// unique returns the fault's name, or KIND-TARGET (with a number when that
// is taken) when it has none, and records the name as taken. Numbers are
// handed out in order, so naming n faults takes time linear in n.
func (ns *faultNames) unique(f faults.Fault) string {
	name := f.Name
	if name == "" {
		base := string(f.Kind) + "-" + f.Target
		name = base
		if ns.taken[name] {
			i := max(ns.next[base], 2)
			for ; ns.taken[fmt.Sprintf("%s-%d", base, i)]; i++ {
			}
			name = fmt.Sprintf("%s-%d", base, i)
			ns.next[base] = i + 1
		}
	}
	ns.taken[name] = true
	return name
}

// missingReplica says why a variant has no link named name, or "": the
// links to the second and third payment replica exist only in a variant
// that runs them.
func missingReplica(name string, variants []Variant) (msg, hint string) {
	need := map[string]int{faults.ProxyPayment1: 2, faults.ProxyPayment2: 3}[name]
	for _, v := range variants {
		if got := max(v.System.Payment.Replicas, 1); got < need {
			return fmt.Sprintf("variant %s has no link %q: it runs %d payment replica(s)", v.Name, name, got),
				fmt.Sprintf("set payment.replicas: %d or more in every variant", need)
		}
	}
	return "", ""
}
