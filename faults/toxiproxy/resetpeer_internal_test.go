package toxiproxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestProxyConnsReadsToxiproxy checks that the reset_peer toxic reaches
// the connections of a proxy of the Toxiproxy built in: the unexported
// fields proxyConns reads have the types it reads them as, and it returns
// both sockets of every connection open through the proxy. A Toxiproxy
// upgrade that moved them fails here, not silently in a run (the resets
// would close with FIN).
func TestProxyConnsReadsToxiproxy(t *testing.T) {
	if !connsReadable {
		t.Fatal("Toxiproxy's Proxy.connections.list is not a map[string]net.Conn in a ConnectionList any more: reset_peer cannot reach the connections")
	}
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), api, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	listen, err := s.AddProxy("conns", up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.api.Collection.Get("conns")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c, err := net.DialTimeout("tcp", listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Both connections echoed through the proxy: it lists them.
	var conns []net.Conn
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if conns = proxyConns(p); len(conns) == 4 {
			break
		}
	}
	if len(conns) != 4 {
		t.Fatalf("proxyConns = %d sockets, want 4 (a client's and an upstream's per connection)", len(conns))
	}
	for _, c := range conns {
		if _, ok := c.(*net.TCPConn); !ok {
			t.Errorf("socket %T is no *net.TCPConn: SO_LINGER cannot be set on it", c)
		}
	}
}
