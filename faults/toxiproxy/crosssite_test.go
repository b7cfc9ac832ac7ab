package toxiproxy_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// TestCrossSiteRequestsRefused sends, with real HTTP requests to the
// embedded Toxiproxy API, what a web page in a browser could send: a
// cross-origin text/plain POST adding a toxic (no preflight), the same
// by a rebound DNS name, and a browser-marked cross-site GET. Each is
// refused with 403 and adds nothing; the same POST as curl sends it (no
// Origin) and from the API's own origin still adds the toxic, and the
// Toxiproxy Go client still works. Each exchange is logged (-v) as
// METHOD URL Host Origin → status, toxic added.
func TestCrossSiteRequestsRefused(t *testing.T) {
	s, _, inj := setup(t)
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	toxics := func() []string {
		ps, err := inj.Proxies(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range ps["echo"].Toxics {
			names = append(names, x.Name)
		}
		return names
	}
	client := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		name, method, path, host, origin, fetchSite string
		toxic                                       string // the toxic the body adds, "" for a GET
		want                                        int
		reason                                      string // in the 403's body
	}{
		{"cross-origin simple POST", "POST", "/proxies/echo/toxics", "", "http://evil.example", "", "x-origin", http.StatusForbidden, `Origin "http://evil.example" is not this server's own origin`},
		{"cross-origin POST from another local port", "POST", "/proxies/echo/toxics", "", "http://127.0.0.1:3000", "", "x-local", http.StatusForbidden, "is not this server's own origin"},
		{"opaque origin (sandbox, file:)", "POST", "/proxies/echo/toxics", "", "null", "", "x-null", http.StatusForbidden, `Origin "null"`},
		{"DNS rebinding: evil Host, no Origin", "POST", "/proxies/echo/toxics", "evil.example:" + port, "", "", "x-rebind", http.StatusForbidden, `Host "evil.example:` + port + `" is not a loopback name or address`},
		{"DNS rebinding: evil Host, its own Origin", "POST", "/proxies/echo/toxics", "evil.example:" + port, "http://evil.example:" + port, "", "x-rebind2", http.StatusForbidden, "is not a loopback name or address"},
		{"browser cross-site GET (no Origin)", "GET", "/proxies", "", "", "cross-site", "", http.StatusForbidden, "Sec-Fetch-Site cross-site"},
		{"curl: no Origin", "POST", "/proxies/echo/toxics", "", "", "", "by-curl", http.StatusOK, ""},
		{"curl by localhost", "POST", "/proxies/echo/toxics", "localhost:" + port, "", "", "by-localhost", http.StatusOK, ""},
		{"curl by [::1]", "GET", "/proxies", "[::1]:" + port, "", "", "", http.StatusOK, ""},
		{"the API's own origin", "POST", "/proxies/echo/toxics", "", "http://127.0.0.1:" + port, "", "same-origin", http.StatusOK, ""},
		{"browser, typed in the address bar", "GET", "/proxies", "", "", "none", "", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.toxic != "" {
				body = strings.NewReader(`{"name":"` + tt.toxic + `","type":"latency","stream":"downstream","attributes":{"latency":300}}`)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.URL()+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.toxic != "" {
				req.Header.Set("Content-Type", "text/plain") // a "simple" request: no preflight
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			added := tt.toxic != "" && strings.Contains(strings.Join(toxics(), ","), tt.toxic)
			host := req.Host
			if host == "" {
				host = u.Host
			}
			t.Logf("%s %s Host=%s Origin=%q Sec-Fetch-Site=%q -> %d, toxic added: %v; %s",
				tt.method, s.URL()+tt.path, host, tt.origin, tt.fetchSite, resp.StatusCode, added, strings.TrimSpace(string(b)))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tt.want)
			}
			if tt.want == http.StatusForbidden {
				if !strings.Contains(string(b), tt.reason) {
					t.Errorf("403 body %q does not say %q", b, tt.reason)
				}
				if added {
					t.Errorf("refused, yet toxic %s was added", tt.toxic)
				}
			} else if tt.toxic != "" && !added {
				t.Errorf("accepted, yet toxic %s is not there: %v", tt.toxic, toxics())
			}
		})
	}
	if got := toxics(); strings.Join(got, ",") != "by-curl,by-localhost,same-origin" {
		t.Errorf("toxics after the requests: %v, want only those of the accepted requests", got)
	}
	// The Toxiproxy Go client, as toxiproxy-cli uses it, is unchanged.
	p, err := toxiclient.NewClient(s.URL()).Proxy("echo")
	if err != nil {
		t.Fatalf("Go client: %v", err)
	}
	if _, err := p.AddToxic("by-go-client", "latency", "upstream", 1, toxiclient.Attributes{"latency": 5}); err != nil {
		t.Fatalf("Go client AddToxic: %v", err)
	}
	if err := p.RemoveToxic("by-go-client"); err != nil {
		t.Fatalf("Go client RemoveToxic: %v", err)
	}
}
