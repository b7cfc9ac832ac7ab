package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

// binary is the fallacies executable built by TestMain for the
// process-level tests; buildErr says why there is none.
var (
	binary   string
	buildErr error
)

// testMain builds the binary (unless -short) around the tests.
type testMain struct{ m *testing.M }

func (tm testMain) Run() int {
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "fallacies-cli-test-")
		if err != nil {
			buildErr = err
		} else {
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "fallacies")
			args := []string{"build", "-o", binary}
			if raceEnabled {
				// The child processes get the race detector too.
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, ".")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build: %v\n%s", err, out)
				binary = ""
			}
		}
	}
	return tm.m.Run()
}

func TestMain(m *testing.M) {
	// The processes topology runs `<this executable> serve SERVICE ...`:
	// when a test starts it in process, this test binary is that
	// executable, and must act as fallacies rather than run the tests again.
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		main()
	}
	flag.Parse()
	goleak.VerifyTestMain(testMain{m},
		// Goroutines started by package initialisation, before any test,
		// are not the tests' to stop.
		goleak.IgnoreCurrent(),
		// Toxiproxy's own link goroutines of a connection open when its
		// proxy restarted (a layer interposed on its upstream restarts it)
		// stay blocked on a channel of the stopped link: upstream's, not a
		// test's to stop.
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"),
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
	)
}

// needBinary skips under -short and fails when the build failed.
func needBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: skipped with -short")
	}
	if binary == "" {
		t.Fatalf("no fallacies binary: %v", buildErr)
	}
	return binary
}

// result is what one in-process command line did.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// cli runs one command line in process. A panic is reported as a test
// failure (with its stack) instead of taking the whole test binary down.
func cli(t *testing.T, ctx context.Context, args ...string) (r result) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("fallacies %s panicked: %v\n%s", strings.Join(args, " "), p, debug.Stack())
			r = result{code: -1, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
		}
	}()
	code := run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
}

// oneLine fails unless s is exactly one non-empty line.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	s = strings.TrimRight(s, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("%s: want exactly one line, got %q", what, s)
	}
}

// target is an embedded topology held by a test, with its endpoints file.
type target struct {
	ep   topology.Endpoints
	file string // endpoints file; its journal is file + ".journal"
}

// startTarget starts the embedded topology in the test process and writes
// its endpoints file, for `fallacies run --target`.
func startTarget(t *testing.T) *target {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topo, err := topology.StartEmbedded(ctx, topology.Options{System: config.Default()})
	if err != nil {
		t.Fatalf("start embedded topology: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := topo.Stop(ctx); err != nil {
			t.Errorf("stop topology: %v", err)
		}
	})
	ep := topo.Endpoints()
	file := filepath.Join(t.TempDir(), "endpoints.json")
	if err := topology.WriteEndpoints(file, ep); err != nil {
		t.Fatalf("write endpoints: %v", err)
	}
	return &target{ep: ep, file: file}
}

// proxyState is a proxy as GET /proxies shows it.
type proxyState struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	Toxics  []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Stream string `json:"stream"`
	} `json:"toxics"`
}

// apiClient talks to a Toxiproxy API without keeping connections (so that
// no transport goroutine outlives a test).
var apiClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

func apiURL(api string) string {
	api = strings.TrimRight(api, "/")
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	return api
}

// proxies reads GET {api}/proxies.
func proxies(t *testing.T, api string) map[string]proxyState {
	t.Helper()
	resp, err := apiClient.Get(apiURL(api) + "/proxies")
	if err != nil {
		t.Fatalf("GET %s/proxies: %v", api, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/proxies: HTTP %d %s (%v)", api, resp.StatusCode, body, err)
	}
	var out map[string]proxyState
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s/proxies: decode: %v", api, err)
	}
	return out
}

// toxicNames lists every toxic on every proxy as proxy/toxic.
func toxicNames(ps map[string]proxyState) []string {
	var out []string
	for name, p := range ps {
		for _, tx := range p.Toxics {
			out = append(out, name+"/"+tx.Name)
		}
	}
	slices.Sort(out)
	return out
}

// assertClean fails unless no toxic is left and every proxy is enabled.
func assertClean(t *testing.T, api string) {
	t.Helper()
	ps := proxies(t, api)
	if len(ps) == 0 {
		t.Fatalf("toxiproxy at %s has no proxies", api)
	}
	if left := toxicNames(ps); len(left) > 0 {
		t.Errorf("toxics left on after the run: %v", left)
	}
	for name, p := range ps {
		if !p.Enabled {
			t.Errorf("proxy %s left disabled after the run", name)
		}
	}
}

// addToxic adds a toxic directly through the API (not journaled).
func addToxic(t *testing.T, api, proxy, body string) {
	t.Helper()
	resp, err := apiClient.Post(apiURL(api)+"/proxies/"+proxy+"/toxics", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("add toxic on %s: %v", proxy, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("add toxic on %s: HTTP %d %s", proxy, resp.StatusCode, b)
	}
}

// waitFor polls cond until it holds, failing after limit. done, when it
// fires first, fails the wait at once (the process under test exited).
func waitFor(t *testing.T, limit time.Duration, what string, done <-chan struct{}, cond func() bool) {
	t.Helper()
	testenv.EventuallyNil(t, limit, what, func() error {
		if cond() {
			return nil
		}
		select {
		case <-done:
			if cond() {
				return nil
			}
			return testenv.GiveUp(errors.New("the process under test ended"))
		default:
			return testenv.ErrNotYet
		}
	})
}

// toxicOn reports whether the proxy has a toxic whose name contains part.
func toxicOn(t *testing.T, api, proxy, part string) bool {
	t.Helper()
	for _, tx := range proxies(t, api)[proxy].Toxics {
		if strings.Contains(tx.Name, part) {
			return true
		}
	}
	return false
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// writeEndpoints writes a hand-made endpoints file.
func writeEndpoints(t *testing.T, m map[string]string) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
