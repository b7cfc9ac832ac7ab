package topology_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fallacies/fallacies/topology"
)

func sampleEndpoints() topology.Endpoints {
	return topology.Endpoints{
		ToxiproxyAPI: "http://127.0.0.1:8474",
		NATS:         "nats://127.0.0.1:4222",
		UserHTTP:     "127.0.0.1:7001",
		Services: map[string]string{
			"order": "127.0.0.1:7010", "user": "127.0.0.1:7011", "payment": "127.0.0.1:7012",
			"notification": "127.0.0.1:7013", "ledger": "127.0.0.1:7014", "payment-1": "127.0.0.1:7015",
		},
		Proxies: map[string]string{
			"user": "127.0.0.1:7020", "user-http": "127.0.0.1:7021", "payment": "127.0.0.1:7022",
			"nats-order": "127.0.0.1:7023", "nats-notification": "127.0.0.1:7024", "nats-ledger": "127.0.0.1:7025",
			"payment-1": "127.0.0.1:7026",
		},
	}
}

func TestEndpointsJSONIsFlatAndRoundTrips(t *testing.T) {
	ep := sampleEndpoints()
	ep.OTLP = "127.0.0.1:4317"
	ep.JaegerUI = "http://127.0.0.1:16686"
	b, err := json.Marshal(ep)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var flat map[string]string
	if err := json.Unmarshal(b, &flat); err != nil {
		t.Fatalf("the JSON form is not one flat object of strings: %v\n%s", err, b)
	}
	want := map[string]string{
		"toxiproxy_api": ep.ToxiproxyAPI, "nats": ep.NATS, "user_http": ep.UserHTTP,
		"otlp": ep.OTLP, "jaeger_ui": ep.JaegerUI,
		"order": "127.0.0.1:7010", "user": "127.0.0.1:7011", "payment": "127.0.0.1:7012",
		"notification": "127.0.0.1:7013", "ledger": "127.0.0.1:7014", "payment-1": "127.0.0.1:7015",
		"proxy.payment-1": "127.0.0.1:7026",
		"proxy.user":      "127.0.0.1:7020", "proxy.user-http": "127.0.0.1:7021", "proxy.payment": "127.0.0.1:7022",
		"proxy.nats-order": "127.0.0.1:7023", "proxy.nats-notification": "127.0.0.1:7024", "proxy.nats-ledger": "127.0.0.1:7025",
	}
	if !reflect.DeepEqual(flat, want) {
		t.Errorf("flat form:\n got %v\nwant %v", flat, want)
	}

	var back topology.Endpoints
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, ep) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, ep)
	}

	// Through a file, as `fallacies up --endpoints-file` and --target do.
	path := filepath.Join(t.TempDir(), "endpoints.json")
	if err := topology.WriteEndpoints(path, ep); err != nil {
		t.Fatalf("write: %v", err)
	}
	loaded, err := topology.LoadEndpoints(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !reflect.DeepEqual(loaded, ep) {
		t.Errorf("file round trip:\n got %+v\nwant %+v", loaded, ep)
	}
}

func TestEndpointsJSONErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"unknown key", `{"toxiproxy_api":"http://127.0.0.1:1","frobnicator":"x"}`, `unknown endpoint key "frobnicator"`},
		{"not an object", `["order"]`, "cannot unmarshal"},
		{"not strings", `{"order": 7}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e topology.Endpoints
			err := json.Unmarshal([]byte(tt.in), &e)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("unmarshal %s: error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestEndpointsValidate(t *testing.T) {
	if err := sampleEndpoints().Validate(); err != nil {
		t.Errorf("complete endpoints: %v", err)
	}
	ep := sampleEndpoints()
	ep.ToxiproxyAPI = ""
	delete(ep.Services, "ledger")
	err := ep.Validate()
	if err == nil || !strings.Contains(err.Error(), "toxiproxy_api") || !strings.Contains(err.Error(), "ledger") {
		t.Errorf("endpoints without toxiproxy_api and ledger: error %v, want both named", err)
	}
}

func TestEndpointsAddressesAreAllChecked(t *testing.T) {
	ep := sampleEndpoints()
	addrs := ep.Addresses()
	if got, want := len(addrs), 3+len(ep.Services)+len(ep.Proxies); got != want {
		t.Errorf("Addresses lists %d, want %d: %v", got, want, addrs)
	}
	if err := topology.CheckLoopback(addrs, false); err != nil {
		t.Errorf("loopback endpoints refused: %v", err)
	}
	ep.Proxies["payment"] = "10.1.2.3:7022"
	if err := topology.CheckLoopback(ep.Addresses(), false); err == nil || !strings.Contains(err.Error(), "10.1.2.3:7022") {
		t.Errorf("a remote proxy address: error %v, want it named", err)
	}
}

// TestCheckLoopback checks the safety rule without contacting anything:
// the test replaces the DNS resolver with one that counts the lookups.
func TestCheckLoopback(t *testing.T) {
	var lookups atomic.Int64
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		lookups.Add(1)
		return nil, errors.New("the test resolver refuses every lookup")
	}}
	t.Cleanup(func() { net.DefaultResolver = saved })

	ok := []string{"127.0.0.1:1", "[::1]:2", "localhost:3", "http://127.0.0.1:8474", "nats://127.0.0.1:4222", "127.0.0.2:9"}
	refused := []string{
		"10.0.0.1:1", "example.com:80", "http://192.168.1.1:8474", "nats://10.0.0.5:4222", "0.0.0.0:80", "[2001:db8::1]:443",
		"http://127.0.0.1@10.0.0.1:8474",             // the host is after the @
		"localhost.example.com:80",                   // only localhost itself counts
		"nats://127.0.0.1:4222,nats://10.0.0.1:4222", // a NATS server list with a remote member
	}
	for _, a := range ok {
		if err := topology.CheckLoopback([]string{a}, false); err != nil {
			t.Errorf("CheckLoopback(%q): %v, want ok", a, err)
		}
	}
	for _, a := range refused {
		start := time.Now()
		err := topology.CheckLoopback([]string{"127.0.0.1:1", a}, false)
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("CheckLoopback(%q) took %v: was something contacted?", a, took)
		}
		if err == nil {
			t.Errorf("CheckLoopback(%q): ok, want refused", a)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, a) || !strings.Contains(msg, "--allow-remote") {
			t.Errorf("CheckLoopback(%q): %q, want the address and --allow-remote named", a, msg)
		}
	}
	if err := topology.CheckLoopback(slices.Concat(ok, refused), true); err != nil {
		t.Errorf("with allowRemote: %v, want everything through", err)
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("CheckLoopback made %d DNS lookups, want none", n)
	}
}
