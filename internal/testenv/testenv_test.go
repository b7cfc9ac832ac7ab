package testenv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStartNATSHasJetStream starts the server and stores a message in a
// JetStream stream on it.
func TestStartNATSHasJetStream(t *testing.T) {
	ns := StartNATS(t)
	_, js := ConnectNATS(t, ns.ClientURL())
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(t.Context(), "t.one", []byte("x"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("publish: %+v, %v", ack, err)
	}
}

// failed runs wait against a TB that records its failure instead of
// failing this test, and returns the failure ("" when it passed).
func failed(t *testing.T, wait func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(r)
	}()
	<-done
	return r.msg
}

type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestEventually(t *testing.T) {
	n := 0
	if msg := failed(t, func(tb testing.TB) { Eventually(tb, 10*time.Second, "three calls", func() bool { n++; return n == 3 }) }); msg != "" || n != 3 {
		t.Errorf("a condition that holds on the third call: %q after %d calls", msg, n)
	}
	start := time.Now()
	msg := failed(t, func(tb testing.TB) { Eventually(tb, 50*time.Millisecond, "never", func() bool { return false }) })
	if msg != "timed out after 50ms waiting for never" || time.Since(start) < 50*time.Millisecond {
		t.Errorf("a condition that never holds: %q after %v", msg, time.Since(start))
	}
	msg = failed(t, func(tb testing.TB) {
		EventuallyNil(tb, 50*time.Millisecond, "the count", func() error { return errors.New("count is 2 of 3") })
	})
	if msg != "timed out after 50ms waiting for the count: count is 2 of 3" {
		t.Errorf("EventuallyNil's last error: %q", msg)
	}
	start = time.Now()
	msg = failed(t, func(tb testing.TB) {
		EventuallyNil(tb, time.Minute, "the child", func() error { return GiveUp(errors.New("it exited")) })
	})
	if !strings.HasPrefix(msg, "gave up waiting for the child: it exited") || time.Since(start) > 10*time.Second {
		t.Errorf("GiveUp: %q after %v", msg, time.Since(start))
	}
}
