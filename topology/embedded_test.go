package topology_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/faults"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

// TestEmbeddedHundredOrders is the acceptance test of the embedded
// topology: 100 orders are placed, and every one is charged once and
// delivered once to each consumer.
func TestEmbeddedHundredOrders(t *testing.T) {
	top := startEmbedded(t, system(t))
	ep := top.Endpoints()
	if err := ep.Validate(); err != nil {
		t.Fatalf("endpoints of a started topology: %v", err)
	}
	if err := topology.CheckLoopback(ep.Addresses(), false); err != nil {
		t.Errorf("the embedded topology listens beyond loopback: %v", err)
	}
	cl := dialAll(t, ep)
	ids := orderIDs(t, "o", 100)
	mustPlace(t, cl.order, ids)
	assertAllAccounted(t, cl, ids)

	st, err := cl.order.GetStats(t.Context(), &orderv1.GetStatsRequest{})
	if err != nil {
		t.Fatalf("order GetStats: %v", err)
	}
	if st.GetPublished() != 100 || st.GetPublishFailures() != 0 {
		t.Errorf("order published %d events with %d failures, want 100 and 0", st.GetPublished(), st.GetPublishFailures())
	}
}

// TestEmbeddedToxiproxyListsEveryProxy reads the proxies over the
// Toxiproxy HTTP API, as a user with the toxiproxy CLI would: every
// documented proxy exists in the configurations it is documented for, is
// enabled, and fronts the piece it names.
func TestEmbeddedToxiproxyListsEveryProxy(t *testing.T) {
	always := []string{faults.ProxyUser, faults.ProxyUserHTTP, faults.ProxyPayment,
		faults.ProxyNATSOrder, faults.ProxyNATSNotification, faults.ProxyNATSLedger}
	conditional := []string{faults.ProxyPayment1, faults.ProxyPayment2, faults.ProxyNATSPayment}
	tests := []struct {
		name   string
		edit   func(*config.System)
		want   []string
		absent []string
	}{
		{"default", func(*config.System) {}, always, conditional},
		{"three payment replicas sharing keys", func(s *config.System) {
			s.Payment.Replicas = 3
			s.Payment.Idempotency = config.IdempotencyShared
		}, slices.Concat(always, conditional), nil},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		for _, name := range tt.want {
			covered[name] = true
		}
	}
	for _, name := range faults.Proxies() {
		if !covered[name] {
			t.Errorf("documented proxy %q is not expected in any configuration of this test", name)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := config.Default()
			tt.edit(&sys)
			top := startEmbedded(t, sys)
			ep := top.Endpoints()
			proxies := getProxies(t, ep.ToxiproxyAPI)
			for _, name := range tt.want {
				p, ok := proxies[name]
				if !ok {
					t.Errorf("proxy %q is documented but Toxiproxy does not list it (it has %v)", name, slices.Sorted(maps.Keys(proxies)))
					continue
				}
				if !p.Enabled {
					t.Errorf("proxy %q is disabled at start", name)
				}
				if ep.Proxies[name] == "" || ep.Proxies[name] != p.Listen {
					t.Errorf("proxy %q listens on %q, endpoints say %q", name, p.Listen, ep.Proxies[name])
				}
			}
			for _, name := range tt.absent {
				if _, ok := proxies[name]; ok {
					t.Errorf("proxy %q exists in a configuration that does not use it", name)
				}
			}
			// The upstreams are what the services listen on: order
			// reaches user and payment only through the proxies.
			for _, name := range []string{faults.ProxyUser, faults.ProxyPayment, faults.ProxyPayment1, faults.ProxyPayment2} {
				if !slices.Contains(tt.want, name) {
					continue
				}
				if got, want := proxies[name].Upstream, ep.Services[name]; got != want || want == "" {
					t.Errorf("proxy %q points at %q, want service %s at %q", name, got, name, want)
				}
			}
			if got, want := proxies[faults.ProxyUserHTTP].Upstream, ep.UserHTTP; got != want {
				t.Errorf("proxy %q points at %q, want user's HTTP at %q", faults.ProxyUserHTTP, got, want)
			}
		})
	}
}

// proxyJSON is a proxy as GET /proxies shows it.
type proxyJSON struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

// getProxies lists the proxies with a plain HTTP GET on the Toxiproxy API.
func getProxies(t *testing.T, api string) map[string]proxyJSON {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, api+"/proxies", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s/proxies: %v", api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /proxies: status %s", resp.Status)
	}
	var proxies map[string]proxyJSON
	if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
		t.Fatalf("decode /proxies: %v", err)
	}
	return proxies
}

// TestEmbeddedStopLeavesNothing stops a topology that has carried traffic:
// no goroutine is left, the listeners are closed, and a second Stop is a
// no-op.
func TestEmbeddedStopLeavesNothing(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	top, err := topology.StartEmbedded(ctx, topology.Options{System: system(t, "order.publish_mode", "jetstream")})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	ep := top.Endpoints()
	func() {
		conn, err := serve.Dial(ep.Services["order"], serve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, id := range orderIDs(t, "o", 3) {
			if _, err := placeOrder(ctx, orderv1.NewOrderServiceClient(conn), id, 5*time.Second); err != nil {
				t.Fatalf("PlaceOrder %s: %v", id, err)
			}
		}
	}()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), stopTimeout)
	defer stopCancel()
	if err := top.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := top.Stop(stopCtx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	goleak.VerifyNone(t, ignore)
	for _, addr := range append(slices.Collect(maps.Values(ep.Services)), slices.Collect(maps.Values(ep.Proxies))...) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", addr)
		}
	}
}

// openFDs counts this process's open file descriptors. It opens and closes
// a listener first, so that the runtime's network poller, made on first
// use, is counted in every figure.
func openFDs(t *testing.T) int {
	t.Helper()
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(entries)
}

// TestEmbeddedFailedStartLeavesNothing starts the embedded topology with
// configurations a service refuses: the start fails with an error naming
// the problem, and every goroutine, listener and temp dir it made is gone.
func TestEmbeddedFailedStartLeavesNothing(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*config.System)
		wantErr string
	}{
		{"no users", func(s *config.System) { s.User.Users = 0 }, "user.users"},
		{"unknown publish mode", func(s *config.System) { s.Order.PublishMode = "carrier-pigeon" }, "carrier-pigeon"},
		{"zero configuration", func(s *config.System) { *s = config.System{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			fds := openFDs(t)
			sys := config.Default()
			tt.edit(&sys)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			top, panicked, err := startEmbeddedRecover(ctx, topology.Options{System: sys})
			if panicked != nil {
				t.Fatalf("a failed start panicked instead of returning its error: %v", panicked)
			}
			if err == nil {
				top.Stop(context.Background())
				t.Fatal("start succeeded, want an error")
			}
			if top != nil {
				t.Errorf("start failed but returned a topology")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to name %q", err, tt.wantErr)
			}
			goleak.VerifyNone(t, ignore)
			if now := openFDs(t); now > fds {
				t.Errorf("%d files open after the failed start, %d before: listeners leaked", now, fds)
			}
		})
	}
}

// startEmbeddedRecover calls StartEmbedded and turns a panic into a value,
// so that a broken error path fails one test instead of the test binary.
func startEmbeddedRecover(ctx context.Context, o topology.Options) (top *topology.Embedded, panicked any, err error) {
	defer func() { panicked = recover() }()
	top, err = topology.StartEmbedded(ctx, o)
	return top, nil, err
}

// TestStart checks the kind and configuration checks of Start: nothing is
// started when either is wrong.
func TestStart(t *testing.T) {
	bad := config.Default()
	bad.Order.User.Retries = -1
	tests := []struct {
		name    string
		kind    string
		sys     config.System
		wantErr string // "" means the start succeeds
	}{
		{"default kind is embedded", "", config.Default(), ""},
		{"embedded", topology.KindEmbedded, config.Default(), ""},
		{"unknown kind", "kubernetes", config.Default(), `unknown topology "kubernetes"`},
		{"invalid configuration", topology.KindEmbedded, bad, "order.user.retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			top, err := topology.Start(ctx, tt.kind, topology.Options{System: tt.sys})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Start: error %v, want one containing %q", err, tt.wantErr)
				}
				goleak.VerifyNone(t, ignore)
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if _, ok := top.(*topology.Embedded); !ok {
				t.Errorf("Start(%q) returned a %T, want *topology.Embedded", tt.kind, top)
			}
			if err := top.Endpoints().Validate(); err != nil {
				t.Errorf("endpoints: %v", err)
			}
			stopCtx, stopCancel := context.WithTimeout(context.Background(), stopTimeout)
			defer stopCancel()
			if err := top.Stop(stopCtx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}
