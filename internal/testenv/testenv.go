// Package testenv is what the tests of several packages share: a real
// nats-server with JetStream embedded as a library (StartNATS) and waiting
// for a condition with a deadline instead of sleeping (Eventually,
// EventuallyNil). Only tests import it.
package testenv

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartNATS starts nats-server with JetStream on a random loopback port,
// storing in a temporary folder, waits until it accepts connections and
// shuts it down when the test ends. Its URL is ClientURL().
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("new nats-server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	Eventually(t, 20*time.Second, "nats-server ready for connections", func() bool {
		return ns.ReadyForConnections(10 * time.Millisecond)
	})
	return ns
}

// ConnectNATS connects to the nats-server at url, closing the connection
// when the test ends, and returns it with a JetStream context on it.
func ConnectNATS(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to nats-server %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream on %s: %v", url, err)
	}
	return nc, js
}

// Eventually polls cond until it holds, failing the test after within
// (naming what it waited for), or at once when the test's context ends.
// It polls every millisecond at first, then less often, up to every 50 ms:
// quick conditions are seen at once, long waits cost little.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyNil(t, within, what, func() error {
		if cond() {
			return nil
		}
		return ErrNotYet
	})
}

// ErrNotYet is what a condition of EventuallyNil returns when it does not
// hold yet and has nothing more to say.
var ErrNotYet = errors.New("not yet")

// GiveUp wraps err so that EventuallyNil stops waiting at once and fails
// with it: the condition can no longer hold (the process under test
// exited, say).
func GiveUp(err error) error { return giveUpError{err} }

type giveUpError struct{ error }

func (e giveUpError) Unwrap() error { return e.error }

// EventuallyNil polls cond until it returns nil, failing the test after
// within with cond's last error (and what it waited for); at once when
// cond's error is a GiveUp or the test's context ends. It polls as
// Eventually does.
func EventuallyNil(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		why := ""
		if !errors.Is(err, ErrNotYet) {
			why = ": " + err.Error()
		}
		if _, ok := errors.AsType[giveUpError](err); ok {
			t.Fatalf("gave up waiting for %s%s", what, why)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s%s", within, what, why)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("the test ended while waiting for %s%s", what, why)
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// EchoServer starts a real TCP server on loopback that sends back what it
// reads on each connection, and returns its address; it stops when the test
// ends.
func EchoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}
