package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeToxiproxy runs `fallacies serve toxiproxy` (the compose
// topology's Toxiproxy) on loopback with a proxy list like
// docker/toxiproxy.json: the proxies are created, the API answers curl by
// loopback and by a --http-hosts name, and refuses a foreign Host or
// Origin with 403; Ctrl-C ends it with exit 0. Bad command lines exit 2.
func TestServeToxiproxy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "toxiproxy.json")
	if err := os.WriteFile(cfg, []byte(`[{"name": "user", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`[{"name": "user", "listen": "127.0.0.1:0"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "toxiproxy", "--listen", "127.0.0.1:0"}, "wants --listen ADDR and --config FILE"},
		{[]string{"serve", "toxiproxy", "--listen", "127.0.0.1:0", "--config", filepath.Join(dir, "missing.json")}, "missing.json"},
		{[]string{"serve", "toxiproxy", "--listen", "127.0.0.1:0", "--config", bad}, "upstream at proxy 1"},
		{[]string{"serve", "toxiproxy", "--listen", "127.0.0.1:0", "--config", cfg, "--nats-url", "nats://127.0.0.1:4222"}, "--nats-url: not a flag of serve toxiproxy"},
		{[]string{"serve", "toxiproxy", "--listen", "127.0.0.1:99999", "--config", cfg}, "--listen"},
	} {
		r := cli(t, t.Context(), tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("fallacies %s: exit %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), r.code, r.stderr, exitUsage, tt.want)
		}
	}

	addr := closedPort(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var r result
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		r = cli(t, ctx, "serve", "toxiproxy", "--listen", addr, "--config", cfg, "--http-hosts", "toxiproxy")
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(host, origin string) int {
		req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/proxies/user", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 30*time.Second, "the proxy user of serve toxiproxy", ended, func() bool { return get(addr, "") == http.StatusOK })
	for _, tt := range []struct {
		host, origin string
		want         int
	}{
		{"localhost:" + port, "", http.StatusOK},
		{"toxiproxy:" + port, "", http.StatusOK},
		{"evil.example:" + port, "", http.StatusForbidden},
		{addr, "http://evil.example", http.StatusForbidden},
	} {
		if got := get(tt.host, tt.origin); got != tt.want {
			t.Errorf("GET /proxies/user Host %s Origin %q: %d, want %d", tt.host, tt.origin, got, tt.want)
		}
	}
	cancel()
	<-ended
	if r.code != 0 || !strings.Contains(r.stdout, "toxiproxy: 1 proxies from") {
		t.Errorf("serve toxiproxy after Ctrl-C: exit %d, stdout %q, stderr %q; want 0 and the readiness line", r.code, r.stdout, r.stderr)
	}
}
