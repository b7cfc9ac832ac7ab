package console

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/packet"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
)

// disablingKind is the fault kind that disables a proxy (partition), as
// the registry of fault kinds says: a disabled proxy is shown as one.
var disablingKind = func() string {
	for _, s := range faults.Specs() {
		if p, ok := faults.As[faults.ProxyKind](s.Kind); ok && p.OnProxy(s.WithDefaults(nil)).Disable {
			return string(s.Kind)
		}
	}
	return "disabled"
}()

// packetNote says what adding a packet fault does to its link.
const packetNote = "the first packet fault on a link puts a segment there, which cuts the link's open connections once (clients reconnect); the segment stays until the console stops"

// faultBoard adds and removes the console's faults through the injector
// and watches the proxies for every fault on them, the console's or not.
type faultBoard struct {
	inj     faults.Injector
	tp      *toxiproxy.Injector
	targets map[faults.TargetKind][]string

	mu      sync.Mutex
	applied map[string]faults.Applied // the console's faults by name
	run     map[string]faults.Applied // the faults a run has on, by name (Options.Run)
	windows []window                  // faults seen on the system, newest last
	open    map[string]int            // window key → index in windows, while on
}

// window is a stretch of time a fault was on, as the console saw it.
type window struct {
	Name   string    `json:"name"`
	Target string    `json:"target"`
	Kind   string    `json:"kind"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"` // zero while on
	key    string
}

// windowKeep is how long a finished fault window stays on the chart.
const windowKeep = 10 * time.Minute

func newFaultBoard(inj faults.Injector, tp *toxiproxy.Injector, targets map[faults.TargetKind][]string) *faultBoard {
	return &faultBoard{inj: inj, tp: tp, targets: targets, applied: map[string]faults.Applied{}, run: map[string]faults.Applied{}, open: map[string]int{}}
}

// kindView is one fault kind as the page lists it.
type kindView struct {
	Kind        string     `json:"kind"`
	Target      string     `json:"target_kind"`
	Directional bool       `json:"directional"`
	Doc         string     `json:"doc"`
	Attrs       []attrView `json:"attrs"`
	Targets     []string   `json:"targets"`
	// Unavailable says why no fault of this kind can be added to this
	// system ("" when it can).
	Unavailable string `json:"unavailable,omitempty"`
	// Note says what adding one does beyond the fault (a packet kind's
	// segment).
	Note string `json:"note,omitempty"`
}

type attrView struct {
	Name    string `json:"name"`
	Unit    string `json:"unit"`
	Default int64  `json:"default"`
	Min     int64  `json:"min"`
	Max     int64  `json:"max"`
	Doc     string `json:"doc,omitempty"`
	// For unit text (given in the request's text, not attrs): the words
	// it may take, or else the pattern it must match.
	Values   []string `json:"values,omitempty"`
	Pattern  string   `json:"pattern,omitempty"`
	Required bool     `json:"required,omitempty"`
	Example  string   `json:"example,omitempty"`
}

// kinds lists every fault kind the engine knows, from its registry, with
// the targets this system offers for it.
func (b *faultBoard) kinds() []kindView {
	var out []kindView
	for _, s := range faults.Specs() {
		kv := kindView{Kind: string(s.Kind), Target: string(s.Target), Directional: s.Directional, Doc: s.Doc,
			Attrs: []attrView{}, Targets: slices.Clone(b.targets[s.Target])}
		if kv.Targets == nil {
			kv.Targets = []string{}
			kv.Unavailable = fmt.Sprintf("this topology has no %s target", s.Target)
		}
		if packet.Applies(s.Kind) {
			kv.Note = packetNote
		}
		for _, a := range s.Attrs {
			kv.Attrs = append(kv.Attrs, attrView{Name: a.Name, Unit: string(a.Unit), Default: a.Default, Min: a.Min, Max: a.Max, Doc: a.Doc,
				Values: a.Values, Pattern: a.Pattern, Required: a.Required, Example: a.Example})
		}
		out = append(out, kv)
	}
	return out
}

// faultRequest is the body of POST /api/faults.
type faultRequest struct {
	Name      string           `json:"name"` // default: console-KIND-TARGET
	Kind      string           `json:"kind"`
	Target    string           `json:"target"`
	Direction string           `json:"direction"` // default both
	Toxicity  float64          `json:"toxicity"`  // default 1
	Attrs     map[string]int64 `json:"attrs"`     // in the attribute's unit; defaults filled in
	// Text holds the attributes of unit text (a gRPC method, a status
	// code), checked as an experiment file's are (faults.Attr.CheckText).
	Text map[string]string `json:"text"`
}

// badRequest is an error the client made: answered 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// conflict is a request that clashes with what is on: answered 409.
type conflict struct{ msg string }

func (e *conflict) Error() string { return e.msg }

var faultName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// fault checks a request against the kind's spec and this system's
// targets and returns the fault it asks for.
func (b *faultBoard) fault(req faultRequest) (faults.Fault, error) {
	spec, ok := faults.Lookup(faults.Kind(req.Kind))
	if !ok {
		var names []string
		for _, s := range faults.Specs() {
			names = append(names, string(s.Kind))
		}
		return faults.Fault{}, badf("kind %q: unknown; want one of %s", req.Kind, strings.Join(names, ", "))
	}
	if !slices.Contains(b.targets[spec.Target], req.Target) {
		if len(b.targets[spec.Target]) == 0 {
			return faults.Fault{}, badf("kind %s: this topology has no %s target", spec.Kind, spec.Target)
		}
		return faults.Fault{}, badf("target %q: not a %s of this system; want one of %s", req.Target, spec.Target, strings.Join(b.targets[spec.Target], ", "))
	}
	f := faults.Fault{Name: req.Name, Kind: spec.Kind, Target: req.Target, Toxicity: req.Toxicity, Attrs: map[string]int64{}}
	if f.Name == "" {
		f.Name = "console-" + string(spec.Kind) + "-" + req.Target
	}
	if !faultName.MatchString(f.Name) {
		return faults.Fault{}, badf("name %q: want lower-case letters, digits, '-', '_' or '.', at most 63, starting with a letter or digit", f.Name)
	}
	if spec.Directional {
		switch d := faults.Direction(req.Direction); d {
		case "", faults.Both, faults.Upstream, faults.Downstream:
			f.Direction = d
			if d == "" {
				f.Direction = faults.Both
			}
		default:
			return faults.Fault{}, badf("direction %q: want upstream, downstream or both", req.Direction)
		}
		if req.Toxicity < 0 || req.Toxicity > 1 {
			return faults.Fault{}, badf("toxicity %g: want more than 0 and at most 1", req.Toxicity)
		}
	} else if req.Direction != "" || req.Toxicity != 0 {
		return faults.Fault{}, badf("kind %s takes no direction or toxicity", spec.Kind)
	}
	for name, v := range req.Attrs {
		a, ok := spec.Attr(name)
		if !ok {
			return faults.Fault{}, badf("attrs.%s: %s has no such attribute", name, spec.Kind)
		}
		if a.Unit == faults.Text {
			return faults.Fault{}, badf("attrs.%s: a text attribute: give it in text, e.g. \"text\": {%q: %q}", name, name, a.Example)
		}
		f.Attrs[name] = v
	}
	for name, v := range req.Text {
		a, ok := spec.Attr(name)
		if !ok || a.Unit != faults.Text {
			return faults.Fault{}, badf("text.%s: %s has no such text attribute", name, spec.Kind)
		}
		if err := a.CheckText(v); err != nil {
			if len(a.Values) > 0 {
				return faults.Fault{}, badf("text.%s: %v; want one of %s", name, err, strings.Join(a.Values, ", "))
			}
			return faults.Fault{}, badf("text.%s: %v (e.g. %s)", name, err, a.Example)
		}
		if f.Text == nil {
			f.Text = map[string]string{}
		}
		f.Text[name] = v
	}
	for _, a := range spec.Attrs {
		if a.Unit == faults.Text {
			if _, ok := f.Text[a.Name]; !ok && a.Required {
				return faults.Fault{}, badf("text.%s: missing; a %s fault needs it, e.g. \"text\": {%q: %q}", a.Name, spec.Kind, a.Name, a.Example)
			}
			continue
		}
		if _, ok := f.Attrs[a.Name]; !ok {
			f.Attrs[a.Name] = a.Default
		}
	}
	if attr, err := spec.CheckAttrs(f.Attrs); err != nil {
		return faults.Fault{}, badf("attrs.%s: %v", attr, err)
	}
	return f, nil
}

// add applies the fault a request asks for.
func (b *faultBoard) add(ctx context.Context, req faultRequest) (faults.Applied, error) {
	f, err := b.fault(req)
	if err != nil {
		return faults.Applied{}, err
	}
	b.mu.Lock()
	if _, ok := b.applied[f.Name]; ok {
		b.mu.Unlock()
		return faults.Applied{}, &conflict{fmt.Sprintf("a fault named %s is already on: remove it first, or give another name", f.Name)}
	}
	b.applied[f.Name] = faults.Applied{Fault: f} // reserved while it is applied
	b.mu.Unlock()
	a, err := b.inj.Apply(ctx, f)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.applied, f.Name)
		return faults.Applied{}, err
	}
	b.applied[f.Name] = a
	b.openWindow("console/"+f.Name, window{Name: f.Name, Target: f.Target, Kind: string(f.Kind), Start: a.Start}, f.Kind)
	return a, nil
}

// errNoFault is the removal of a fault the console does not hold.
var errNoFault = errors.New("no such fault")

// remove takes one of the console's faults off.
func (b *faultBoard) remove(ctx context.Context, name string) error {
	b.mu.Lock()
	a, ok := b.applied[name]
	if ok && a.Start.IsZero() {
		b.mu.Unlock()
		return &conflict{fmt.Sprintf("fault %s is being applied: try again in a moment", name)}
	}
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s (GET /api/state lists the console's faults)", errNoFault, name)
	}
	if err := b.inj.Remove(ctx, a); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.applied, name)
	b.closeWindow("console/"+name, time.Now())
	return nil
}

// removeAll takes every fault of the console off; the ones it could not
// remove stay listed (and journaled) and are reported.
func (b *faultBoard) removeAll(ctx context.Context) error {
	b.mu.Lock()
	names := slices.Sorted(maps.Keys(b.applied))
	b.mu.Unlock()
	var errs []error
	for _, n := range names {
		if err := b.remove(ctx, n); err != nil && !errors.Is(err, errNoFault) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runFault records a fault a run put on or took off, with a window of
// its own on the chart (the console of a run reads no proxy).
func (b *faultBoard) runFault(f faults.Fault, on bool, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := "run/" + f.Name
	if on {
		b.run[f.Name] = faults.Applied{Fault: f, Start: at}
		b.openWindow(key, window{Name: f.Name, Target: f.Target, Kind: string(f.Kind), Start: at}, "")
		return
	}
	delete(b.run, f.Name)
	b.closeWindow(key, at)
}

// consoleFaults lists the console's faults, or the run's, oldest first.
func (b *faultBoard) consoleFaults() []faultView {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []faultView
	for _, a := range slices.Concat(slices.Collect(maps.Values(b.applied)), slices.Collect(maps.Values(b.run))) {
		if a.Start.IsZero() {
			continue
		}
		_, toxics := faults.As[faults.ProxyKind](a.Fault.Kind)
		out = append(out, faultView{Name: a.Fault.Name, Kind: string(a.Fault.Kind), Target: a.Fault.Target,
			Direction: string(a.Fault.Direction), Attrs: a.Fault.Attrs, Since: a.Start, Text: a.Fault.String(), Toxics: toxics})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// faultView is one fault of the console as the page shows it.
type faultView struct {
	Name      string           `json:"name"`
	Kind      string           `json:"kind"`
	Target    string           `json:"target"`
	Direction string           `json:"direction,omitempty"`
	Attrs     map[string]int64 `json:"attrs"`
	Since     time.Time        `json:"since"`
	Text      string           `json:"text"` // one line, e.g. "latency on user (both) latency=300ms jitter=0ms"
	// Toxics: the fault is made of toxics on its proxy, which the graph
	// draws from the proxy; the others (packet, call-level, process
	// faults) are drawn from here.
	Toxics bool `json:"toxics,omitempty"`
}

// proxyView is one proxy as Toxiproxy reports it.
type proxyView struct {
	Enabled bool        `json:"enabled"`
	Toxics  []toxicView `json:"toxics"`
}

type toxicView struct {
	Name     string         `json:"name"`
	Fault    string         `json:"fault"` // the fault it belongs to, for fallacies-NAME-STREAM toxics
	Type     string         `json:"type"`
	Stream   string         `json:"stream"`
	Toxicity float64        `json:"toxicity"`
	Attrs    map[string]any `json:"attrs"`
}

// observe reads every proxy and its toxics and updates the fault windows
// with what is on (the console's faults, an experiment's, toxiproxy-cli's).
func (b *faultBoard) observe(ctx context.Context, now time.Time) (map[string]proxyView, error) {
	if b.tp == nil {
		// The console of a run: the run tells it of its faults.
		b.mu.Lock()
		b.prune(now)
		b.mu.Unlock()
		return nil, nil
	}
	infos, err := b.tp.Proxies(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]proxyView{}
	on := map[string]window{}
	for name, p := range infos {
		pv := proxyView{Enabled: p.Enabled, Toxics: []toxicView{}}
		if !p.Enabled {
			on["proxy/"+name+"/disabled"] = window{Name: disablingKind, Target: name, Kind: disablingKind}
		}
		for _, t := range p.Toxics {
			fault := faultOfToxic(t.Name)
			pv.Toxics = append(pv.Toxics, toxicView{Name: t.Name, Fault: fault, Type: t.Type, Stream: t.Stream, Toxicity: t.Toxicity, Attrs: t.Attributes})
			on["proxy/"+name+"/"+fault] = window{Name: fault, Target: name, Kind: t.Type}
		}
		sort.Slice(pv.Toxics, func(i, j int) bool { return pv.Toxics[i].Name < pv.Toxics[j].Name })
		out[name] = pv
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, w := range on {
		w.Start = now
		b.openWindow(k, w, "")
	}
	for k := range b.open {
		if _, ok := on[k]; !ok && strings.HasPrefix(k, "proxy/") {
			b.closeWindow(k, now)
		}
	}
	b.prune(now)
	return out, nil
}

// faultOfToxic names the fault a toxic belongs to: NAME for the toxics
// "fallacies-NAME-upstream" and "fallacies-NAME-downstream" the injector
// makes, the toxic's own name otherwise.
func faultOfToxic(toxic string) string {
	name, ok := strings.CutPrefix(toxic, "fallacies-")
	if !ok {
		return toxic
	}
	for _, s := range []string{"-upstream", "-downstream"} {
		if n, ok := strings.CutSuffix(name, s); ok {
			return n
		}
	}
	return name
}

// openWindow starts a window under key unless one is open. A console
// fault made of toxics is drawn by the proxy's own window, so only the
// console's other faults (process, packet, call-level faults) get one of
// their own. b.mu is held.
func (b *faultBoard) openWindow(key string, w window, kind faults.Kind) {
	if kind != "" {
		if _, toxics := faults.As[faults.ProxyKind](kind); toxics {
			return
		}
	}
	if _, ok := b.open[key]; ok {
		return
	}
	w.key = key
	b.windows = append(b.windows, w)
	b.open[key] = len(b.windows) - 1
}

// closeWindow ends the window under key, if one is open. b.mu is held.
func (b *faultBoard) closeWindow(key string, now time.Time) {
	if i, ok := b.open[key]; ok {
		b.windows[i].End = now
		delete(b.open, key)
	}
}

// prune forgets windows that ended more than windowKeep ago. b.mu is held.
func (b *faultBoard) prune(now time.Time) {
	keep := b.windows[:0]
	for _, w := range b.windows {
		if w.End.IsZero() || now.Sub(w.End) < windowKeep {
			keep = append(keep, w)
		}
	}
	b.windows = keep
	clear(b.open)
	for i, w := range b.windows {
		if w.End.IsZero() {
			b.open[w.key] = i
		}
	}
}

// windowList returns a copy of the fault windows.
func (b *faultBoard) windowList() []window {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.windows)
}
