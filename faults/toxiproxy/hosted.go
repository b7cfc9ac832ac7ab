package toxiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// handleLayerPrefix, followed by a layer's ref (type/id), is the handle
// of a layer started on the layer host: undoing it stops the layer.
const handleLayerPrefix = "layer/"

// Host implements faults.Interposer: a layer of type typ to run on the
// layer host of the Toxiproxy this Injector drives (layerhost.go), beside
// its proxies, whatever the topology. Interpose starts it.
func (i *Injector) Host(typ string, seed uint64) faults.HostedLayer {
	return &hostedLayer{inj: i, typ: typ, id: faults.NewEntryID(), seed: seed}
}

// hostedLayer is a layer on the layer host at an Injector's API.
type hostedLayer struct {
	inj     *Injector
	typ, id string
	seed    uint64
}

var _ faults.HostedLayer = (*hostedLayer)(nil)

func (h *hostedLayer) Ref() string { return h.typ + "/" + h.id }

func (h *hostedLayer) path() string { return layerPath(h.Ref()) }

// layerPath is the API path of the layer with ref type/id.
func layerPath(ref string) string {
	typ, id, _ := strings.Cut(ref, "/")
	return "/fallacies/layers/" + url.PathEscape(typ) + "/" + url.PathEscape(id)
}

// Start implements faults.Layer: the host starts the layer in front of
// upstream and answers where the proxies reach it.
func (h *hostedLayer) Start(upstream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := json.Marshal(layerStart{Upstream: upstream, Seed: h.seed})
	if err != nil {
		return "", err
	}
	out, err := h.inj.send(ctx, http.MethodPut, h.path(), body)
	if err != nil {
		return "", h.inj.noHost(err)
	}
	var info LayerInfo
	if err := json.Unmarshal(out, &info); err != nil || info.Addr == "" {
		return "", fmt.Errorf("start %s layer: the host answered %q", h.typ, out)
	}
	return info.Addr, nil
}

// SetRules implements faults.HostedLayer.
func (h *hostedLayer) SetRules(ctx context.Context, rules any) error {
	body, err := json.Marshal(rules)
	if err != nil {
		return fmt.Errorf("encode rules of layer %s: %w", h.Ref(), err)
	}
	if _, err := h.inj.send(ctx, http.MethodPut, h.path()+"/rules", body); err != nil {
		return fmt.Errorf("set rules of layer %s: %w", h.Ref(), err)
	}
	return nil
}

// Counters implements faults.HostedLayer.
func (h *hostedLayer) Counters(ctx context.Context) (map[string]map[string]uint64, error) {
	out, err := h.inj.send(ctx, http.MethodGet, h.path()+"/counters", nil)
	if err != nil {
		return nil, fmt.Errorf("read counters of layer %s: %w", h.Ref(), err)
	}
	var c map[string]map[string]uint64
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("read counters of layer %s: %w", h.Ref(), err)
	}
	return c, nil
}

// noHost explains an error of a Toxiproxy that has no layer host: one
// that is not the testbed's own (its router answers unknown paths with a
// plain-text 404 or 405).
func (i *Injector) noHost(err error) error {
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.raw && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusMethodNotAllowed) {
		return fmt.Errorf("the Toxiproxy at %s has no layer host (/fallacies/layers): packet, call-level and message-level faults need the testbed's own Toxiproxy (any topology's, `fallacies up`'s, the compose topology's toxiproxy container), not toxiproxy-server", i.api)
	}
	return err
}

// Layers lists the layers running on the layer host of the Toxiproxy
// this Injector drives (none on a Toxiproxy that has no layer host).
func (i *Injector) Layers(ctx context.Context) ([]LayerInfo, error) {
	out, err := i.send(ctx, http.MethodGet, "/fallacies/layers", nil)
	if err != nil {
		if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.raw && apiErr.Status == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("list layers: %w", err)
	}
	var ls []LayerInfo
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	return ls, nil
}

// stopLayer stops the layer with ref type/id on the layer host.
func (i *Injector) stopLayer(ctx context.Context, ref string) error {
	if _, err := i.send(ctx, http.MethodDelete, layerPath(ref), nil); err != nil {
		return fmt.Errorf("stop layer %s: %w", ref, err)
	}
	return nil
}
