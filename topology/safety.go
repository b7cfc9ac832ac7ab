package topology

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckLoopback refuses any address that is not on the loopback interface
// unless allowRemote is set: a chaos tool must never hit a production system
// by accident. Addresses are host:port or URLs; host names other than
// localhost count as remote (they are not resolved, so nothing is contacted).
func CheckLoopback(addrs []string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	for _, a := range addrs {
		host := hostOf(a)
		if host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			continue
		}
		return fmt.Errorf("refusing non-loopback address %s (host %q): pass --allow-remote to target a system on another host", a, host)
	}
	return nil
}

func hostOf(a string) string {
	if strings.Contains(a, "://") {
		if u, err := url.Parse(a); err == nil {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return strings.Trim(a, "[]")
}
