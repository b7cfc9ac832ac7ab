package definition

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/fallacies/fallacies/experiments/check"
	"github.com/fallacies/fallacies/experiments/metrics"
	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/internal/suggest"
	"github.com/fallacies/fallacies/services/config"
)

// Parse parses the content of an experiment file; path is used in error
// messages and kept in Experiment.Path. The error, if any, is Errors with
// every problem found, sorted by position.
func Parse(path string, data []byte) (*Experiment, error) {
	p := &parser{file: path}
	e := p.parse(data)
	if p.total > 0 {
		return nil, p.errors()
	}
	e.Path = path
	return e, nil
}

// DefaultDirection is the direction of a toxic whose fault names none:
// downstream, Toxiproxy's default.
const DefaultDirection = faults.Downstream

// Top-level keys, in the order the format reference lists them.
var (
	topKeys      = []string{"name", "fallacy", "description", "topology", "seed", "load", "variants", "faults", "hypotheses"}
	loadKeys     = []string{"rate", "duration", "max_in_flight", "timeout", "drain", "users", "mix", "steps", "retries", "retry_backoff"}
	mixKeys      = []string{"place_order", "get_order"}
	stepKeys     = []string{"at", "rate"}
	faultKeys    = []string{"name", "at", "for", "target", "kind", "direction", "toxicity", "steps"}
	hypoKeys     = []string{"when", "variant", "check", "abort", "name"}
	directions   = []string{string(faults.Upstream), string(faults.Downstream), string(faults.Both)}
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	identPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

type parser struct {
	file         string
	src          *source
	errs         Errors          // the earliest errors found, at most 4*MaxErrors
	total        int             // every error found
	variantNames []string        // every variant named in the file, valid or not
	variantSet   map[string]bool // the same, to look names up
}

func (p *parser) add(n *yaml.Node, path, msg, hint string) {
	line, col := 1, 1
	switch {
	case n != nil && n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && p.src != nil:
		// A block scalar's value is on the lines after its header.
		line, col = p.src.valuePos(n, 0)
	case n != nil && n.Line > 0:
		line, col = n.Line, n.Column
	}
	p.addAt(line, col, path, msg, hint)
}

func (p *parser) addAt(line, col int, path, msg, hint string) {
	p.total++
	if p.src != nil {
		line, col = p.src.within(line, col)
	}
	path, msg, hint = clip(path), clip(msg), clip(hint)
	p.errs = append(p.errs, Error{File: p.file, Line: line, Col: col, Path: path, Msg: msg, Hint: hint})
	if len(p.errs) >= 4*MaxErrors {
		// Keep the earliest: memory stays bounded however many there are.
		p.errs.sort()
		p.errs = p.errs[:MaxErrors+1]
	}
}

// maxMessage is the longest path, message or hint of an error, in bytes:
// they quote values from the file, and a value can be megabytes long.
const maxMessage = 240

// clip shortens s to about maxMessage bytes, cutting at a character
// boundary and marking the cut.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// errors returns the first MaxErrors errors by position and, when there
// are more, one more error at the first one left out saying how many.
func (p *parser) errors() Errors {
	p.errs.sort()
	if p.total <= MaxErrors {
		return p.errs
	}
	next := p.errs[MaxErrors]
	more := Error{File: p.file, Line: next.Line, Col: next.Col,
		Msg: fmt.Sprintf("%d more errors not shown (only the first %d are)", p.total-MaxErrors, MaxErrors)}
	return append(p.errs[:MaxErrors:MaxErrors], more)
}

// entry is one key: value pair of a mapping.
type entry struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
}

// fields is a checked mapping: its entries by name, in file order.
type fields struct {
	node    *yaml.Node
	entries []entry
	byName  map[string]entry
}

func (f *fields) get(name string) (entry, bool) {
	e, ok := f.byName[name]
	return e, ok
}

// deref follows aliases to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

// describe names what a node is, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an alias"
}

// mapping checks that n is a mapping whose keys are unique strings from
// allowed, reporting every other key. what names the mapping in messages.
// unknown, when not nil, is asked first about a key not in allowed and
// reports it itself when it returns true.
func (p *parser) mapping(n *yaml.Node, path string, allowed []string, unknown func(e entry) bool) (*fields, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "want a mapping, got "+describe(n), "")
		return nil, false
	}
	f := &fields{node: n, byName: map[string]entry{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		kpath := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			if k.ShortTag() == "!!merge" {
				p.add(k, path, "merge keys (<<) are not supported", "write the keys out")
			} else {
				p.add(k, path, "want a key, got "+describe(k), "")
			}
			continue
		}
		if prev, dup := f.byName[k.Value]; dup {
			p.add(k, kpath, "duplicate key", fmt.Sprintf("first set at line %d", prev.key.Line))
			continue
		}
		e := entry{name: k.Value, key: k, val: deref(v)}
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			if unknown != nil && unknown(e) {
				continue
			}
			p.add(k, kpath, "unknown key", closestHint(k.Value, allowed))
			continue
		}
		f.byName[k.Value] = e
		f.entries = append(f.entries, e)
	}
	return f, true
}

// require reports every name of required missing from f.
func (p *parser) require(f *fields, path string, required map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(required)) {
		if _, ok := f.byName[name]; !ok {
			p.add(f.node, join(path, name), "missing", required[name])
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Suggestions cost the product of the lengths compared: a name longer
// than maxSuggestLen is no misspelling, and a list longer than maxListed
// is not written out.
const (
	maxSuggestLen = 64
	maxListed     = 64
)

// closestHint suggests what s most likely means among known: a word
// that means the same (synonyms: down for downstream), then the nearest
// in spelling, then the only one it begins or abbreviates (dur for
// duration); when nothing is near, it lists known.
func closestHint(s string, known []string) string {
	if len(s) > maxSuggestLen || len(known) > maxListed {
		return ""
	}
	best, bestD := "", math.MaxInt
	for _, k := range known {
		if d := suggest.Distance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	// A word of the same meaning says the most; a near spelling next;
	// then a prefix or an abbreviation.
	if m := synonym(s, known); m != "" {
		return "did you mean " + m + "?"
	}
	if best == "" || bestD > max(3, len(s)/2) {
		if m := shortFor(s, known); m != "" {
			return "did you mean " + m + "?"
		}
		return "known: " + strings.Join(known, ", ")
	}
	return "did you mean " + best + "?"
}

// synonyms are words people write for a value of the vocabulary.
var synonyms = map[string][]string{
	// directions
	"downstream": {"down", "dn", "ds", "downward", "downwards", "response", "responses", "reply", "replies", "inbound", "server-to-client", "s2c", "read", "reads", "rx"},
	"upstream":   {"up", "us", "upward", "upwards", "request", "requests", "outbound", "client-to-server", "c2s", "write", "writes", "tx"},
	"both":       {"all", "any", "either", "bidirectional", "bi", "two-way", "duplex", "updown", "up-down", "up_down"},
	// phases
	"before": {"steady", "steady-state", "steady_state", "baseline", "pre", "start"},
	"during": {"fault", "faults", "chaos", "while", "injection"},
	"after":  {"recovery", "recover", "post", "end"},
	"always": {"all", "whole", "run", "every", "total"},
}

// Fault kinds bring their own synonyms.
func init() {
	for _, spec := range faults.Specs() {
		if len(spec.Synonyms) > 0 {
			synonyms[string(spec.Kind)] = spec.Synonyms
		}
	}
}

// synonym returns the one value of known that s means, or "".
func synonym(s string, known []string) string {
	low := strings.ToLower(strings.TrimSpace(s))
	hit := ""
	for _, k := range known {
		if slices.Contains(synonyms[k], low) {
			if hit != "" {
				return ""
			}
			hit = k
		}
	}
	return hit
}

// shortFor returns the one value of known that s begins or abbreviates,
// or "".
func shortFor(s string, known []string) string {
	low := strings.ToLower(strings.TrimSpace(s))
	if len(low) < 2 {
		return ""
	}
	hit := ""
	for _, k := range known {
		if k != low && (strings.HasPrefix(k, low) || abbreviates(low, k)) {
			if hit != "" {
				return ""
			}
			hit = k
		}
	}
	return hit
}

// abbreviates reports whether a is k with letters left out, keeping the
// first (dn for down, ltncy for latency).
func abbreviates(a, k string) bool {
	if a == "" || k == "" || a[0] != k[0] || len(a) >= len(k) {
		return false
	}
	i := 0
	for j := 0; j < len(k) && i < len(a); j++ {
		if k[j] == a[i] {
			i++
		}
	}
	return i == len(a)
}

// --- scalars -----------------------------------------------------------------

func (p *parser) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.add(n, path, "want "+want+", got "+describe(n), "")
		return nil, false
	}
	return n, true
}

func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	s, ok := p.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	if s.ShortTag() != "!!str" {
		p.add(n, path, "want a string, got "+describe(n), fmt.Sprintf("quote it: %q", n.Value))
		return "", false
	}
	return s.Value, true
}

func (p *parser) oneOf(n *yaml.Node, path, what string, values []string) (string, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(values, s) {
		p.add(n, path, fmt.Sprintf("%q is not a %s", s, what), closestHint(s, values))
		return "", false
	}
	return s, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := p.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	if s.ShortTag() != "!!bool" {
		p.add(n, path, "want true or false, got "+describe(n), "")
		return false, false
	}
	return s.Value == "true" || s.Value == "True" || s.Value == "TRUE", true
}

// integer parses a whole number >= lo.
func (p *parser) integer(n *yaml.Node, path string, lo int64) (int64, bool) {
	s, ok := p.scalar(n, path, "a whole number")
	if !ok {
		return 0, false
	}
	if s.ShortTag() != "!!int" {
		p.add(n, path, "want a whole number, got "+describe(n), "")
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s.Value, "_", ""), 0, 64)
	if err != nil {
		p.add(n, path, fmt.Sprintf("%s is out of range", s.Value), "")
		return 0, false
	}
	if i < lo {
		p.add(n, path, fmt.Sprintf("%d is less than %d", i, lo), "")
		return 0, false
	}
	return i, true
}

// number parses a number >= 0.
func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := p.scalar(n, path, "a number")
	if !ok {
		return 0, false
	}
	if t := s.ShortTag(); t != "!!int" && t != "!!float" {
		p.add(n, path, "want a number, got "+describe(n), "")
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s.Value, "_", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add(n, path, fmt.Sprintf("%s is not a finite number", s.Value), "")
		return 0, false
	}
	if f < 0 {
		p.add(n, path, fmt.Sprintf("%s is negative", s.Value), "")
		return 0, false
	}
	return f, true
}

// duration parses a Go duration >= 0; unit is the unit of the example in
// the hint ("s", "ms", "us").
func (p *parser) duration(n *yaml.Node, path, unit string) (time.Duration, bool) {
	s, ok := p.scalar(n, path, "a duration")
	if !ok {
		return 0, false
	}
	v := s.Value
	d, err := time.ParseDuration(v)
	if err != nil {
		example := "10" + unit
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			example = v + unit
		} else if d, ok := spelledDuration(v); ok {
			example = d
		}
		p.add(n, path, fmt.Sprintf("%q is not a duration", v), "write e.g. "+example)
		return 0, false
	}
	if d < 0 {
		p.add(n, path, fmt.Sprintf("%s is negative", v), "durations are >= 0")
		return 0, false
	}
	return d, true
}

// durationUnits are the ways people write a unit of time, and the Go
// unit each means.
var durationUnits = []struct {
	words []string
	unit  string
}{
	{[]string{"milliseconds", "millisecond", "millisec", "millis", "msecs", "msec", "mss", "ms"}, "ms"},
	{[]string{"microseconds", "microsecond", "micros", "usecs", "usec", "µs", "us"}, "us"},
	{[]string{"nanoseconds", "nanosecond", "nanos", "nsecs", "nsec", "ns"}, "ns"},
	{[]string{"seconds", "second", "secs", "sec", "s"}, "s"},
	{[]string{"minutes", "minute", "mins", "min", "m"}, "m"},
	{[]string{"hours", "hour", "hrs", "hr", "h"}, "h"},
}

// spelledDuration rewrites a duration written with spaces, capitals or
// unit words (300 ms, 2 Seconds, 5 mins) as Go writes it, if that is
// what it is.
func spelledDuration(v string) (string, bool) {
	num := strings.ToLower(strings.Join(strings.Fields(v), ""))
	i := strings.IndexFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return "", false
	}
	word := num[i:]
	for _, u := range durationUnits {
		if slices.Contains(u.words, word) {
			d := num[:i] + u.unit
			if _, err := time.ParseDuration(d); err == nil {
				return d, true
			}
		}
	}
	return "", false
}

// rate parses 50/s, 3000/m or a bare number (per second) into a rate per
// second >= 0.
func (p *parser) rate(n *yaml.Node, path string) (float64, bool) {
	s, ok := p.scalar(n, path, "a rate")
	if !ok {
		return 0, false
	}
	v := strings.TrimSpace(s.Value)
	num, unit, hasUnit := strings.Cut(v, "/")
	per := 1.0
	if hasUnit {
		switch strings.TrimSpace(unit) {
		case "s":
		case "m":
			per = 60
		default:
			p.add(n, path, fmt.Sprintf("%q is not a rate", v), "write e.g. 50/s or 3000/m")
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add(n, path, fmt.Sprintf("%q is not a rate", v), "write e.g. 50/s or 3000/m")
		return 0, false
	}
	if f < 0 {
		p.add(n, path, fmt.Sprintf("%s is negative", v), "")
		return 0, false
	}
	return f / per, true
}

// --- document ------------------------------------------------------------------

func (p *parser) parse(data []byte) *Experiment {
	p.src = newSource(data)
	if off, what := badChar(data); off >= 0 {
		line, col := p.src.pos(off)
		p.addAt(line, col, "", what, "save the file as UTF-8 text")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := p.decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addAt(1, 1, "", "empty file", "an experiment needs name, fallacy, description, load and variants")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		p.addAt(1, 1, "", "empty file", "an experiment needs name, fallacy, description, load and variants")
		return nil
	}
	var extra yaml.Node
	if err := p.decode(dec, &extra); err == nil {
		p.add(&extra, "", "a second document", "an experiment file holds one document; remove the ---")
	}
	if !p.aliasesBounded(doc.Content[0]) {
		return nil
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.add(root, "", "want a mapping of name, fallacy, description, load, variants, faults and hypotheses, got "+describe(root), "")
		return nil
	}
	top, _ := p.mapping(root, "", topKeys, nil)
	p.require(top, "", map[string]string{
		"name":        "write e.g. name: latency",
		"fallacy":     "one of " + strings.Join(fallacies, ", "),
		"description": "one line on what the experiment shows",
		"load":        "write e.g. load: { rate: 50/s, duration: 30s }",
		"variants":    "write e.g. variants: { naive: {} }",
	})
	e := &Experiment{Topology: "embedded"}
	if f, ok := top.get("name"); ok {
		if s, ok := p.str(f.val, "name"); ok {
			if namePattern.MatchString(s) {
				e.Name = s
			} else {
				p.add(f.val, "name", fmt.Sprintf("%q is not a valid name", s), "lower-case letters, digits and -, e.g. latency")
			}
		}
	}
	if f, ok := top.get("fallacy"); ok {
		e.Fallacy, _ = p.oneOf(f.val, "fallacy", "fallacy", fallacies)
	}
	if f, ok := top.get("description"); ok {
		if s, ok := p.str(f.val, "description"); ok {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				p.add(f.val, "description", "empty", "one line on what the experiment shows")
			case strings.Contains(s, "\n"):
				p.add(f.val, "description", "more than one line", "keep it to one line; details belong in docs/")
			}
			e.Description = s
		}
	}
	if f, ok := top.get("topology"); ok {
		e.Topology, _ = p.oneOf(f.val, "topology", "topology", topologies)
	}
	if f, ok := top.get("seed"); ok {
		if i, ok := p.integer(f.val, "seed", math.MinInt64); ok {
			e.Seed = i
		}
	} else {
		h := fnv.New64a()
		h.Write([]byte(e.Name))
		e.Seed = int64(h.Sum64() & math.MaxInt64)
	}
	loadOK := false
	if f, ok := top.get("load"); ok {
		loadOK = p.load(f.val, &e.Load)
	}
	if f, ok := top.get("variants"); ok {
		p.variants(f.val, e)
	}
	faultsOK := true
	if f, ok := top.get("faults"); ok {
		faultsOK = p.faults(f.val, e, loadOK)
	}
	if f, ok := top.get("hypotheses"); ok {
		p.hypotheses(f.val, e, loadOK && faultsOK)
	}
	return e
}

// decode reads the next document, reporting a syntax error. It returns
// io.EOF at the end of the stream.
func (p *parser) decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		// yaml.v3 reports malformed input with panics it recovers
		// itself; this is a second net so that no input crashes a caller.
		if r := recover(); r != nil {
			p.addAt(1, 1, "", fmt.Sprintf("cannot parse YAML: %v", r), "")
			err = fmt.Errorf("parse yaml: %v", r)
		}
	}()
	err = dec.Decode(n)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	line, col, msg := p.src.syntaxPos(err)
	p.addAt(line, col, "", "invalid YAML: "+msg, "")
	return err
}

// MaxAliasNodes bounds what aliases add to a file: the nodes they stand
// for, counted once per use. Without it a small file of aliases of
// aliases stands for billions of nodes ("billion laughs").
const MaxAliasNodes = 1 << 20

// aliasesBounded reports, at the alias that crosses it, a document whose
// aliases stand for more than MaxAliasNodes nodes, or that holds an alias
// inside the node it names. Its work is linear in the document's size.
func (p *parser) aliasesBounded(root *yaml.Node) bool {
	const tooMany = MaxAliasNodes + 1
	// The nodes an anchored node stands for, aliases expanded. Only
	// anchored nodes can be met twice, so only they are remembered.
	size := map[*yaml.Node]int{}
	var expanded func(n *yaml.Node) int
	expanded = func(n *yaml.Node) int {
		if s, ok := size[n]; ok {
			return s
		}
		if n.Anchor != "" {
			size[n] = tooMany // a node met again while it is counted: a cycle
		}
		s := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s += expanded(n.Alias)
		}
		for _, c := range n.Content {
			if s += expanded(c); s > tooMany {
				break
			}
		}
		s = min(s, tooMany)
		if n.Anchor != "" || n.Kind == yaml.AliasNode {
			size[n] = s
		}
		return s
	}
	if expanded(root) < tooMany {
		return true
	}
	// Walk the file as written, adding what each alias stands for, and
	// report the alias that crosses the bound.
	added := 0
	var find func(n *yaml.Node) *yaml.Node
	find = func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.AliasNode {
			if added += size[n]; added > MaxAliasNodes {
				return n
			}
			return nil
		}
		for _, c := range n.Content {
			if a := find(c); a != nil {
				return a
			}
		}
		return nil
	}
	at := find(root)
	if at == nil {
		at = root
	}
	p.add(at, "", fmt.Sprintf("aliases stand for more than %d nodes here, or an alias is inside the node it names", MaxAliasNodes),
		"write the values out, or use fewer aliases of aliases")
	return false
}

// --- load ----------------------------------------------------------------------

func (p *parser) load(n *yaml.Node, l *Workload) bool {
	*l = Workload{Timeout: 2 * time.Second, Drain: 5 * time.Second, MaxInFlight: 1000, Users: 100, Mix: Mix{PlaceOrder: 1}}
	f, ok := p.mapping(n, "load", loadKeys, nil)
	if !ok {
		return false
	}
	before := p.total
	p.require(f, "load", map[string]string{
		"rate":     "write e.g. rate: 50/s",
		"duration": "write e.g. duration: 30s",
	})
	if e, ok := f.get("rate"); ok {
		if r, ok := p.rate(e.val, "load.rate"); ok {
			if r == 0 {
				p.add(e.val, "load.rate", "must be more than 0", "write e.g. 50/s")
			}
			p.boundRate(e.val, "load.rate", r)
			l.Rate = r
		}
	}
	if e, ok := f.get("duration"); ok {
		if d, ok := p.duration(e.val, "load.duration", "s"); ok {
			if d == 0 {
				p.add(e.val, "load.duration", "must be more than 0", "write e.g. 30s")
			}
			p.boundDuration(e.val, "load.duration", d, MaxLoadDuration)
			l.Duration = d
		}
	}
	if e, ok := f.get("timeout"); ok {
		if d, ok := p.duration(e.val, "load.timeout", "s"); ok {
			if d == 0 {
				p.add(e.val, "load.timeout", "must be more than 0", "write e.g. 2s")
			}
			p.boundDuration(e.val, "load.timeout", d, MaxLoadTimeout)
			l.Timeout = d
		}
	}
	if e, ok := f.get("drain"); ok {
		l.Drain, _ = p.duration(e.val, "load.drain", "s")
		p.boundDuration(e.val, "load.drain", l.Drain, MaxLoadDrain)
	}
	if e, ok := f.get("max_in_flight"); ok {
		if i, ok := p.integer(e.val, "load.max_in_flight", 1); ok {
			l.MaxInFlight = int(min(i, math.MaxInt32))
		}
	}
	if e, ok := f.get("users"); ok {
		if i, ok := p.integer(e.val, "load.users", 1); ok {
			l.Users = int(min(i, math.MaxInt32))
		}
	}
	p.loadRetries(f, l)
	if e, ok := f.get("mix"); ok {
		p.mix(e.val, &l.Mix)
	}
	if e, ok := f.get("steps"); ok {
		p.rateSteps(e.val, l)
	}
	return p.total == before
}

func (p *parser) mix(n *yaml.Node, m *Mix) {
	f, ok := p.mapping(n, "load.mix", mixKeys, nil)
	if !ok {
		return
	}
	var place, get float64
	good := true
	if e, ok := f.get("place_order"); ok {
		place, ok = p.number(e.val, "load.mix.place_order")
		good = good && ok
	}
	if e, ok := f.get("get_order"); ok {
		get, ok = p.number(e.val, "load.mix.get_order")
		good = good && ok
	}
	if !good {
		return
	}
	if place+get == 0 {
		p.add(f.node, "load.mix", "the shares add up to 0", "write e.g. mix: { place_order: 0.8, get_order: 0.2 }")
		return
	}
	*m = Mix{PlaceOrder: place / (place + get), GetOrder: get / (place + get)}
}

func (p *parser) rateSteps(n *yaml.Node, l *Workload) {
	if n.Kind != yaml.SequenceNode {
		p.add(n, "load.steps", "want a list, got "+describe(n), "write e.g. steps: [ { at: 10s, rate: 100/s } ]")
		return
	}
	for i, item := range n.Content {
		path := index("load.steps", i)
		f, ok := p.mapping(item, path, stepKeys, nil)
		if !ok {
			continue
		}
		p.require(f, path, map[string]string{"at": "write e.g. at: 10s", "rate": "write e.g. rate: 100/s"})
		var s RateStep
		good := true
		if e, ok := f.get("at"); ok {
			if s.At, ok = p.duration(e.val, path+".at", "s"); ok {
				switch {
				case l.Duration > 0 && s.At >= l.Duration:
					p.add(e.val, path+".at", fmt.Sprintf("%v is not before the end of the load (duration %v)", s.At, l.Duration), "")
					good = false
				case len(l.Steps) > 0 && s.At <= l.Steps[len(l.Steps)-1].At:
					p.add(e.val, path+".at", fmt.Sprintf("%v is not after the previous step (%v)", s.At, l.Steps[len(l.Steps)-1].At), "list steps in time order")
					good = false
				}
			} else {
				good = false
			}
		}
		if e, ok := f.get("rate"); ok {
			s.Rate, ok = p.rate(e.val, path+".rate")
			good = good && ok
			if ok {
				p.boundRate(e.val, path+".rate", s.Rate)
			}
		}
		if good {
			l.Steps = append(l.Steps, s)
		}
	}
}

// --- variants ------------------------------------------------------------------

func knobNames() []string {
	var out []string
	for _, k := range config.Knobs() {
		out = append(out, k.Name)
	}
	return out
}

func (p *parser) variants(n *yaml.Node, e *Experiment) {
	f, ok := p.mapping(n, "variants", nil, nil)
	if !ok {
		return
	}
	if len(f.entries) == 0 {
		p.add(f.node, "variants", "no variant", "write e.g. variants: { naive: {} }")
		return
	}
	known := knobNames()
	for _, ve := range f.entries {
		path := join("variants", ve.name)
		if !identPattern.MatchString(ve.name) {
			p.add(ve.key, path, fmt.Sprintf("%q is not a valid variant name", ve.name), "lower-case letters, digits, _ and -, e.g. naive")
			continue
		}
		p.variantNames = append(p.variantNames, ve.name)
		if p.variantSet == nil {
			p.variantSet = map[string]bool{}
		}
		p.variantSet[ve.name] = true
		v := Variant{Name: ve.name, System: config.Default()}
		if ve.val.Kind == yaml.ScalarNode && ve.val.ShortTag() == "!!null" {
			e.Variants = append(e.Variants, v)
			continue
		}
		kf, ok := p.mapping(ve.val, path, nil, nil)
		if !ok {
			continue
		}
		good := true
		for _, ke := range kf.entries {
			kpath := join(path, ke.name)
			knob, ok := config.Lookup(ke.name)
			if !ok {
				p.add(ke.key, kpath, "unknown knob", closestHint(ke.name, known))
				good = false
				continue
			}
			val := ke.val
			if val.Kind != yaml.ScalarNode || val.ShortTag() == "!!null" {
				p.add(val, kpath, fmt.Sprintf("want a %s value, got %s", knob.Type, describe(val)), knobHint(knob))
				good = false
				continue
			}
			if _, err := knob.Parse(val.Value); err != nil {
				p.add(val, kpath, strings.TrimPrefix(err.Error(), knob.Name+": "), "")
				good = false
				continue
			}
			if err := config.Set(&v.System, knob.Name, val.Value); err != nil {
				p.add(val, kpath, strings.TrimPrefix(err.Error(), knob.Name+": "), "")
				good = false
				continue
			}
			v.Knobs = append(v.Knobs, Knob{Name: knob.Name, Value: val.Value})
		}
		if !good {
			continue
		}
		if err := v.System.Validate(); err != nil {
			p.add(ve.key, path, err.Error(), "")
			continue
		}
		e.Variants = append(e.Variants, v)
	}
}

func knobHint(k config.Knob) string {
	switch k.Type {
	case config.Duration:
		return "write e.g. 100ms, 2s or off"
	case config.Int:
		return "write a whole number, e.g. 3"
	case config.Bool:
		return "write on or off"
	case config.Enum:
		return "one of " + strings.Join(k.Values, ", ")
	}
	return ""
}

// --- hypotheses ------------------------------------------------------------------

func (p *parser) hypotheses(n *yaml.Node, e *Experiment, scheduleOK bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, "hypotheses", "want a list, got "+describe(n), `write e.g. hypotheses: [ { when: always, check: "events.lost == 0" } ]`)
		return
	}
	ph := e.Phases()
	hc := hypothesisContext{e: e, scheduleOK: scheduleOK,
		windows: map[Phase]Window{Before: ph.Before, During: ph.During, After: ph.After}}
	for i, item := range n.Content {
		if h, ok := p.hypothesis(item, index("hypotheses", i), hc); ok {
			e.Hypotheses = append(e.Hypotheses, h)
		}
	}
}

// hypothesisContext is what checking each hypothesis against the
// schedule needs.
type hypothesisContext struct {
	e          *Experiment
	windows    map[Phase]Window // the phases' windows
	scheduleOK bool             // load and faults parsed: the windows are right
}

// countedFault returns the fault a fault.<fault>.<counter> metric reads.
func countedFault(metric string) (string, bool) {
	rest, ok := strings.CutPrefix(metric, "fault.")
	if !ok {
		return "", false
	}
	fault, _, ok := strings.Cut(rest, ".")
	return fault, ok
}

func (hc hypothesisContext) hasFault(name string) bool {
	return slices.ContainsFunc(hc.e.Faults, func(f faults.Fault) bool { return f.Name == name })
}

func (hc hypothesisContext) faultNames() []string {
	var out []string
	for _, f := range hc.e.Faults {
		out = append(out, f.Name)
	}
	return out
}

// emptyPhase explains why phase has no window, or returns "" (always
// when the schedule did not parse).
func (hc hypothesisContext) emptyPhase(phase Phase) (msg, hint string) {
	if !hc.scheduleOK {
		return "", ""
	}
	return emptyPhase(phase, hc.windows, len(hc.e.Faults))
}

// hypothesis reads one hypothesis; false when it reported an error.
func (p *parser) hypothesis(item *yaml.Node, path string, hc hypothesisContext) (Hypothesis, bool) {
	f, ok := p.mapping(item, path, hypoKeys, nil)
	if !ok {
		return Hypothesis{}, false
	}
	p.require(f, path, map[string]string{
		"when":  "one of before, during, after, always",
		"check": `write e.g. check: "order.success_rate >= 99%"`,
	})
	h := Hypothesis{}
	good := true
	if en, ok := f.get("when"); ok {
		var s string
		if s, ok = p.oneOf(en.val, path+".when", "phase", []string{"before", "during", "after", "always"}); ok {
			h.When = Phase(s)
			if msg, hint := hc.emptyPhase(h.When); msg != "" {
				p.add(en.val, path+".when", msg, hint)
				good = false
			}
		} else {
			good = false
		}
	}
	if en, ok := f.get("variant"); ok {
		h.Variant, ok = p.hypothesisVariant(en.val, path+".variant")
		good = good && ok
	}
	if en, ok := f.get("abort"); ok {
		h.Abort, ok = p.boolean(en.val, path+".abort")
		good = good && ok
	}
	if en, ok := f.get("name"); ok {
		h.Name, ok = p.str(en.val, path+".name")
		good = good && ok
	}
	if en, ok := f.get("check"); ok {
		good = p.hypothesisCheck(en.val, path+".check", &h, hc) && good
	}
	if h.Name == "" {
		h.Name = h.Check
	}
	return h, good
}

// hypothesisVariant reads the variant a hypothesis applies to: one of the
// file's.
func (p *parser) hypothesisVariant(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	if !p.variantSet[s] {
		hint := ""
		if len(p.variantNames) > 0 && len(p.variantNames) <= maxListed {
			hint = "variants: " + strings.Join(p.variantNames, ", ")
		}
		p.add(n, path, fmt.Sprintf("%q is not a variant of this experiment", s), hint)
		return s, false
	}
	return s, true
}

// hypothesisCheck parses the check of h: an expression over the metric
// vocabulary that can be read in h's phase, each phase it names having a
// window. An error in the expression is reported at its character.
func (p *parser) hypothesisCheck(n *yaml.Node, path string, h *Hypothesis, hc hypothesisContext) bool {
	s, ok := p.str(n, path)
	if !ok {
		return false
	}
	// Line and Col point at the first character of the expression:
	// inside the quotes of a quoted scalar, on the line after the header
	// of a block scalar.
	h.Check = s
	h.Line, h.Col = p.src.valuePos(n, 0)
	x, err := check.ParseExpr(s, metrics.Vocabulary)
	if err == nil && h.When != "" {
		err = check.CheckWhen(x, string(h.When))
	}
	var xe *check.ExprError
	switch {
	case errors.As(err, &xe):
		line, col := p.src.valuePos(n, xe.Col-1)
		p.addAt(line, col, path, xe.Msg, xe.Hint)
		return false
	case err != nil:
		p.add(n, path, err.Error(), "")
		return false
	}
	h.Expr = x
	good := true
	for _, m := range x.Metrics() {
		_, name := check.SplitPhase(m)
		if fault, ok := countedFault(name); ok && hc.scheduleOK && !hc.hasFault(fault) {
			p.add(n, path, fmt.Sprintf("%s reads the counters of fault %q, which this experiment does not declare", m, fault), "faults: "+strings.Join(hc.faultNames(), ", "))
			good = false
		}
	}
	for _, m := range x.Metrics() {
		phase, _ := check.SplitPhase(m)
		if phase == "" {
			continue
		}
		if msg, hint := hc.emptyPhase(Phase(phase)); msg != "" {
			p.add(n, path, m+" reads the "+phase+" phase, but "+msg, hint)
			good = false
		}
	}
	return good
}

// emptyPhase explains why a phase has no window, or returns "".
func emptyPhase(p Phase, windows map[Phase]Window, nfaults int) (msg, hint string) {
	w, ok := windows[p]
	if !ok || !w.Empty() {
		return "", ""
	}
	switch {
	case nfaults == 0 && (p == During || p == After):
		return fmt.Sprintf("there is no %s phase without a fault", p), "add a fault, or use when: before or always"
	case p == Before:
		return "there is no before phase: the first fault starts at 0s", "start it later to measure the steady state"
	case p == After:
		return "there is no after phase: the last fault lasts until the end of the load", "give it a for, or make the load longer"
	}
	return fmt.Sprintf("the %s phase is empty", p), ""
}
