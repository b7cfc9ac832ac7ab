package bench

import (
	"context"
	"io"
	"net"
	"time"
)

// The floors of this machine, measured in the same run as the figures
// they put in proportion: what a bare TCP round trip costs here and now.
// (The bare timer's floor is load.TimerFloor, which the load generator's
// own test reads its send lag against.)

// tcpRoundTrip sends one byte back and forth n times over a loopback TCP
// connection to an echo goroutine and returns the round trips.
func tcpRoundTrip(ctx context.Context, n int) (loop, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return loop{}, err
	}
	defer lis.Close()
	go serveConns(lis, echoBack)
	c, err := dialTCP(ctx, lis.Addr().String())
	if err != nil {
		return loop{}, err
	}
	defer c.Close()
	h := newHist()
	start := time.Now()
	for range n {
		t0 := time.Now()
		if err := echo(c); err != nil {
			return loop{}, err
		}
		_ = h.RecordValue(int64(time.Since(t0)))
	}
	return loop{lat: h, calls: int64(n), elapsed: time.Since(start)}, nil
}

// echoBack sends every byte it receives on conn back.
func echoBack(conn net.Conn) { _, _ = io.Copy(conn, conn) }

// dialTCP connects to addr (maybe through a proxy) with a deadline that
// bounds everything done on the connection.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	return c, nil
}

// echo sends one byte and waits for it to come back.
func echo(c net.Conn) error {
	b := []byte{1}
	if _, err := c.Write(b); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b)
	return err
}
