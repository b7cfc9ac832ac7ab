package notification

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(config.Consumer{AckWait: 0, MaxDeliver: -1}, "nats://127.0.0.1:1", config.PublishJetStream, serve.Options{})
	if err == nil || !strings.Contains(err.Error(), "notification.ack_wait: 0s") {
		t.Fatalf("New = %v, want the ack wait named", err)
	}
}

func TestRecordsEverySentNotification(t *testing.T) {
	url := testenv.StartNATS(t).ClientURL()
	s, err := New(config.Consumer{Idempotent: true, AckWait: 5 * time.Second, MaxDeliver: -1}, url, config.PublishJetStream, serve.Options{})
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
		for range 2 {
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	<-s.Ready()

	_, js := testenv.ConnectNATS(t, url)
	if _, err := events.EnsureStream(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	const n = 15
	before := time.Now()
	for i := range n {
		id := fmt.Sprintf("o-%02d", i)
		m := nats.NewMsg(events.SubjectCreated)
		m.Data = events.OrderCreated{OrderID: id, UserID: "u-0000", AmountCents: 10}.Marshal()
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Header.Set(events.HeaderPublishedAt, strconv.FormatInt(time.Now().UnixNano(), 10))
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, waitTimeout, "all applied", func() bool { return s.Stats().Applied == n })

	kv, err := events.EnsureSentBucket(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		at, ok, err := SentAt(t.Context(), kv, fmt.Sprintf("o-%02d", i))
		if err != nil || !ok {
			t.Fatalf("SentAt(o-%02d) = %v, %v, %v", i, at, ok, err)
		}
		if at.Before(before) || at.After(time.Now()) {
			t.Errorf("o-%02d sent at %v, outside the test's run", i, at)
		}
	}
	if _, ok, err := SentAt(t.Context(), kv, "o-never"); ok || err != nil {
		t.Errorf("SentAt(o-never) = %v, %v; want not sent", ok, err)
	}
	if st := s.Stats(); st.Consumer != Name || st.DuplicatesApplied != 0 || st.Received != n {
		t.Errorf("stats = %v", st)
	}
}
