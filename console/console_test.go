package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/console"
	"github.com/fallacies/fallacies/faults"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

// system is a real embedded topology with a console serving on it.
type system struct {
	url     string
	order   orderv1.OrderServiceClient
	tp      *toxiproxy.Injector
	journal *faults.Journal
	stop    func() // stops the console (Serve returns)
	served  chan error
}

// start brings up the embedded topology and a console on it with opts'
// grace; the test's cleanup stops both.
func start(t *testing.T, grace time.Duration) *system {
	t.Helper()
	ctx := t.Context()
	capture := tracing.NewCapture(0)
	tr := topology.NewTracers(capture, "")
	topo, err := topology.Start(ctx, topology.KindEmbedded, topology.Options{System: config.Default(), Tracing: tr.ServeOptions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		topo.Stop(c)
		tr.Shutdown(c)
	})
	ep := topo.Endpoints()
	s := &system{served: make(chan error, 1)}
	journal, err := faults.OpenJournal(t.TempDir() + "/console.journal")
	if err != nil {
		t.Fatal(err)
	}
	s.journal = journal
	t.Cleanup(func() { journal.Close() })
	s.tp = toxiproxy.NewInjector(ep.ToxiproxyAPI, journal)
	conn, err := serve.Dial(ep.Services["order"], serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.order = orderv1.NewOrderServiceClient(conn)
	router, targets, packets := console.Network(s.tp, ep.Proxies, 1)
	c, err := console.New(console.Options{
		Proxies: ep.Proxies, Toxiproxy: s.tp, Injector: router, Targets: targets, Packets: packets,
		Capture: capture, Order: s.order, CloseGrace: grace,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() { s.served <- c.Serve(sctx, lis) }()
	s.url = "http://" + lis.Addr().String()
	s.stop = func() {
		cancel()
		if err := <-s.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.served <- nil
	}
	t.Cleanup(func() {
		cancel()
		<-s.served
	})
	return s
}

// call sends one request and returns the status and body.
func (s *system) call(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// toxics lists the toxics Toxiproxy has on proxy.
func (s *system) toxics(t *testing.T, proxy string) []string {
	t.Helper()
	ps, err := s.tp.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range ps[proxy].Toxics {
		out = append(out, x.Name)
	}
	return out
}

// stateOf reads GET /api/state.
type stateOf struct {
	Links map[string]struct {
		Calls int     `json:"calls"`
		P50   float64 `json:"p50_ms"`
	} `json:"links"`
	Faults []struct{ Name string } `json:"faults"`
	Load   struct {
		Running bool `json:"running"`
		Series  []struct {
			N   int     `json:"n"`
			P50 float64 `json:"p50_ms"`
		} `json:"series"`
	} `json:"load"`
	Slowest []struct {
		ID string    `json:"id"`
		At time.Time `json:"at"`
	} `json:"slowest"`
}

func (s *system) state(t *testing.T) stateOf {
	t.Helper()
	code, body := s.call(t, "GET", "/api/state", "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
	var st stateOf
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// poll checks cond every 100 ms until it holds or limit passes.
func poll(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultsLoadAndTraces adds latency on the user link through the API
// with a load running: the toxics are on Toxiproxy, the link's p50 and
// the load's rise past the latency, a trace's waterfall marks the fault,
// and stopping the console takes the fault off.
func TestFaultsLoadAndTraces(t *testing.T) {
	s := start(t, time.Minute)
	if code, body := s.call(t, "POST", "/api/load", `{"rate": 20, "duration": "2m"}`); code != http.StatusCreated {
		t.Fatalf("POST /api/load: %d %s", code, body)
	}
	// Before the fault, the user link settles well under the latency
	// to come (the first calls set up connections).
	poll(t, 30*time.Second, "the user link measured under 100ms", func() bool {
		l, ok := s.state(t).Links["user"]
		return ok && l.P50 < 100
	})

	faultOn := time.Now()
	code, body := s.call(t, "POST", "/api/faults", `{"kind": "latency", "target": "user", "attrs": {"latency": 300}}`)
	if code != http.StatusCreated || !strings.Contains(body, "console-latency-user") {
		t.Fatalf("POST /api/faults: %d %s", code, body)
	}
	if got := s.toxics(t, "user"); len(got) != 2 {
		t.Fatalf("toxics on user: %v, want the fault's upstream and downstream toxics", got)
	}
	poll(t, 20*time.Second, "user link p50 above 300ms", func() bool { return s.state(t).Links["user"].P50 > 300 })
	poll(t, 20*time.Second, "the load's p50 above 300ms", func() bool {
		ser := s.state(t).Load.Series
		return len(ser) > 0 && ser[len(ser)-1].P50 > 300
	})
	// A slow trace begun with the fault on (the slower first orders of
	// a cold system may hold the list until they are 10 s old).
	var held string
	poll(t, 20*time.Second, "a trace begun with the fault on among the slowest", func() bool {
		for _, tr := range s.state(t).Slowest {
			if tr.At.After(faultOn) {
				held = tr.ID
				return true
			}
		}
		return false
	})
	code, body = s.call(t, "GET", "/api/traces/"+held, "")
	if code != http.StatusOK || !strings.Contains(body, "<svg") || !strings.Contains(body, "held by fault console-latency-user") {
		t.Fatalf("waterfall of the slowest trace: %d, want an SVG marking the fault:\n%.2000s", code, body)
	}

	// A clash and the removal.
	if code, body := s.call(t, "POST", "/api/faults", `{"kind": "latency", "target": "user", "attrs": {"latency": 300}}`); code != http.StatusConflict {
		t.Errorf("the same fault again: %d %s, want 409", code, body)
	}
	if code, body := s.call(t, "DELETE", "/api/faults/console-latency-user", ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if got := s.toxics(t, "user"); len(got) != 0 {
		t.Fatalf("toxics on user after DELETE: %v", got)
	}
	poll(t, 20*time.Second, "user link p50 back under 100ms", func() bool {
		l, ok := s.state(t).Links["user"]
		return ok && l.P50 < 100
	})

	// Stopping the console takes its faults off and stops its load.
	if code, body := s.call(t, "POST", "/api/faults", `{"kind": "partition", "target": "payment"}`); code != http.StatusCreated {
		t.Fatalf("partition: %d %s", code, body)
	}
	s.stop()
	ps, err := s.tp.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !ps["payment"].Enabled {
		t.Error("payment proxy still disabled after the console stopped")
	}
	out, err := s.journal.Outstanding()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("journal lists %d outstanding faults after the console stopped", len(out))
	}
}

// TestBadRequests checks each refusal: the status and a message naming
// the problem, and nothing applied.
func TestBadRequests(t *testing.T) {
	s := start(t, time.Minute)
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		code                     int
		want                     string
	}{
		{"unknown kind", "POST", "/api/faults", `{"kind": "lag", "target": "user"}`, nil, 400, "unknown; want one of"},
		{"unknown target", "POST", "/api/faults", `{"kind": "latency", "target": "usr"}`, nil, 400, "not a proxy of this system"},
		{"process fault on embedded", "POST", "/api/faults", `{"kind": "kill", "target": "user"}`, nil, 400, "no process target"},
		{"bad status code", "POST", "/api/faults", `{"kind": "grpc-error", "target": "payment", "text": {"code": "NOPE"}}`, nil, 400, `text.code: \"NOPE\" is not a code; want one of CANCELLED,`},
		{"bad method", "POST", "/api/faults", `{"kind": "grpc-error", "target": "payment", "text": {"code": "UNAVAILABLE", "method": "charge"}}`, nil, 400, "is not a valid method (e.g. payment.v1.PaymentService/Charge)"},
		{"missing code", "POST", "/api/faults", `{"kind": "grpc-error", "target": "payment"}`, nil, 400, "text.code: missing"},
		{"text attribute in attrs", "POST", "/api/faults", `{"kind": "grpc-error", "target": "payment", "attrs": {"code": 14}}`, nil, 400, "give it in text"},
		{"call fault off a gRPC link", "POST", "/api/faults", `{"kind": "grpc-error", "target": "nats-order", "text": {"code": "UNAVAILABLE"}}`, nil, 400, "not a grpc-link of this system"},
		{"packet probability missing", "POST", "/api/faults", `{"kind": "packet-loss", "target": "payment"}`, nil, 400, "attrs.probability"},
		{"attribute out of range", "POST", "/api/faults", `{"kind": "latency", "target": "user", "attrs": {"latency": -1}}`, nil, 400, "attrs.latency"},
		{"unknown attribute", "POST", "/api/faults", `{"kind": "latency", "target": "user", "attrs": {"delay": 5}}`, nil, 400, "attrs.delay"},
		{"bad direction", "POST", "/api/faults", `{"kind": "latency", "target": "user", "direction": "sideways"}`, nil, 400, "direction"},
		{"bad name", "POST", "/api/faults", `{"name": "A B", "kind": "latency", "target": "user"}`, nil, 400, "name"},
		{"unknown field", "POST", "/api/faults", `{"kind": "latency", "target": "user", "latency": 300}`, nil, 400, "unknown field"},
		{"not JSON", "POST", "/api/faults", `kind=latency`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"cross-site", "POST", "/api/faults", `{"kind": "latency", "target": "user"}`, []string{"Origin", "http://evil.example"}, 403, "cross-site"},
		{"foreign host", "GET", "/api/state", "", []string{"Host", "evil.example"}, 403, "evil.example"},
		{"remove unknown", "DELETE", "/api/faults/nope", "", nil, 404, "no such fault"},
		{"rate too high", "POST", "/api/load", `{"rate": 5000}`, nil, 400, "rate"},
		{"bad duration", "POST", "/api/load", `{"rate": 5, "duration": "forever"}`, nil, 400, "duration"},
		{"unknown trace", "GET", "/api/traces/abc", "", nil, 404, "not held"},
		{"no experiments", "POST", "/api/experiment", `{"name": "latency"}`, nil, 400, "no experiments"},
		{"report not run", "GET", "/reports/x/report.html", "", nil, 404, "report"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := s.call(t, c.method, c.path, c.body, c.header...)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("%s %s: %d %s, want %d mentioning %q", c.method, c.path, code, body, c.code, c.want)
			}
		})
	}
	for _, p := range []string{"user", "payment"} {
		if got := s.toxics(t, p); len(got) != 0 {
			t.Errorf("toxics on %s after refused requests: %v", p, got)
		}
	}
}

// TestPageClosed checks that the faults come off once the last page has
// been gone for the grace period.
func TestPageClosed(t *testing.T) {
	s := start(t, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 512)
	n, _ := resp.Body.Read(first)
	if !strings.Contains(string(first[:n]), "retry:") || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events: %s %q", resp.Header.Get("Content-Type"), first[:n])
	}
	if code, body := s.call(t, "POST", "/api/faults", `{"kind": "latency", "target": "payment", "attrs": {"latency": 50}}`); code != http.StatusCreated {
		t.Fatalf("POST /api/faults: %d %s", code, body)
	}
	// The page gets the state with the fault in it.
	buf := make([]byte, 64<<10)
	var got strings.Builder
	for !strings.Contains(got.String(), "console-latency-payment") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("events: %v after %q", err, got.String())
		}
		got.Write(buf[:n])
	}
	cancel()
	resp.Body.Close()
	poll(t, 10*time.Second, "the fault removed after the page closed", func() bool {
		return len(s.state(t).Faults) == 0 // listed until it is off
	})
	if got := s.toxics(t, "payment"); len(got) != 0 {
		t.Errorf("toxics on payment after the page closed: %v", got)
	}
}
