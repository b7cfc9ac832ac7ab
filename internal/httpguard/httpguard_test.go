package httpguard

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCheck runs the rule over requests as they arrive at servers bound to
// loopback, to one address beyond it and to every interface.
func TestCheck(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8474}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8474}
	all := &net.TCPAddr{IP: net.IPv4zero, Port: 8474}
	tests := []struct {
		name    string
		bound   net.Addr
		names   []string
		host    string
		headers map[string]string
		refused string // part of the reason; "" when accepted
	}{
		{"curl", loopback, nil, "127.0.0.1:8474", nil, ""},
		{"localhost", loopback, nil, "localhost:8474", nil, ""},
		{"LOCALHOST.", loopback, nil, "LOCALHOST.:8474", nil, ""},
		{"127/8", loopback, nil, "127.1.2.3:8474", nil, ""},
		{"::1", loopback, nil, "[::1]:8474", nil, ""},
		{"no port", loopback, nil, "127.0.0.1", nil, ""},
		{"HTTP/1.0, no Host", loopback, nil, "", nil, ""},
		{"evil name", loopback, nil, "evil.example:8474", nil, `Host "evil.example:8474" is not a loopback name`},
		{"a name resolving to loopback is still a name", loopback, nil, "localtest.me:8474", nil, "not a loopback name"},
		{"*.localhost", loopback, nil, "a.localhost:8474", nil, "not a loopback name"},
		{"LAN address at a loopback server", loopback, nil, "192.0.2.10:8474", nil, "only a server started with --allow-remote"},
		{"own origin", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "http://127.0.0.1:8474"}, ""},
		{"own origin, other case", loopback, nil, "LocalHost:8474", map[string]string{"Origin": "http://localhost:8474"}, ""},
		{"default port", loopback, nil, "localhost", map[string]string{"Origin": "http://localhost:80"}, ""},
		{"other origin", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "https://evil.example"}, "is not this server's own origin"},
		{"other scheme", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "https://127.0.0.1:8474"}, "is not this server's own origin"},
		{"other port", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "http://127.0.0.1:8475"}, "is not this server's own origin"},
		{"null origin", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "null"}, `Origin "null"`},
		{"origin with a path", loopback, nil, "127.0.0.1:8474", map[string]string{"Origin": "http://127.0.0.1:8474/x"}, "is not this server's own origin"},
		{"cross-site fetch", loopback, nil, "127.0.0.1:8474", map[string]string{"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site cross-site"},
		{"same-site fetch (another localhost port)", loopback, nil, "127.0.0.1:8474", map[string]string{"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site same-site"},
		{"same-origin fetch", loopback, nil, "127.0.0.1:8474", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8474"}, ""},
		{"allow-remote: own address", remote, nil, "192.0.2.10:8474", nil, ""},
		{"allow-remote: own address, own origin", remote, nil, "192.0.2.10:8474", map[string]string{"Origin": "http://192.0.2.10:8474"}, ""},
		{"allow-remote: loopback still", remote, nil, "127.0.0.1:8474", nil, ""},
		{"allow-remote: other address", remote, nil, "192.0.2.11:8474", nil, "nor this server's address 192.0.2.10"},
		{"allow-remote: a name", remote, nil, "evil.example:8474", nil, "nor this server's address"},
		{"allow-remote: cross-origin", remote, nil, "192.0.2.10:8474", map[string]string{"Origin": "http://evil.example"}, "is not this server's own origin"},
		{"every interface: any address", all, nil, "198.51.100.7:8474", nil, ""},
		{"every interface: IPv6 address", all, nil, "[2001:db8::1]:8474", nil, ""},
		{"every interface: a name", all, nil, "evil.example:8474", nil, "nor this server's address"},
		{"a given name", all, []string{"toxiproxy"}, "toxiproxy:17080", nil, ""},
		{"a given name, other case", all, []string{"Toxiproxy"}, "TOXIPROXY:17080", nil, ""},
		{"not a given name", all, []string{"toxiproxy"}, "toxiproxy.evil.example:17080", nil, "nor this server's address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/proxies/user/toxics", nil)
			r.Host = tt.host
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			err := For(tt.bound, tt.names...).Check(r)
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("got %v, want a refusal saying %q", err, tt.refused)
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Add("Origin", "http://example.com")
	r.Header.Add("Origin", "http://example.com")
	if err := For(loopback).Check(r); err == nil {
		t.Error("two Origin headers accepted")
	}
}

// TestWrap serves a handler behind Wrap on a real loopback listener: a
// refused request never reaches it and is answered 403 in plain text.
func TestWrap(t *testing.T) {
	reached := 0
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Listener.Close()
	srv.Listener = lis
	srv.Config.Handler = Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		io.WriteString(w, "ok")
	}), lis.Addr())
	srv.Start()
	defer srv.Close()

	do := func(host, origin string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/x", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusForbidden && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("403 with Content-Type %q", resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, string(b)
	}
	if code, body := do("", ""); code != http.StatusOK || body != "ok" || reached != 1 {
		t.Fatalf("plain request: %d %q, reached %d", code, body, reached)
	}
	if code, body := do("", "http://evil.example"); code != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: Origin") || reached != 1 {
		t.Fatalf("cross-origin request: %d %q, reached %d", code, body, reached)
	}
	if code, body := do("evil.example", ""); code != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: Host") || reached != 1 {
		t.Fatalf("rebound request: %d %q, reached %d", code, body, reached)
	}
}
