package ledger

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(config.Consumer{AckWait: time.Second, MaxDeliver: -1}, "nats://127.0.0.1:1", "smoke-signals", serve.Options{})
	if err == nil || !strings.Contains(err.Error(), `"smoke-signals"`) {
		t.Fatalf("New = %v, want the mode named", err)
	}
}

func TestLedgerAppendsEachEventOnce(t *testing.T) {
	for _, mode := range []config.PublishMode{config.PublishJetStream, config.PublishCore} {
		t.Run(string(mode), func(t *testing.T) {
			url := testenv.StartNATS(t).ClientURL()
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

			nc, _ := testenv.ConnectNATS(t, url)
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
			testenv.Eventually(t, waitTimeout, "ledger complete", func() bool { return len(s.Entries()) == n })
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
