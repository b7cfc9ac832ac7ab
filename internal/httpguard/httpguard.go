// Package httpguard keeps every HTTP endpoint the testbed serves (the
// Toxiproxy API of `fallacies up`, user's JSON face, any console to come)
// to the clients it is for: programs on this machine.
//
// A web page the user happens to visit can make the browser send requests
// to 127.0.0.1: a "simple" cross-site POST (text/plain, no preflight) is
// delivered, so the page could add a toxic; and a page whose own name
// resolves to 127.0.0.1 a moment later (DNS rebinding) can read answers
// too, as its requests are same-origin to the browser. Wrap refuses both,
// before the handler sees the request, with 403 and a one-line reason:
//
//	Host    must be a loopback name or address (localhost, 127.0.0.0/8, ::1),
//	        with any port, or the address the server was bound to beyond
//	        loopback (only done with --allow-remote, or in a container;
//	        bound to 0.0.0.0 or ::, any IP address), or one of the names the
//	        server was given (in the compose topology, the container names
//	        its peers use); never another name.
//	Origin  when present, must be the server's own origin (http://HOST:PORT
//	        of the request itself); "null" and any other origin are refused.
//	Sec-Fetch-Site  "cross-site" or "same-site" (a browser saying another
//	        page sent it, which GET requests carry without Origin) is refused.
//
// curl, toxiproxy-cli, the Toxiproxy Go client and the services' own
// clients send no Origin and a loopback Host, and pass unchanged.
package httpguard

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Guard is the rule for one server, fixed by the address it is bound to.
type Guard struct {
	bound net.IP   // the listener's IP; nil: loopback only
	names []string // further host names, lower case
}

// For returns the rule of a server listening on bound: loopback Hosts
// only when it is bound to loopback (or bound is not a TCP address); also
// the bound IP when it is bound beyond loopback; also any IP address
// (never a name) when it is bound to every interface; and the host names
// given, e.g. the name of a container other containers call it by.
func For(bound net.Addr, names ...string) Guard {
	var g Guard
	for _, n := range names {
		g.names = append(g.names, strings.ToLower(n))
	}
	if a, ok := bound.(*net.TCPAddr); ok && !a.IP.IsLoopback() && a.IP != nil {
		g.bound = a.IP
	}
	return g
}

// Wrap returns next behind the guard of a server listening on bound,
// answering to the host names given besides its addresses.
func Wrap(next http.Handler, bound net.Addr, names ...string) http.Handler {
	return For(bound, names...).Handler(next)
}

// Handler returns next behind g: a refused request is answered 403 with
// the reason as text/plain and never reaches next.
func (g Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(r); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "forbidden: %v\n", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Check says why r is refused, or returns nil.
func (g Guard) Check(r *http.Request) error {
	if err := g.checkHost(r.Host); err != nil {
		return err
	}
	origins := r.Header.Values("Origin")
	switch {
	case len(origins) > 1:
		return fmt.Errorf("%d Origin headers", len(origins))
	case len(origins) == 1:
		if own := ownOrigin(r); !sameOrigin(origins[0], own) {
			return fmt.Errorf("Origin %s is not this server's own origin %s: cross-site requests are refused", clip(origins[0]), own)
		}
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return fmt.Errorf("Sec-Fetch-Site %s: the browser says another site sent this request", site)
	}
	return nil
}

// checkHost accepts an empty Host (HTTP/1.0; no browser sends one), a
// loopback name or address, and the addresses of a server bound beyond
// loopback.
func (g Guard) checkHost(hostport string) error {
	if hostport == "" {
		return nil
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || slices.Contains(g.names, host) {
		return nil
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.IsLoopback():
		return nil
	case ip != nil && g.bound != nil && (g.bound.IsUnspecified() || g.bound.Equal(ip)):
		return nil
	case g.bound != nil:
		return fmt.Errorf("Host %s is not a loopback name or address, nor this server's address %s (a name could be DNS rebinding)", clip(hostport), g.bound)
	}
	return fmt.Errorf("Host %s is not a loopback name or address (localhost, 127.0.0.1, [::1]): a name could be DNS rebinding; only a server started with --allow-remote answers to another address", clip(hostport))
}

// ownOrigin is the origin of r itself: scheme://Host.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sameOrigin compares two origins, letter case and default ports aside.
func sameOrigin(a, b string) bool {
	ua, err := url.Parse(a)
	if err != nil || ua.Host == "" || (ua.Path != "" && ua.Path != "/") {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(hostPort(ua), hostPort(ub))
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(strings.TrimSuffix(u.Hostname(), "."), port)
}

// clip shortens a header value for the reason.
func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return fmt.Sprintf("%q", s)
}
