package toxiproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/faults/segment"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
)

// api sends one request to the server's API and returns the status and
// the body.
func api(t *testing.T, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestLayerHostAPI drives the layer host through its HTTP API as a client
// on another machine's side of a compose network would: a segment is
// started in front of an echo server, carries bytes, counts its packets,
// refuses bad rules and bad requests with a message, and is stopped; a
// page of another site is refused.
func TestLayerHostAPI(t *testing.T) {
	s := startServer(t)
	base := s.URL() + "/fallacies/layers"
	upstream := echoServer(t)

	if code, body := api(t, "PUT", base+"/segment/a1", `{"upstream":"`+upstream+`","seed":7}`); code != http.StatusCreated {
		t.Fatalf("start a segment: %d %s", code, body)
	}
	code, body := api(t, "GET", base, "")
	var ls []tp.LayerInfo
	if err := json.Unmarshal([]byte(body), &ls); code != http.StatusOK || err != nil || len(ls) != 1 {
		t.Fatalf("list: %d %s (%v)", code, body, err)
	}
	if l := ls[0]; l.Ref != "segment/a1" || l.Upstream != upstream || !strings.HasPrefix(l.Addr, "127.0.0.1:") {
		t.Fatalf("listed %+v, want segment/a1 in front of %s on 127.0.0.1", l, upstream)
	}
	roundTrip(t, ls[0].Addr, "through the segment")

	rules, _ := json.Marshal([2]segment.Rules{{Latency: 30 * time.Millisecond}, {}})
	if code, body := api(t, "PUT", base+"/segment/a1/rules", string(rules)); code != http.StatusNoContent {
		t.Fatalf("set rules: %d %s", code, body)
	}
	if d := roundTrip(t, ls[0].Addr, "delayed"); d < 30*time.Millisecond {
		t.Errorf("round trip with 30 ms on the packets to the server took %v", d)
	}
	code, body = api(t, "GET", base+"/segment/a1/counters", "")
	var counters map[string]map[string]uint64
	if err := json.Unmarshal([]byte(body), &counters); code != http.StatusOK || err != nil {
		t.Fatalf("counters: %d %s", code, body)
	}
	if c := counters[""]; c["packets"] == 0 || c["delayed"] == 0 {
		t.Errorf("counters %v, want packets and delayed > 0", counters)
	}

	for _, tt := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"PUT", "/segment/a1/rules", `[{"Loss":2},{}]`, 400, "loss"},
		{"PUT", "/segment/a1/rules", `[{"Lossy":0.1},{}]`, 400, "unknown field"},
		{"PUT", "/quic/x1", `{"upstream":"` + upstream + `"}`, 400, "types: grpc, nats, segment"},
		{"PUT", "/segment/a1", `{"upstream":"` + upstream + `"}`, 409, "already running"},
		{"PUT", "/segment/a2", `{"upstream":"nowhere"}`, 400, "not host:port"},
		{"PUT", "/segment/a%2Fb", `{"upstream":"` + upstream + `"}`, 400, "layer id"},
		{"GET", "/grpc/zz/counters", "", 404, "no layer grpc/zz"},
	} {
		code, body := api(t, tt.method, base+tt.path, tt.body)
		if code != tt.code || !strings.Contains(strings.ToLower(body), strings.ToLower(tt.says)) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.says)
		}
	}
	if code, body := api(t, "PUT", base+"/segment/evil", `{"upstream":"`+upstream+`"}`, "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("a cross-site start: %d %s, want 403", code, body)
	}

	if code, body := api(t, "DELETE", base+"/segment/a1", ""); code != http.StatusNoContent {
		t.Fatalf("stop: %d %s", code, body)
	}
	if c, err := net.DialTimeout("tcp", ls[0].Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the stopped segment still accepts connections on %s", ls[0].Addr)
	}
	if code, body := api(t, "DELETE", base+"/segment/a1", ""); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("stop again: %d %s, want 404 with a JSON error (what the journal's undo takes as gone)", code, body)
	}
	if code, body := api(t, "GET", base, ""); body != "[]" {
		t.Errorf("list after stop: %d %s, want []", code, body)
	}
}

// TestLayerHostRunsTheNATSLayer starts a NATS layer through the host's
// API in front of a real nats-server, carries a subscriber's connection
// through it, sets a nats-drop rule as JSON: the rule's subject is lost,
// another passes, the counters say so; stopping the layer closes it.
func TestLayerHostRunsTheNATSLayer(t *testing.T) {
	s := startServer(t)
	base := s.URL() + "/fallacies/layers"
	ns := testenv.StartNATS(t)

	code, body := api(t, "PUT", base+"/nats/n1", `{"upstream":"`+ns.Addr().String()+`"}`)
	var info tp.LayerInfo
	if err := json.Unmarshal([]byte(body), &info); code != http.StatusCreated || err != nil || info.Ref != "nats/n1" {
		t.Fatalf("start a NATS layer: %d %s (%v)", code, body, err)
	}
	sub, _ := testenv.ConnectNATS(t, "nats://"+info.Addr)
	var mu sync.Mutex
	got := map[string]int{}
	if _, err := sub.Subscribe(">", func(m *nats.Msg) { mu.Lock(); got[m.Subject]++; mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}

	rules, _ := json.Marshal([]natslayer.Rule{{Name: "lose", Kind: natslayer.Drop, Subject: "orders.*", Flow: natslayer.ToClient}})
	if code, body := api(t, "PUT", base+"/nats/n1/rules", string(rules)); code != http.StatusNoContent {
		t.Fatalf("set rules: %d %s", code, body)
	}
	if code, body := api(t, "PUT", base+"/nats/n1/rules", `[{"name":"x","kind":"nats-explode"}]`); code != http.StatusBadRequest || !strings.Contains(body, "unknown kind") {
		t.Errorf("a bad NATS rule: %d %s, want 400 naming the kind", code, body)
	}
	pub, _ := testenv.ConnectNATS(t, ns.ClientURL())
	for range 10 {
		for _, subj := range []string{"orders.created", "other"} {
			if err := pub.Publish(subj, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub.Publish("end", nil)
	pub.Flush()
	count := func(s string) int { mu.Lock(); defer mu.Unlock(); return got[s] }
	testenv.Eventually(t, 10*time.Second, "the end marker", func() bool { return count("end") == 1 })
	if count("orders.created") != 0 || count("other") != 10 {
		t.Fatalf("deliveries through the layer: %v, want orders.created 0, other 10", got)
	}
	code, body = api(t, "GET", base+"/nats/n1/counters", "")
	var counters map[string]map[string]uint64
	if err := json.Unmarshal([]byte(body), &counters); code != http.StatusOK || err != nil {
		t.Fatalf("counters: %d %s", code, body)
	}
	if c := counters["lose"]; c["messages"] != 10 || c["faulted"] != 10 {
		t.Errorf("counters %v, want lose: messages 10, faulted 10", counters)
	}

	if code, body := api(t, "DELETE", base+"/nats/n1", ""); code != http.StatusNoContent {
		t.Fatalf("stop: %d %s", code, body)
	}
	if c, err := net.DialTimeout("tcp", info.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the stopped NATS layer still accepts connections on %s", info.Addr)
	}
}

// TestHostedLayerIsJournaledAndReset interposes a hosted segment through
// the Injector, then "crashes": Reset with the journal points the proxy
// back and stops the layer on its host, and a second Reset has nothing to
// do.
func TestHostedLayerIsJournaledAndReset(t *testing.T) {
	s := startServer(t)
	upstream := echoServer(t)
	listen, err := s.AddProxy("svc", upstream)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), j)
	layer := inj.Host(faults.LayerSegment, 1)
	if _, err := inj.Interpose(t.Context(), "svc", "packet-segment", layer); err != nil {
		t.Fatal(err)
	}
	if err := layer.SetRules(t.Context(), [2]segment.Rules{{Latency: 20 * time.Millisecond}, {}}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, listen, "x"); d < 20*time.Millisecond {
		t.Errorf("round trip through the proxy and its segment: %v, want >= 20 ms", d)
	}
	ls, err := inj.Layers(t.Context())
	if err != nil || len(ls) != 1 || ls[0].Ref != layer.Ref() {
		t.Fatalf("layers %+v, %v; want %s", ls, err, layer.Ref())
	}
	ps, _ := inj.Proxies(t.Context())
	if ps["svc"].Upstream != ls[0].Addr {
		t.Fatalf("proxy upstream %s, want the layer's %s", ps["svc"].Upstream, ls[0].Addr)
	}
	j.Close() // the crash: nothing removed

	j2, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if n, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil || n != 1 {
		t.Fatalf("Reset = %d, %v; want the interposition undone", n, err)
	}
	ps, _ = inj.Proxies(t.Context())
	if ps["svc"].Upstream != upstream {
		t.Errorf("upstream after Reset %s, want %s", ps["svc"].Upstream, upstream)
	}
	if ls, err := inj.Layers(t.Context()); err != nil || len(ls) != 0 {
		t.Errorf("layers after Reset: %+v, %v; want none", ls, err)
	}
	if n, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil || n != 0 {
		t.Errorf("second Reset = %d, %v; want nothing to do", n, err)
	}
	roundTrip(t, listen, "straight to the server again")
}

// TestResetAllStopsEveryLayer checks `fallacies reset --all` without a
// journal: every proxy sent to a layer of the host points back at that
// layer's upstream, and every layer stops.
func TestResetAllStopsEveryLayer(t *testing.T) {
	s := startServer(t)
	upstream := echoServer(t)
	listen, err := s.AddProxy("svc", upstream)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	if _, err := inj.Interpose(t.Context(), "svc", "packet-segment", inj.Host(faults.LayerSegment, 1)); err != nil {
		t.Fatal(err)
	}
	// A second layer on the same link stacks in front of the first.
	if _, err := inj.Interpose(t.Context(), "svc", "grpc-layer", inj.Host(faults.LayerGRPC, 1)); err != nil {
		t.Fatal(err)
	}
	if n, err := tp.Reset(t.Context(), s.URL(), nil, true); err != nil || n != 3 {
		t.Fatalf("Reset --all = %d, %v; want 3 (one proxy pointed back, two layers stopped)", n, err)
	}
	ps, _ := inj.Proxies(t.Context())
	if ps["svc"].Upstream != upstream {
		t.Errorf("upstream after Reset --all %s, want %s", ps["svc"].Upstream, upstream)
	}
	if ls, err := inj.Layers(t.Context()); err != nil || len(ls) != 0 {
		t.Errorf("layers after Reset --all: %+v, %v; want none", ls, err)
	}
	roundTrip(t, listen, "straight to the server again")
}

// TestShutdownStopsTheLayers checks that a Toxiproxy server that stops
// leaves no layer running.
func TestShutdownStopsTheLayers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := tp.Start(t.Context(), ln, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := tp.NewInjector(s.URL(), nil).Host(faults.LayerGRPC, 0)
	addr, err := l.Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a layer still accepts connections on %s after Shutdown", addr)
	}
}
