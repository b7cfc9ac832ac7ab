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

// handleUpstreamPrefix, followed by an address, is the handle of an
// interposed layer: the proxy's upstream was moved to the layer, and
// undoing the handle points the proxy back at the address.
const handleUpstreamPrefix = "upstream/"

// InterposeKind is the kind an interposed layer is journaled under.
const InterposeKind faults.Kind = "interpose"

var _ faults.Interposer = (*Injector)(nil)

// Interpose puts a layer on a link: it reads the proxy's upstream, starts
// the layer in front of it, and points the proxy at the layer, the proxy's
// toxics staying where they are. The move is journaled before it is made,
// so that Remove, RemoveAll and Reset (after a crash) point the proxy back
// at its upstream. A faults.HostedLayer (from Host) is journaled before it
// starts, and the same undo stops it on its host. name names the layer in
// the journal and in errors.
//
// Toxiproxy restarts a proxy whose upstream changes, cutting the
// connections open through it: interpose before the load, not during it.
// On error nothing is left moved and a hosted layer is stopped; a layer
// of the caller's own already started is the caller's to stop.
func (i *Injector) Interpose(ctx context.Context, proxy, name string, layer faults.Layer) (faults.Applied, error) {
	f := faults.Fault{Name: name, Kind: InterposeKind, Target: proxy}
	upstream, err := i.upstreamOf(ctx, proxy)
	if err != nil {
		return faults.Applied{}, i.errf("interpose", f, err)
	}
	e := faults.Entry{ID: faults.NewEntryID(), Injector: Name, Fault: f, At: i.api, Handles: []string{handleUpstreamPrefix + upstream}, Time: time.Now()}
	hosted, isHosted := layer.(faults.HostedLayer)
	if isHosted {
		// Undone newest first: the proxy points back, then the layer stops.
		e.Handles = []string{handleLayerPrefix + hosted.Ref(), handleUpstreamPrefix + upstream}
		if err := i.journalApplying(e); err != nil {
			return faults.Applied{}, i.errf("interpose", f, err)
		}
	}
	addr, err := layer.Start(upstream)
	if err != nil {
		err = fmt.Errorf("start layer %s in front of %s: %w", name, upstream, err)
		if isHosted {
			// The host may have started it before the answer was lost.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if stopErr := i.stopLayer(rctx, hosted.Ref()); stopErr != nil && !isGone(stopErr) {
				i.track(e)
				return faults.Applied{}, i.errf("interpose", f, errors.Join(err, stopErr))
			}
			err = errors.Join(err, i.journalFailed(e.ID, err))
		}
		return faults.Applied{}, i.errf("interpose", f, err)
	}
	if !isHosted {
		if err := i.journalApplying(e); err != nil {
			return faults.Applied{}, i.errf("interpose", f, err)
		}
	}
	if err := i.setUpstream(ctx, proxy, addr); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rbErr := i.undo(rctx, e); rbErr != nil {
			i.track(e)
			return faults.Applied{}, i.errf("interpose", f, errors.Join(err, fmt.Errorf("roll back: %w", rbErr)))
		}
		return faults.Applied{}, i.errf("interpose", f, errors.Join(err, i.journalFailed(e.ID, err)))
	}
	i.track(e)
	return faults.Applied{Fault: f, Handles: e.Handles, Start: time.Now()}, nil
}

// journalApplying journals an entry about to be made, when the Injector
// has a journal.
func (i *Injector) journalApplying(e faults.Entry) error {
	if i.journal == nil {
		return nil
	}
	return i.journal.Applying(e)
}

// journalFailed records that the entry with id was not made after all.
func (i *Injector) journalFailed(id string, cause error) error {
	if i.journal == nil {
		return nil
	}
	return i.journal.Failed(id, cause)
}

// isGone reports whether err is the API's answer that what was asked for
// does not exist (already removed).
func isGone(err error) bool {
	apiErr, ok := errors.AsType[*APIError](err)
	return ok && apiErr.Status == http.StatusNotFound && !apiErr.raw
}

// upstreamOf reads the upstream of a proxy.
func (i *Injector) upstreamOf(ctx context.Context, proxy string) (string, error) {
	body, err := i.send(ctx, http.MethodGet, "/proxies/"+url.PathEscape(proxy), nil)
	if err != nil {
		return "", fmt.Errorf("read proxy: %w", err)
	}
	var p ProxyInfo
	if err := json.Unmarshal(body, &p); err != nil {
		return "", fmt.Errorf("read proxy: decode: %w", err)
	}
	if p.Upstream == "" {
		return "", errors.New("read proxy: it has no upstream")
	}
	return p.Upstream, nil
}

// setUpstream points a proxy at addr.
func (i *Injector) setUpstream(ctx context.Context, proxy, addr string) error {
	body, err := json.Marshal(map[string]string{"upstream": addr})
	if err != nil {
		return err
	}
	if _, err := i.send(ctx, http.MethodPatch, "/proxies/"+url.PathEscape(proxy), body); err != nil {
		return fmt.Errorf("point upstream at %s: %w", addr, err)
	}
	return nil
}

// undoUpstream undoes an upstream handle: the proxy points back at the
// address the handle names.
func (i *Injector) undoUpstream(ctx context.Context, proxy, handle string) error {
	return i.setUpstream(ctx, proxy, strings.TrimPrefix(handle, handleUpstreamPrefix))
}

// Layer and LayerFunc are faults.Layer and faults.LayerFunc, for callers
// of this package.
type (
	Layer     = faults.Layer
	LayerFunc = faults.LayerFunc
)
