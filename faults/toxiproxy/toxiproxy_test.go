package toxiproxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
)

// setup starts a Toxiproxy with one proxy "echo" in front of an echo
// server and returns the server, the proxy's address and an injector.
func setup(t *testing.T) (*tp.Server, string, *tp.Injector) {
	t.Helper()
	s := startServer(t)
	listen, err := s.AddProxy("echo", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, listen, tp.NewInjector(s.URL(), nil)
}

func TestAddProxyBindsLoopbackAndRelays(t *testing.T) {
	s, listen, inj := setup(t)
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("listen = %q, want 127.0.0.1 and a real port", listen)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	roundTrip(t, listen, "hello through the proxy")

	if err := inj.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := proxies["echo"]
	if !ok || p.Listen != listen || !p.Enabled || len(p.Toxics) != 0 {
		t.Fatalf("proxies = %+v", proxies)
	}
	if _, err := s.AddProxy("echo", p.Upstream); err == nil {
		t.Fatal("adding a proxy twice succeeded")
	}
}

func TestPartitionRefusesAndRemoveHeals(t *testing.T) {
	_, listen, inj := setup(t)
	open := dial(t, listen)
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "cut", Kind: faults.Partition, Target: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", listen, 2*time.Second); err == nil {
		t.Fatal("dial through a partitioned proxy succeeded")
	}
	// The connection open before the partition is cut.
	if err := open.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := open.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read on a cut connection: %v, want EOF or reset", err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if proxies["echo"].Enabled {
		t.Fatal("proxy still enabled during the partition")
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, listen, "healed")
}

func TestBlackholeHangsReads(t *testing.T) {
	_, listen, inj := setup(t)
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "bh", Kind: faults.Blackhole, Target: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := proxies["echo"].Toxics; len(got) != 2 || got[0].Type != "timeout" || got[0].Attributes["timeout"] != float64(0) {
		t.Fatalf("toxics = %+v, want two timeout toxics with timeout 0", got)
	}
	c := dial(t, listen)
	if _, err := io.WriteString(c, "anyone there?"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 64)); !isTimeout(err) {
		t.Fatalf("read through a blackhole: n=%d err=%v, want a timeout", n, err)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, listen, "back")
}

func TestToxicAttributesPerKind(t *testing.T) {
	_, _, inj := setup(t)
	tests := []struct {
		fault    faults.Fault
		toxic    string
		streams  []string
		attrs    map[string]float64
		toxicity float64
	}{
		{faults.Fault{Name: "a", Kind: faults.Latency, Attrs: map[string]int64{"latency": 300, "jitter": 50}},
			"latency", []string{"upstream", "downstream"}, map[string]float64{"latency": 300, "jitter": 50}, 1},
		{faults.Fault{Name: "b", Kind: faults.SlowClose, Direction: faults.Upstream, Attrs: map[string]int64{"delay": 20}},
			"slow_close", []string{"upstream"}, map[string]float64{"delay": 20}, 1},
		{faults.Fault{Name: "c", Kind: faults.Timeout, Direction: faults.Downstream, Toxicity: 0.5, Attrs: map[string]int64{"timeout": 1000}},
			"timeout", []string{"downstream"}, map[string]float64{"timeout": 1000}, 0.5},
		{faults.Fault{Name: "d", Kind: faults.ResetPeer, Direction: faults.Upstream, Attrs: map[string]int64{"timeout": 10}},
			"reset_peer_rst", []string{"upstream"}, map[string]float64{"timeout": 10}, 1},
		{faults.Fault{Name: "e", Kind: faults.Slicer, Direction: faults.Downstream, Attrs: map[string]int64{"delay": 500}},
			"slicer", []string{"downstream"}, map[string]float64{"average_size": 64, "size_variation": 32, "delay": 500}, 1},
		{faults.Fault{Name: "f", Kind: faults.LimitData, Direction: faults.Downstream, Attrs: map[string]int64{"bytes": 4096}},
			"limit_data", []string{"downstream"}, map[string]float64{"bytes": 4096}, 1},
		{faults.Fault{Name: "g h", Kind: faults.Sniffer, Direction: faults.Both},
			"sniffer", []string{"upstream", "downstream"}, map[string]float64{}, 1},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault.Kind), func(t *testing.T) {
			tt.fault.Target = "echo"
			a, err := inj.Apply(t.Context(), tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			proxies, err := inj.Proxies(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got := proxies["echo"].Toxics
			if len(got) != len(tt.streams) {
				t.Fatalf("toxics = %+v, want %d", got, len(tt.streams))
			}
			for i, tx := range got {
				wantName := "fallacies-" + strings.ReplaceAll(tt.fault.Name, " ", "-") + "-" + tt.streams[i]
				if tx.Name != wantName || tx.Type != tt.toxic || tx.Stream != tt.streams[i] || tx.Toxicity != tt.toxicity {
					t.Errorf("toxic %d = %+v, want %s %s on %s toxicity %g", i, tx, wantName, tt.toxic, tt.streams[i], tt.toxicity)
				}
				for k, v := range tt.attrs {
					if tx.Attributes[k] != v {
						t.Errorf("attribute %s = %v, want %v", k, tx.Attributes[k], v)
					}
				}
			}
			if err := inj.Remove(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			proxies, err = inj.Proxies(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(proxies["echo"].Toxics); n != 0 {
				t.Fatalf("%d toxics left after remove", n)
			}
		})
	}
}

func TestApplyRejectsBadFaults(t *testing.T) {
	_, _, inj := setup(t)
	tests := []struct {
		name  string
		fault faults.Fault
		want  string
	}{
		{"process kind", faults.Fault{Kind: faults.Kill, Target: "echo"}, "targets a process"},
		{"unknown kind", faults.Fault{Kind: "melt", Target: "echo"}, `unknown fault kind "melt"`},
		{"unknown attribute", faults.Fault{Kind: faults.Latency, Target: "echo", Attrs: map[string]int64{"rate": 1}}, `unknown attribute "rate"`},
		{"bad direction", faults.Fault{Kind: faults.Latency, Target: "echo", Direction: "sideways"}, `unknown direction "sideways"`},
		{"bad toxicity", faults.Fault{Kind: faults.Latency, Target: "echo", Toxicity: 1.5}, "toxicity 1.5 out of range"},
		{"negative", faults.Fault{Kind: faults.Latency, Target: "echo", Attrs: map[string]int64{"latency": -1}}, "out of range"},
		{"no target", faults.Fault{Kind: faults.Latency}, "no target proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inj.Apply(t.Context(), tt.fault)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(proxies["echo"].Toxics); n != 0 {
		t.Fatalf("%d toxics on after rejected faults", n)
	}
}

func TestSnifferCapturesTraffic(t *testing.T) {
	s, listen, inj := setup(t)
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "tap", Kind: faults.Sniffer, Target: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "card=4111111111111111&cvv=123"
	roundTrip(t, listen, secret) // relayed unchanged, or roundTrip fails

	sn, err := s.Sniffed("echo")
	if err != nil {
		t.Fatal(err)
	}
	// Seen once on the way up and once on the way back.
	if sn.BytesSeen != int64(2*len(secret)) || strings.Count(string(sn.Sample), secret) != 2 || len(sn.Toxics) != 2 {
		t.Fatalf("sniffed = %+v, want the secret twice", sn)
	}

	resp, err := http.Get(s.URL() + "/fallacies/sniffer/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Proxy        string `json:"proxy"`
		BytesSeen    int64  `json:"bytes_seen"`
		SampleBase64 string `json:"sample_base64"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	sample, err := base64.StdEncoding.DecodeString(body.SampleBase64)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body.Proxy != "echo" || body.BytesSeen != int64(2*len(secret)) || !strings.Contains(string(sample), secret) {
		t.Fatalf("GET sniffer: %d %+v sample %q", resp.StatusCode, body, sample)
	}

	got, err := inj.Sniffed(t.Context(), "echo")
	if err != nil || !strings.Contains(string(got), secret) {
		t.Fatalf("injector sniffed %q, %v", got, err)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	// What the sniffer saw outlives it in the injector that removed it.
	got, err = inj.Sniffed(t.Context(), "echo")
	if err != nil || !strings.Contains(string(got), secret) {
		t.Fatalf("sniffed after removal %q, %v", got, err)
	}
	if _, err := inj.Sniffed(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "proxy not found") {
		t.Fatalf("sniffed on unknown proxy: %v", err)
	}
}

func TestSetUpstreamMovesProxy(t *testing.T) {
	s := startServer(t)
	tag := func(name string) string {
		return tcpServer(t, func(c net.Conn) { _, _ = io.WriteString(c, name) })
	}
	listen, err := s.AddProxy("svc", tag("A"))
	if err != nil {
		t.Fatal(err)
	}
	greeting := func() string {
		c := dial(t, listen)
		defer c.Close()
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if g := greeting(); g != "A" {
		t.Fatalf("greeting = %q, want A", g)
	}
	if err := s.SetUpstream("svc", tag("B")); err != nil {
		t.Fatal(err)
	}
	if g := greeting(); g != "B" {
		t.Fatalf("greeting after SetUpstream = %q, want B", g)
	}
	if err := s.SetUpstream("nope", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "proxy not found") {
		t.Fatalf("SetUpstream of an unknown proxy: %v", err)
	}
}

func TestStandardClientWorksAgainstEmbeddedAPI(t *testing.T) {
	s, listen, inj := setup(t)
	c := toxiclient.NewClient(s.URL())
	proxies, err := c.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := proxies["echo"]
	if !ok || p.Listen != listen || !p.Enabled {
		t.Fatalf("client proxies = %+v", proxies)
	}
	if _, err := p.AddToxic("by-hand", "latency", "downstream", 1, toxiclient.Attributes{"latency": 50}); err != nil {
		t.Fatal(err)
	}
	ours, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ours["echo"].Toxics; len(got) != 1 || got[0].Name != "by-hand" || got[0].Attributes["latency"] != float64(50) {
		t.Fatalf("toxics = %+v", got)
	}
	// The sniffer is in the registry the standard API uses.
	if _, err := p.AddToxic("tap", tp.SnifferType, "upstream", 1, nil); err != nil {
		t.Fatalf("add sniffer through the standard client: %v", err)
	}
}

func TestUnreachableAPIErrors(t *testing.T) {
	addr := closedPort(t)
	inj := tp.NewInjector(addr, nil)
	url := "http://" + addr

	err := inj.Ping(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "toxiproxy API at "+url+" is not reachable: ") ||
		!strings.Contains(err.Error(), "connection refused") || !errors.Is(err, tp.ErrUnreachable) {
		t.Fatalf("ping: %v", err)
	}
	_, err = inj.Apply(t.Context(), faults.Fault{Name: "x", Kind: faults.Latency, Target: "user"})
	want := `apply latency on proxy "user" at ` + url + ": toxiproxy API not reachable: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, tp.ErrUnreachable) ||
		strings.Contains(err.Error(), "roll back") {
		t.Fatalf("apply: %v\nwant prefix %s and no rollback (nothing was sent)", err, want)
	}
	if _, err := inj.Proxies(t.Context()); !errors.Is(err, tp.ErrUnreachable) {
		t.Fatalf("proxies: %v", err)
	}
	if _, err := tp.Reset(t.Context(), url, nil, true); !errors.Is(err, tp.ErrUnreachable) {
		t.Fatalf("reset: %v", err)
	}
}

func TestJournalWritesBeforeApplyAndMarksFailures(t *testing.T) {
	s, _, _ := setup(t)
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inj := tp.NewInjector(s.URL(), j)

	_, err = inj.Apply(t.Context(), faults.Fault{Name: "x", Kind: faults.Latency, Target: "nope", Attrs: map[string]int64{"latency": 10}})
	want := `apply latency on proxy "nope" at ` + s.URL() + ": proxy not found"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	var apiErr *tp.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("err %v is not a 404 APIError", err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0]["op"] != "apply" || lines[1]["op"] != "failed" || lines[0]["id"] != lines[1]["id"] ||
		lines[0]["injector"] != tp.Name || lines[0]["at"] != s.URL() {
		t.Fatalf("journal = %v, want an apply record then a failed record", lines)
	}
	out, err := j.Outstanding()
	if err != nil || len(out) != 0 {
		t.Fatalf("outstanding = %v, %v; want none", out, err)
	}
	if n, err := tp.Reset(t.Context(), s.URL(), j, false); err != nil || n != 0 {
		t.Fatalf("reset = %d, %v", n, err)
	}

	// A successful apply and remove leave an apply and a removed record.
	a, err := inj.Apply(t.Context(), faults.Fault{Name: "y", Kind: faults.Latency, Target: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	out, err = j.Outstanding()
	if err != nil || len(out) != 1 || out[0].Fault.Name != "y" || !equal(out[0].Handles, a.Handles) {
		t.Fatalf("outstanding = %+v, %v", out, err)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("outstanding after remove = %+v, %v", out, err)
	}
	if lines := readLines(t, path); len(lines) != 4 || lines[3]["op"] != "removed" {
		t.Fatalf("journal = %v", lines)
	}
}

func TestApplyRollsBackHalfAppliedFault(t *testing.T) {
	s, _, _ := setup(t)
	p, err := toxiclient.NewClient(s.URL()).Proxy("echo")
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's toxic holds the name of our downstream toxic.
	if _, err := p.AddToxic("fallacies-x-downstream", "latency", "downstream", 1, toxiclient.Attributes{"latency": 1}); err != nil {
		t.Fatal(err)
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inj := tp.NewInjector(s.URL(), j)
	_, err = inj.Apply(t.Context(), faults.Fault{Name: "x", Kind: faults.Latency, Target: "echo"})
	if err == nil || !strings.HasSuffix(err.Error(), ": toxic already exists") {
		t.Fatalf("apply over a taken name: %v", err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The upstream half we made is gone; the foreign toxic is untouched.
	if got := proxies["echo"].Toxics; len(got) != 1 || got[0].Name != "fallacies-x-downstream" || got[0].Attributes["latency"] != float64(1) {
		t.Fatalf("toxics after the failed apply = %+v", got)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("outstanding = %+v, %v", out, err)
	}
}

func TestResetAfterCrash(t *testing.T) {
	s := startServer(t)
	listenA, err := s.AddProxy("a", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddProxy("b", echoServer(t)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j1, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), j1)
	if _, err := inj.Apply(t.Context(), faults.Fault{Name: "lat", Kind: faults.Latency, Target: "a", Attrs: map[string]int64{"latency": 500}}); err != nil {
		t.Fatal(err)
	}
	if _, err := inj.Apply(t.Context(), faults.Fault{Name: "cut", Kind: faults.Partition, Target: "b"}); err != nil {
		t.Fatal(err)
	}
	// The process dies: no RemoveAll; a torn half-record is at the end.
	j1.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"op":"apply","id":"torn`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	j2, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j2.Close() })
	out, err := j2.Outstanding()
	if err != nil || len(out) != 2 {
		t.Fatalf("outstanding = %+v, %v; want 2", out, err)
	}
	n, err := tp.Reset(t.Context(), s.URL(), j2, false)
	if err != nil || n != 2 {
		t.Fatalf("reset = %d, %v; want 2", n, err)
	}
	proxies, err := tp.NewInjector(s.URL(), nil).Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies["a"].Toxics) != 0 || !proxies["b"].Enabled {
		t.Fatalf("after reset: %+v", proxies)
	}
	if d := roundTrip(t, listenA, "x"); d >= 500*time.Millisecond {
		t.Fatalf("latency still on after reset: %v", d)
	}
	if out, err := j2.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("outstanding after reset = %+v, %v", out, err)
	}
	if n, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil || n != 0 {
		t.Fatalf("second reset = %d, %v; want 0", n, err)
	}
}

func TestResetAllRemovesForeignToxics(t *testing.T) {
	s, listen, _ := setup(t)
	c := toxiclient.NewClient(s.URL())
	p, err := c.Proxy("echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		if _, err := p.AddToxic("hand-"+stream, "latency", stream, 1, toxiclient.Attributes{"latency": 1000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	// Without all, nothing journaled means nothing removed.
	if n, err := tp.Reset(t.Context(), s.URL(), nil, false); err != nil || n != 0 {
		t.Fatalf("reset = %d, %v", n, err)
	}
	n, err := tp.Reset(t.Context(), s.URL(), nil, true)
	if err != nil || n != 3 {
		t.Fatalf("reset all = %d, %v; want 3 (two toxics, one proxy)", n, err)
	}
	proxies, err := tp.NewInjector(s.URL(), nil).Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := proxies["echo"]; !got.Enabled || len(got.Toxics) != 0 {
		t.Fatalf("after reset all: %+v", got)
	}
	if d := roundTrip(t, listen, "x"); d >= time.Second {
		t.Fatalf("latency still on: %v", d)
	}
}

func TestRemoveAll(t *testing.T) {
	s := startServer(t)
	for _, name := range []string{"a", "b"} {
		if _, err := s.AddProxy(name, echoServer(t)); err != nil {
			t.Fatal(err)
		}
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	inj := tp.NewInjector(s.URL(), j)
	applied := []faults.Fault{
		{Name: "1", Kind: faults.Latency, Target: "a"},
		{Name: "2", Kind: faults.Bandwidth, Target: "a", Direction: faults.Upstream, Attrs: map[string]int64{"rate": 10}},
		{Name: "3", Kind: faults.Partition, Target: "b"},
	}
	errs := make(chan error, len(applied))
	for _, f := range applied { // concurrently: the injector is safe for it
		go func() {
			_, err := inj.Apply(t.Context(), f)
			errs <- err
		}()
	}
	for range applied {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 3 {
		t.Fatalf("outstanding = %+v, %v", out, err)
	}
	if err := inj.RemoveAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies["a"].Toxics) != 0 || !proxies["b"].Enabled {
		t.Fatalf("after RemoveAll: %+v", proxies)
	}
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Fatalf("outstanding = %+v, %v", out, err)
	}
	if err := inj.RemoveAll(t.Context()); err != nil {
		t.Fatalf("second RemoveAll: %v", err)
	}
}

func TestShutdownEndsEveryGoroutine(t *testing.T) {
	upstream := echoServer(t) // its accept loop ends in cleanup, after this test's check
	ignore := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := tp.Start(t.Context(), ln, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	listen, err := s.AddProxy("echo", upstream)
	if err != nil {
		t.Fatal(err)
	}
	inj := tp.NewInjector(s.URL(), nil)
	for _, f := range []faults.Fault{
		{Name: "lat", Kind: faults.Latency, Target: "echo", Attrs: map[string]int64{"latency": 5}},
		{Name: "tap", Kind: faults.Sniffer, Target: "echo"},
	} {
		if _, err := inj.Apply(t.Context(), f); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The proxied connection was cut by the shutdown.
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read after shutdown: %v", err)
	}
	c.Close()
	if err := inj.Ping(t.Context()); !errors.Is(err, tp.ErrUnreachable) {
		t.Fatalf("ping after shutdown: %v", err)
	}
	// The upstream echo handler ends too: Toxiproxy closed its side.
	goleak.VerifyNone(t, ignore)
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.Lines(string(data)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// TestIsSniffer checks that only the kinds applied as the sniffer toxic
// have their recording read.
func TestIsSniffer(t *testing.T) {
	for _, s := range faults.Specs() {
		if got, want := tp.IsSniffer(s.Kind), s.Kind == faults.Sniffer; got != want {
			t.Errorf("IsSniffer(%s) = %v, want %v", s.Kind, got, want)
		}
	}
}
