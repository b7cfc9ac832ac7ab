package toxiproxy

import (
	"fmt"
	"net"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// Move points the proxy named name at upstream and makes it listen on a new
// port of 127.0.0.1, different from its old one, and returns the new
// address. Its toxics stay; open connections through it are closed, and the
// old address refuses connections from now on: the topology of the system
// changed, and only clients that look the service up again find it.
func (s *Server) Move(name, upstream string) (listen string, err error) {
	p, err := s.api.Collection.Get(name)
	if err != nil {
		return "", fmt.Errorf("move proxy %s: %w", name, err)
	}
	// Reserve a port while the old one is still bound, so the two differ.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("move proxy %s: pick a new port: %w", name, err)
	}
	addr := l.Addr().String()
	l.Close()
	p.Lock()
	input := &toxiproxy.Proxy{Listen: addr, Upstream: upstream, Enabled: p.Enabled}
	p.Unlock()
	if err := p.Update(input); err != nil {
		return "", fmt.Errorf("move proxy %s to %s (upstream %s): %w", name, addr, upstream, err)
	}
	p.Lock()
	defer p.Unlock()
	return p.Listen, nil
}
