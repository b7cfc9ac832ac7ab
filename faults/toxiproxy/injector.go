package toxiproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/grpclayer"
	"github.com/fallacies/fallacies/faults/natslayer"
)

// ErrUnreachable is matched (errors.Is) by errors saying the Toxiproxy API
// did not answer at all: refused, timed out, or not HTTP.
var ErrUnreachable = errors.New("toxiproxy API not reachable")

// APIError is an error answer of the Toxiproxy API.
type APIError struct {
	Status  int    // HTTP status
	Message string // Toxiproxy's message, e.g. "proxy not found"
	raw     bool   // the answer was not Toxiproxy's JSON error
}

// Error returns Toxiproxy's message.
func (e *APIError) Error() string { return e.Message }

// unreachableError says the API did not answer; it matches ErrUnreachable.
type unreachableError struct {
	prefix string
	err    error
}

func (e *unreachableError) Error() string        { return e.prefix + e.err.Error() }
func (e *unreachableError) Unwrap() error        { return e.err }
func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

// Handles of an Applied fault made by the Injector.
const (
	handleToxicPrefix = "toxic/"   // followed by the toxic name
	handleDisabled    = "disabled" // the proxy was disabled
)

// ProxyInfo describes one proxy of a Toxiproxy.
type ProxyInfo struct {
	Name     string      `json:"name"`
	Listen   string      `json:"listen"`
	Upstream string      `json:"upstream"`
	Enabled  bool        `json:"enabled"`
	Toxics   []ToxicInfo `json:"toxics"`
}

// ToxicInfo describes one toxic on a proxy.
type ToxicInfo struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// Injector applies network faults through the HTTP API of a Toxiproxy: the
// embedded Server or any toxiproxy-server. Every apply is journaled (when it
// has a Journal) before it is made. It is safe for concurrent use.
type Injector struct {
	api     string
	journal *faults.Journal
	client  *http.Client

	calls    *ruleLayers[grpclayer.Rule] // gRPC layers interposed for call-level faults
	messages *ruleLayers[natslayer.Rule] // NATS layers interposed for message-level faults

	mu      sync.Mutex
	active  map[string]faults.Entry // faults on, by key
	sniffed map[string][]byte       // what removed sniffers saw, by proxy
}

var _ faults.Injector = (*Injector)(nil)

// Name is the injector's name in the fault journal (faults.Entry.Injector);
// an entry's At is the Toxiproxy API URL and the proxy is its fault's
// target.
const Name = "toxiproxy"

// NewInjector returns an Injector for the Toxiproxy API at apiURL (e.g.
// "http://127.0.0.1:8474"; "127.0.0.1:8474" is taken as http). journal may
// be nil, in which case nothing is journaled.
func NewInjector(apiURL string, journal *faults.Journal) *Injector {
	return &Injector{
		api:     normalizeURL(apiURL),
		journal: journal,
		client: &http.Client{
			Timeout: 30 * time.Second,
			// No idle connections are kept: faults are applied a few at a
			// time, and an Injector then has no goroutines to stop.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
		calls:    newCallLayers(),
		messages: newMessageLayers(),
		active:   map[string]faults.Entry{},
		sniffed:  map[string][]byte{},
	}
}

func normalizeURL(u string) string {
	u = strings.TrimRight(strings.TrimSpace(u), "/")
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = "http://" + u
	}
	return u
}

// URL returns the API address the Injector talks to.
func (i *Injector) URL() string { return i.api }

// Ping checks that a Toxiproxy answers at the API address (GET /version).
func (i *Injector) Ping(ctx context.Context) error {
	if _, err := i.send(ctx, http.MethodGet, "/version", nil); err != nil {
		if ue, ok := errors.AsType[*unreachableError](err); ok {
			return &unreachableError{prefix: fmt.Sprintf("toxiproxy API at %s is not reachable: ", i.api), err: ue.err}
		}
		return fmt.Errorf("toxiproxy API at %s: GET /version: %w", i.api, err)
	}
	return nil
}

// Proxies lists the proxies of the Toxiproxy by name.
func (i *Injector) Proxies(ctx context.Context) (map[string]ProxyInfo, error) {
	body, err := i.send(ctx, http.MethodGet, "/proxies", nil)
	if err != nil {
		return nil, fmt.Errorf("list proxies at %s: %w", i.api, err)
	}
	var out map[string]ProxyInfo
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("list proxies at %s: decode: %w", i.api, err)
	}
	return out, nil
}

// Existing describes the faults already on the proxies of the Toxiproxy,
// one line per proxy that has toxics or is disabled, e.g.
// `proxy user: toxics slow (latency, downstream)` or `proxy payment:
// disabled`, sorted by proxy name; none when every proxy is clean.
func (i *Injector) Existing(ctx context.Context) ([]string, error) {
	proxies, err := i.Proxies(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(proxies)) {
		p := proxies[name]
		var what []string
		if !p.Enabled {
			what = append(what, "disabled")
		}
		if len(p.Toxics) > 0 {
			ts := make([]string, len(p.Toxics))
			for k, t := range p.Toxics {
				ts[k] = fmt.Sprintf("%s (%s, %s)", t.Name, t.Type, t.Stream)
			}
			what = append(what, "toxics "+strings.Join(ts, ", "))
		}
		if len(what) > 0 {
			out = append(out, fmt.Sprintf("proxy %s: %s", name, strings.Join(what, "; ")))
		}
	}
	return out, nil
}

// Sniffed returns the bytes seen by the sniffer on the proxy: those of the
// sniffer toxics on it now or, when there is none, those the last sniffer
// fault this Injector removed from it had seen. It needs the embedded
// Server, which serves GET /fallacies/sniffer/{proxy}.
func (i *Injector) Sniffed(ctx context.Context, proxy string) ([]byte, error) {
	sn, err := i.fetchSniff(ctx, proxy)
	if err != nil {
		return nil, fmt.Errorf("read sniffer of proxy %q at %s: %w", proxy, i.api, err)
	}
	if len(sn.Toxics) > 0 {
		return sn.Sample, nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.sniffed[proxy]), nil
}

func (i *Injector) fetchSniff(ctx context.Context, proxy string) (Sniff, error) {
	body, err := i.send(ctx, http.MethodGet, "/fallacies/sniffer/"+url.PathEscape(proxy), nil)
	if err != nil {
		if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.Status == http.StatusNotFound && apiErr.raw {
			return Sniff{}, fmt.Errorf("no sniffer endpoint: the sniffer needs the embedded toxiproxy server: %w", err)
		}
		return Sniff{}, err
	}
	var sn Sniff
	if err := json.Unmarshal(body, &sn); err != nil {
		return Sniff{}, fmt.Errorf("decode sniffer answer: %w", err)
	}
	return sn, nil
}

// toxicRequest is the body of POST /proxies/{proxy}/toxics.
type toxicRequest struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Stream     string           `json:"stream"`
	Toxicity   float64          `json:"toxicity"`
	Attributes map[string]int64 `json:"attributes"`
}

// plan is what applying a fault does on one proxy.
type plan struct {
	toxics  []toxicRequest
	disable bool
}

func (p plan) handles() []string {
	var h []string
	for _, t := range p.toxics {
		h = append(h, handleToxicPrefix+t.Name)
	}
	if p.disable {
		h = append(h, handleDisabled)
	}
	return h
}

// planFor turns a fault into Toxiproxy operations: what its kind's
// faults.ProxyKind says, a toxic on each stream of its direction or the
// proxy disabled. Attribute values are taken in the units of the kind's
// faults.Spec, which are those of Toxiproxy's API (milliseconds, KB/s,
// bytes; the slicer's delay in microseconds).
func planFor(f faults.Fault) (plan, error) {
	spec, ok := faults.Lookup(f.Kind)
	if !ok {
		return plan{}, fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	onProxy, ok := faults.As[faults.ProxyKind](f.Kind)
	if !ok {
		return plan{}, fmt.Errorf("fault kind %s is not applied by Toxiproxy (it targets a %s)", f.Kind, spec.Target)
	}
	if f.Target == "" {
		return plan{}, errors.New("no target proxy")
	}
	for name := range f.Attrs {
		if _, ok := spec.Attr(name); !ok {
			return plan{}, fmt.Errorf("unknown attribute %q for %s", name, f.Kind)
		}
	}
	attrs := spec.WithDefaults(f.Attrs)
	if _, err := spec.CheckAttrs(attrs); err != nil {
		return plan{}, fmt.Errorf("%s fault: %w", f.Kind, err)
	}
	action := onProxy.OnProxy(attrs)
	p := plan{disable: action.Disable}
	if action.Toxic == "" {
		return p, nil
	}
	if f.Toxicity < 0 || f.Toxicity > 1 {
		return plan{}, fmt.Errorf("toxicity %g out of range (0, 1]", f.Toxicity)
	}
	toxicity := f.Toxicity
	if toxicity == 0 {
		toxicity = 1
	}
	var streams []faults.Direction
	switch f.Direction {
	case "", faults.Both:
		streams = []faults.Direction{faults.Upstream, faults.Downstream}
	case faults.Upstream, faults.Downstream:
		streams = []faults.Direction{f.Direction}
	default:
		return plan{}, fmt.Errorf("unknown direction %q (upstream, downstream or both)", f.Direction)
	}
	base := f.Name
	if base == "" {
		base = string(f.Kind)
	}
	for _, s := range streams {
		p.toxics = append(p.toxics, toxicRequest{
			Name:       "fallacies-" + sanitize(base) + "-" + string(s),
			Type:       action.Toxic,
			Stream:     string(s),
			Toxicity:   toxicity,
			Attributes: maps.Clone(action.Attributes),
		})
	}
	return p, nil
}

// IsSniffer reports whether faults of kind k are applied as the sniffer
// toxic, whose recording Sniffed reads (and Remove keeps).
func IsSniffer(k faults.Kind) bool {
	spec, _ := faults.Lookup(k)
	onProxy, ok := faults.As[faults.ProxyKind](k)
	return ok && onProxy.OnProxy(spec.WithDefaults(nil)).Toxic == SnifferType
}

// sanitize keeps a fault name usable as one segment of a URL path.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, s)
}

func key(api, proxy string, handles []string) string {
	return api + "\x00" + proxy + "\x00" + strings.Join(handles, "\x00")
}

// Apply puts the fault on its proxy: one toxic per stream (two for
// direction both) named "fallacies-<fault name>-<stream>", or for a
// partition the proxy disabled. The journal record is on disk before the
// first request. If the apply fails, whatever part of it was made is taken
// off again and the journal says so; if even that fails, the entry stays
// outstanding for RemoveAll or Reset.
func (i *Injector) Apply(ctx context.Context, f faults.Fault) (faults.Applied, error) {
	if r, ok, err := callRule(f); ok {
		if err != nil {
			return faults.Applied{}, i.errf("apply", f, err)
		}
		return i.calls.apply(ctx, i, f, r)
	}
	if r, ok, err := messageRule(f); ok {
		if err != nil {
			return faults.Applied{}, i.errf("apply", f, err)
		}
		return i.messages.apply(ctx, i, f, r)
	}
	p, err := planFor(f)
	if err != nil {
		return faults.Applied{}, i.errf("apply", f, err)
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.api, Handles: p.handles(), Time: time.Now()}
	if i.journal != nil {
		if err := i.journal.Applying(e); err != nil {
			return faults.Applied{}, i.errf("apply", f, err)
		}
	}
	if made, err := i.do(ctx, f.Target, p); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		partial := e
		partial.Handles = e.Handles[:made]
		if rbErr := i.undo(rctx, partial); rbErr != nil {
			i.track(e) // still possibly on: RemoveAll and Reset retry it
			return faults.Applied{}, i.errf("apply", f, errors.Join(err, fmt.Errorf("roll back: %w", rbErr)))
		}
		if i.journal != nil {
			if jErr := i.journal.Failed(e.ID, err); jErr != nil {
				err = errors.Join(err, jErr)
			}
		}
		return faults.Applied{}, i.errf("apply", f, err)
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: slices.Clone(e.Handles), Start: time.Now()}, nil
}

func (i *Injector) errf(verb string, f faults.Fault, err error) error {
	return fmt.Errorf("%s %s on proxy %q at %s: %w", verb, f.Kind, f.Target, i.api, err)
}

func (i *Injector) track(e faults.Entry) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.active[key(e.At, e.Fault.Target, e.Handles)] = e
}

// do makes the requests of a plan, stopping at the first failure. It
// returns how many of the plan's handles may be in effect: those made, and
// the failed one unless it surely was not (the API refused it, or the
// connection was never made).
func (i *Injector) do(ctx context.Context, proxy string, p plan) (int, error) {
	base := "/proxies/" + url.PathEscape(proxy)
	made := 0
	maybe := func(err error) int {
		if _, ok := errors.AsType[*APIError](err); ok {
			return made
		}
		if ne, ok := errors.AsType[*net.OpError](err); ok && ne.Op == "dial" {
			return made
		}
		return made + 1
	}
	for _, t := range p.toxics {
		body, err := json.Marshal(t)
		if err != nil {
			return made, fmt.Errorf("encode toxic %s: %w", t.Name, err)
		}
		if _, err := i.send(ctx, http.MethodPost, base+"/toxics", body); err != nil {
			return maybe(err), err
		}
		made++
	}
	if p.disable {
		if _, err := i.send(ctx, http.MethodPatch, base, []byte(`{"enabled":false}`)); err != nil {
			return maybe(err), err
		}
		made++
	}
	return made, nil
}

// undo takes off what the entry's handles name, newest first. What is
// already gone (toxic or proxy not found) counts as taken off.
func (i *Injector) undo(ctx context.Context, e faults.Entry) error {
	base := "/proxies/" + url.PathEscape(e.Fault.Target)
	var errs []error
	for _, h := range slices.Backward(e.Handles) {
		var err error
		switch {
		case strings.HasPrefix(h, handleToxicPrefix):
			name := strings.TrimPrefix(h, handleToxicPrefix)
			if _, err = i.send(ctx, http.MethodDelete, base+"/toxics/"+url.PathEscape(name), nil); err != nil {
				err = fmt.Errorf("remove toxic %s: %w", name, err)
			}
		case strings.HasPrefix(h, handleUpstreamPrefix):
			err = i.undoUpstream(ctx, e.Fault.Target, h)
		case strings.HasPrefix(h, handleCallPrefix):
			err = i.calls.undo(ctx, i, e.Fault.Target, h)
		case strings.HasPrefix(h, handleMessagePrefix):
			err = i.messages.undo(ctx, i, e.Fault.Target, h)
		case strings.HasPrefix(h, handleLayerPrefix):
			err = i.stopLayer(ctx, strings.TrimPrefix(h, handleLayerPrefix))
		case h == handleDisabled:
			if _, err = i.send(ctx, http.MethodPatch, base, []byte(`{"enabled":true}`)); err != nil {
				err = fmt.Errorf("enable: %w", err)
			}
		default:
			err = fmt.Errorf("unknown handle %q", h)
		}
		if isGone(err) {
			err = nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Remove takes the fault off: its toxics deleted, or its proxy enabled
// again. A fault already gone is removed successfully. The journal records
// the removal once it is done. Removing a sniffer keeps what it saw for
// Sniffed.
func (i *Injector) Remove(ctx context.Context, a faults.Applied) error {
	e := faults.Entry{Injector: Name, Fault: a.Fault, At: i.api, Handles: a.Handles}
	proxy := a.Fault.Target
	k := key(e.At, proxy, e.Handles)
	if IsSniffer(a.Fault.Kind) {
		if sn, err := i.fetchSniff(ctx, proxy); err == nil && len(sn.Toxics) > 0 {
			i.mu.Lock()
			i.sniffed[proxy] = sn.Sample
			i.mu.Unlock()
		}
	}
	if err := i.undo(ctx, e); err != nil {
		return i.errf("remove", a.Fault, err)
	}
	ids, err := i.idsOf(k)
	if err == nil {
		err = i.markRemoved(ids)
	}
	i.mu.Lock()
	delete(i.active, k)
	i.mu.Unlock()
	if err != nil {
		return i.errf("remove", a.Fault, err)
	}
	return nil
}

// idsOf returns the journal ids of the fault with key k: the one this
// Injector applied or, for one applied by another (e.g. before a crash),
// the outstanding journal entries that match.
func (i *Injector) idsOf(k string) ([]string, error) {
	i.mu.Lock()
	e, ok := i.active[k]
	i.mu.Unlock()
	if ok {
		return []string{e.ID}, nil
	}
	if i.journal == nil {
		return nil, nil
	}
	entries, err := i.journal.OutstandingOf(Name)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if key(normalizeURL(e.At), e.Fault.Target, e.Handles) == k {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

func (i *Injector) markRemoved(ids []string) error {
	if i.journal == nil {
		return nil
	}
	var errs []error
	for _, id := range ids {
		if err := i.journal.Removed(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveAll takes off every fault this Injector applied that is still on.
// The runner calls it on every way out of a run. It tries every fault and
// returns the errors of those it could not remove.
func (i *Injector) RemoveAll(ctx context.Context) error {
	i.mu.Lock()
	entries := slices.Collect(maps.Values(i.active))
	i.mu.Unlock()
	slices.SortFunc(entries, func(a, b faults.Entry) int { return b.Time.Compare(a.Time) })
	var errs []error
	for _, e := range entries {
		if err := i.Remove(ctx, faults.Applied{Fault: e.Fault, Handles: e.Handles}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reset removes from the Toxiproxy at apiURL every fault the journal lists
// as applied there and not removed (toxics deleted, disabled proxies
// enabled, interposed proxies pointed back and their layers stopped on the
// layer host), recording each removal. With all, it then also deletes
// every other toxic on every proxy of that Toxiproxy, enables every
// proxy, and takes every layer of its layer host off its link and stops
// it. It returns how many faults, toxics, proxies and layers it removed,
// enabled or stopped.
// journal may be nil. It checks that the API answers first, even with
// nothing to remove: an API that does not answer is an error matching
// ErrUnreachable, and nothing was removed.
func Reset(ctx context.Context, apiURL string, journal *faults.Journal, all bool) (removed int, err error) {
	inj := NewInjector(apiURL, journal)
	if err := inj.Ping(ctx); err != nil {
		return 0, err
	}
	var errs []error
	if journal != nil {
		entries, err := journal.OutstandingOf(Name)
		if err != nil {
			return 0, fmt.Errorf("reset %s: %w", inj.api, err)
		}
		for _, e := range entries {
			if normalizeURL(e.At) != inj.api {
				continue
			}
			if err := inj.undo(ctx, e); err != nil {
				errs = append(errs, fmt.Errorf("reset %s on proxy %q at %s: %w", e.Fault.Kind, e.Fault.Target, inj.api, err))
				continue
			}
			if err := journal.Removed(e.ID); err != nil {
				errs = append(errs, fmt.Errorf("reset %s on proxy %q: %w", e.Fault.Kind, e.Fault.Target, err))
				continue
			}
			removed++
		}
	}
	if all {
		n, err := inj.resetAll(ctx)
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// resetAll deletes every toxic, enables every proxy, points every proxy
// sent to a layer of the layer host back at what the layer forwards to,
// and stops every layer.
func (i *Injector) resetAll(ctx context.Context) (int, error) {
	proxies, err := i.Proxies(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset all: %w", err)
	}
	n, err := i.resetLayers(ctx, proxies)
	errs := []error{err}
	for _, name := range slices.Sorted(maps.Keys(proxies)) {
		p := proxies[name]
		var handles []string
		if !p.Enabled {
			handles = append(handles, handleDisabled)
		}
		for _, t := range p.Toxics {
			handles = append(handles, handleToxicPrefix+t.Name)
		}
		if len(handles) == 0 {
			continue
		}
		if err := i.undo(ctx, faults.Entry{Fault: faults.Fault{Target: name}, Handles: handles}); err != nil {
			errs = append(errs, fmt.Errorf("reset proxy %q at %s: %w", name, i.api, err))
			continue
		}
		n += len(handles)
	}
	return n, errors.Join(errs...)
}

// resetLayers points every proxy whose upstream is a layer of the layer
// host at the first upstream that is not one (layers may be stacked on a
// link), then stops every layer. It returns how many proxies and layers
// it reset.
func (i *Injector) resetLayers(ctx context.Context, proxies map[string]ProxyInfo) (int, error) {
	layers, err := i.Layers(ctx)
	if err != nil || len(layers) == 0 {
		return 0, err
	}
	behind := map[string]string{} // a layer's address → its upstream
	for _, l := range layers {
		behind[l.Addr] = l.Upstream
	}
	n := 0
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(proxies)) {
		up := proxies[name].Upstream
		for range layers {
			next, isLayer := behind[up]
			if !isLayer {
				break
			}
			up = next
		}
		if up == proxies[name].Upstream {
			continue
		}
		if err := i.setUpstream(ctx, name, up); err != nil {
			errs = append(errs, fmt.Errorf("reset proxy %q at %s: %w", name, i.api, err))
			continue
		}
		n++
	}
	for _, l := range layers {
		if err := i.stopLayer(ctx, l.Ref); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("reset at %s: %w", i.api, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// send makes one API request and returns the answer's body. A non-2xx
// answer is an *APIError; no answer at all matches ErrUnreachable.
func (i *Injector) send(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, i.api+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("User-Agent", "fallacies")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := i.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		inner := err
		if ue, ok := errors.AsType[*url.Error](err); ok {
			inner = ue.Err
		}
		return nil, &unreachableError{prefix: ErrUnreachable.Error() + ": ", err: inner}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &unreachableError{prefix: ErrUnreachable.Error() + ": ", err: fmt.Errorf("read answer to %s %s: %w", method, path, err)}
	}
	if resp.StatusCode/100 != 2 {
		apiErr := &APIError{Status: resp.StatusCode}
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &msg) == nil && msg.Error != "" {
			apiErr.Message = msg.Error
		} else {
			apiErr.raw = true
			apiErr.Message = fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
		}
		return nil, apiErr
	}
	return data, nil
}
