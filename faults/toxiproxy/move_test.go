package toxiproxy_test

import (
	"net"
	"testing"
	"time"
)

func TestMove(t *testing.T) {
	s := startServer(t)
	first, second := echoServer(t), echoServer(t)
	old, err := s.AddProxy("user", first)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, old, "before")

	moved, err := s.Move("user", second)
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	if moved == old {
		t.Fatalf("Move kept the address %s", old)
	}
	roundTrip(t, moved, "after")
	if c, err := net.DialTimeout("tcp", old, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("the old address %s still accepts connections", old)
	}
	if _, err := s.Move("nowhere", second); err == nil {
		t.Fatal("Move of an unknown proxy: no error")
	}
}
