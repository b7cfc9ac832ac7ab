package toxiproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/grpclayer"
	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/faults/segment"
)

// The layer host: the link layers of the packet, call-level and
// message-level faults
// (faults.HostedLayer) run beside the proxies, in the process of the
// Toxiproxy server (Start), which serves their control API on its own
// guarded API, under /fallacies/layers:
//
//	GET    /fallacies/layers                        the layers running: [{ref, type, id, upstream, addr}]
//	PUT    /fallacies/layers/{type}/{id}            start one: {"upstream": "user:7002", "seed": 1} → {ref, …, addr}
//	PUT    /fallacies/layers/{type}/{id}/rules      replace its rules (its type's rules as JSON)
//	GET    /fallacies/layers/{type}/{id}/counters   its counters: {rule: {counter: n}}
//	DELETE /fallacies/layers/{type}/{id}            stop it (404 when there is none)
//
// The client picks the id, so that it journals the layer before starting
// it. Because the layers run where the proxies run, every topology has
// them: the embedded and processes topologies' Toxiproxy is in the
// runner's process, `fallacies up`'s in its own, the compose topology's in
// its toxiproxy container (`fallacies serve toxiproxy`); the proxies dial
// a layer on 127.0.0.1. Errors are answered as {"error": "…"}, like
// Toxiproxy's own.

// layerTypes are the layer types the host runs, by name (faults.Layer*).
// A new layer type is one entry here.
var layerTypes = map[string]layerType{
	faults.LayerSegment: startSegment,
	faults.LayerGRPC:    startGRPCLayer,
	faults.LayerNATS:    startNATSLayer,
}

// layerType starts a layer of one type listening on 127.0.0.1 and
// forwarding to upstream; seed makes its random draws repeatable.
type layerType func(upstream string, seed uint64) (runningLayer, error)

// runningLayer is a layer the host runs.
type runningLayer interface {
	Addr() string
	// SetRules replaces the rules with those encoded in rules.
	SetRules(rules json.RawMessage) error
	// Counters are the layer's counters by rule name ("" for the whole layer's).
	Counters() map[string]map[string]uint64
	Close() error
}

// segmentLayer is a packet segment; its rules are [2]segment.Rules, to the
// server then to the client.
type segmentLayer struct{ seg *segment.Segment }

func startSegment(upstream string, seed uint64) (runningLayer, error) {
	s, err := segment.New("127.0.0.1:0", upstream, seed)
	if err != nil {
		return nil, err
	}
	return segmentLayer{s}, nil
}

func (s segmentLayer) Addr() string { return s.seg.Addr() }
func (s segmentLayer) Close() error { return s.seg.Close() }
func (s segmentLayer) Counters() map[string]map[string]uint64 {
	return map[string]map[string]uint64{"": s.seg.Counters().Map()}
}
func (s segmentLayer) SetRules(raw json.RawMessage) error {
	var rs [2]segment.Rules
	if err := decodeStrict(raw, &rs); err != nil {
		return err
	}
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	return s.seg.Set(rs[0], rs[1])
}

// grpcLayer is a gRPC call layer; its rules are []grpclayer.Rule.
type grpcLayer struct{ layer *grpclayer.Layer }

func startGRPCLayer(upstream string, _ uint64) (runningLayer, error) {
	l, err := grpclayer.Listen("127.0.0.1", upstream)
	if err != nil {
		return nil, err
	}
	return grpcLayer{l}, nil
}

func (g grpcLayer) Addr() string { return g.layer.Addr() }
func (g grpcLayer) Close() error { return g.layer.Close() }
func (g grpcLayer) Counters() map[string]map[string]uint64 {
	out := map[string]map[string]uint64{}
	for name, c := range g.layer.Counters() {
		out[name] = c.Map()
	}
	return out
}
func (g grpcLayer) SetRules(raw json.RawMessage) error {
	var rs []grpclayer.Rule
	if err := decodeStrict(raw, &rs); err != nil {
		return err
	}
	for _, r := range rs {
		if err := r.Check(); err != nil {
			return err
		}
	}
	return g.layer.SetRules(rs)
}

// natsLayer is a NATS message layer; its rules are []natslayer.Rule.
type natsLayer struct{ layer *natslayer.Layer }

func startNATSLayer(upstream string, _ uint64) (runningLayer, error) {
	l, err := natslayer.Listen("127.0.0.1", upstream)
	if err != nil {
		return nil, err
	}
	return natsLayer{l}, nil
}

func (n natsLayer) Addr() string { return n.layer.Addr() }
func (n natsLayer) Close() error { return n.layer.Close() }
func (n natsLayer) Counters() map[string]map[string]uint64 {
	all := n.layer.Counters()
	out := make(map[string]map[string]uint64, len(all))
	for _, r := range n.layer.Rules() {
		if c, ok := all[r.Name]; ok {
			out[r.Name] = c.Map(r.Kind)
		}
	}
	return out
}
func (n natsLayer) SetRules(raw json.RawMessage) error {
	var rs []natslayer.Rule
	if err := decodeStrict(raw, &rs); err != nil {
		return err
	}
	for _, r := range rs {
		if err := r.Check(); err != nil {
			return err
		}
	}
	return n.layer.SetRules(rs)
}

// decodeStrict decodes one JSON value, refusing unknown fields.
func decodeStrict(raw []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	return nil
}

// LayerInfo describes a layer running on a layer host.
type LayerInfo struct {
	Ref      string `json:"ref"` // type/id
	Type     string `json:"type"`
	ID       string `json:"id"`
	Upstream string `json:"upstream"` // what it forwards to
	Addr     string `json:"addr"`     // where a proxy sends to it
}

// layerStart is the body that starts a layer.
type layerStart struct {
	Upstream string `json:"upstream"`
	Seed     uint64 `json:"seed"`
}

// maxLayers bounds the layers a host runs at once: a run has one per
// link at most (six links, a few layer types).
const maxLayers = 64

var layerID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// layerHost runs the layers of one Toxiproxy server. Its methods are safe
// for concurrent use.
type layerHost struct {
	mu     sync.Mutex
	layers map[string]hostedEntry // by ref
	closed bool
}

type hostedEntry struct {
	info  LayerInfo
	layer runningLayer
}

func newLayerHost() *layerHost { return &layerHost{layers: map[string]hostedEntry{}} }

// routes adds the host's routes to mux.
func (h *layerHost) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /fallacies/layers", h.list)
	mux.HandleFunc("PUT /fallacies/layers/{type}/{id}", h.start)
	mux.HandleFunc("DELETE /fallacies/layers/{type}/{id}", h.stop)
	mux.HandleFunc("PUT /fallacies/layers/{type}/{id}/rules", h.setRules)
	mux.HandleFunc("GET /fallacies/layers/{type}/{id}/counters", h.counters)
}

func (h *layerHost) list(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	out := []LayerInfo{}
	for _, ref := range slices.Sorted(maps.Keys(h.layers)) {
		out = append(out, h.layers[ref].info)
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (h *layerHost) start(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	start, ok := layerTypes[typ]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("no layer type %q (types: %s)", typ, strings.Join(slices.Sorted(maps.Keys(layerTypes)), ", ")))
		return
	}
	if !layerID.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("layer id %q: write 1 to 64 letters, digits, - or _", id))
		return
	}
	var body layerStart
	if err := decodeStrict(readBody(w, r), &body); err != nil {
		writeError(w, http.StatusBadRequest, "start layer: "+strings.TrimPrefix(err.Error(), "rules: "))
		return
	}
	if _, _, err := net.SplitHostPort(body.Upstream); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("start layer: upstream %q is not host:port", body.Upstream))
		return
	}
	ref := typ + "/" + id
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		writeError(w, http.StatusServiceUnavailable, "the layer host is shutting down")
		return
	case h.layers[ref].layer != nil:
		writeError(w, http.StatusConflict, fmt.Sprintf("layer %s is already running", ref))
		return
	case len(h.layers) >= maxLayers:
		writeError(w, http.StatusConflict, fmt.Sprintf("%d layers are running, the most a host runs: stop one first", maxLayers))
		return
	}
	l, err := start(body.Upstream, body.Seed)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("start layer %s in front of %s: %v", ref, body.Upstream, err))
		return
	}
	info := LayerInfo{Ref: ref, Type: typ, ID: id, Upstream: body.Upstream, Addr: l.Addr()}
	h.layers[ref] = hostedEntry{info: info, layer: l}
	writeJSON(w, http.StatusCreated, info)
}

// find returns the layer the request names, or answers 404.
func (h *layerHost) find(w http.ResponseWriter, r *http.Request) (hostedEntry, bool) {
	ref := r.PathValue("type") + "/" + r.PathValue("id")
	h.mu.Lock()
	e, ok := h.layers[ref]
	h.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no layer %s", ref))
	}
	return e, ok
}

func (h *layerHost) stop(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("type") + "/" + r.PathValue("id")
	h.mu.Lock()
	e, ok := h.layers[ref]
	delete(h.layers, ref)
	h.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no layer %s", ref))
		return
	}
	if err := e.layer.Close(); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("stop layer %s: %v", ref, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *layerHost) setRules(w http.ResponseWriter, r *http.Request) {
	e, ok := h.find(w, r)
	if !ok {
		return
	}
	if err := e.layer.SetRules(readBody(w, r)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("layer %s: %v", e.info.Ref, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *layerHost) counters(w http.ResponseWriter, r *http.Request) {
	if e, ok := h.find(w, r); ok {
		writeJSON(w, http.StatusOK, e.layer.Counters())
	}
}

// close stops every layer; the host starts none after it.
func (h *layerHost) close() error {
	h.mu.Lock()
	layers := h.layers
	h.layers = map[string]hostedEntry{}
	h.closed = true
	h.mu.Unlock()
	var errs []error
	for ref, e := range layers {
		if err := e.layer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop layer %s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

// readBody reads a request body of at most 1 MiB (rules are small); an
// unreadable or larger body reads as nothing, which no decoder accepts.
func readBody(w http.ResponseWriter, r *http.Request) []byte {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		return nil
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
