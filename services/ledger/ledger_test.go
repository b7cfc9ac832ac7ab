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

// TestOrderingOfAccountState publishes one user's states out of order
// (versions 1, 3, 2) and a second user's in order: by version the account
// keeps version 3 and counts the late 2 as skipped; by arrival it goes back
// to 2, counts it applied, and the account is behind.
func TestOrderingOfAccountState(t *testing.T) {
	for _, c := range []struct {
		ordering                      config.Ordering
		seq, applied, skipped, behind int64
	}{
		{config.OrderingVersion, 3, 0, 1, 0},
		{config.OrderingArrival, 2, 1, 0, 1},
	} {
		t.Run(string(c.ordering), func(t *testing.T) {
			url := testenv.StartNATS(t).ClientURL()
			s, err := New(config.Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1, Ordering: c.ordering}, url, config.PublishCore, serve.Options{})
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
				<-served
			})
			<-s.Ready()
			nc, _ := testenv.ConnectNATS(t, url)
			for i, seq := range []int64{1, 3, 2} {
				e := events.OrderCreated{OrderID: fmt.Sprintf("a-%d", i), UserID: "u-0001", AmountCents: 100, UserSeq: seq, UserTotalCents: 100 * seq}
				if err := nc.Publish(events.SubjectCreated, e.Marshal()); err != nil {
					t.Fatal(err)
				}
			}
			for seq := int64(1); seq <= 2; seq++ {
				e := events.OrderCreated{OrderID: fmt.Sprintf("b-%d", seq), UserID: "u-0002", AmountCents: 50, UserSeq: seq, UserTotalCents: 50 * seq}
				if err := nc.Publish(events.SubjectCreated, e.Marshal()); err != nil {
					t.Fatal(err)
				}
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, waitTimeout, "five events applied", func() bool { return len(s.Entries()) == 5 })
			acc := s.Accounts()
			if a := acc["u-0001"]; a.Seq != c.seq || a.TotalCents != 100*c.seq {
				t.Errorf("u-0001's account %+v, want version %d", a, c.seq)
			}
			if a := acc["u-0002"]; a.Seq != 2 || a.TotalCents != 100 {
				t.Errorf("u-0002's account %+v, want version 2, 100 cents", a)
			}
			st := s.Stats()
			if st.StaleApplied != c.applied || st.StaleSkipped != c.skipped || st.KeysBehind != c.behind {
				t.Errorf("stats stale_applied %d stale_skipped %d keys_behind %d, want %d %d %d",
					st.StaleApplied, st.StaleSkipped, st.KeysBehind, c.applied, c.skipped, c.behind)
			}
		})
	}
}
