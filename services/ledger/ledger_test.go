package ledger

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

// runNATS starts an embedded nats-server with JetStream and returns its URL.
func runNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	waitFor(t, "nats ready", func() bool { return ns.ReadyForConnections(10 * time.Millisecond) })
	return ns.ClientURL()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(config.Consumer{AckWait: time.Second, MaxDeliver: -1}, "nats://127.0.0.1:1", "smoke-signals", serve.Options{})
	if err == nil || !strings.Contains(err.Error(), `"smoke-signals"`) {
		t.Fatalf("New = %v, want the mode named", err)
	}
}

func TestLedgerAppendsEachEventOnce(t *testing.T) {
	for _, mode := range []config.PublishMode{config.PublishJetStream, config.PublishCore} {
		t.Run(string(mode), func(t *testing.T) {
			url := runNATS(t)
			s, err := New(config.Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1}, url, mode, serve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(lis) }()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if err := <-served; err != nil {
					t.Errorf("Serve = %v", err)
				}
			})
			<-s.Ready()

			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			const n = 12
			var want []Entry
			for i := range n {
				e := events.OrderCreated{OrderID: fmt.Sprintf("o-%02d", i), UserID: "u-0003", AmountCents: int64(100 + i), ChargeID: fmt.Sprintf("ch-%d", i+1)}
				want = append(want, Entry{OrderID: e.OrderID, UserID: e.UserID, AmountCents: e.AmountCents, ChargeID: e.ChargeID})
				// Core publish: the stream captures it too, so both modes see it.
				if err := nc.Publish(events.SubjectCreated, e.Marshal()); err != nil {
					t.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "ledger complete", func() bool { return len(s.Entries()) == n })
			got := s.Entries()
			for i := range got {
				if got[i].At.IsZero() {
					t.Errorf("entry %d has no time", i)
				}
				got[i].At = time.Time{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("entries = %+v\nwant %+v", got, want)
			}
			if st := s.Stats(); st.Consumer != Name || st.Applied != n {
				t.Errorf("stats = %v", st)
			}
		})
	}
}
