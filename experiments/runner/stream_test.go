package runner

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/services/events"
)

// publishOrders stores n orders.created events with ids prefix0…, each
// with the order id as its Nats-Msg-Id, as order publishes them.
func publishOrders(t *testing.T, js jetstream.JetStream, prefix string, n int) {
	t.Helper()
	for i := range n {
		msg := nats.NewMsg(events.SubjectCreated)
		id := prefix + string(rune('a'+i))
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Data = events.OrderCreated{OrderID: id}.Marshal()
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
}

// TestStreamReadCountsTheRun: the events stored since the run started are
// counted by order id, the earlier ones not.
func TestStreamReadCountsTheRun(t *testing.T) {
	ns := testenv.StartNATS(t)
	_, js := testenv.ConnectNATS(t, ns.ClientURL())
	if _, err := events.EnsureStream(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	publishOrders(t, js, "before-", 3)
	since := time.Now()
	testenv.Eventually(t, 5*time.Second, "the clock past the earlier events", func() bool { return time.Since(since) > time.Millisecond })
	publishOrders(t, js, "run-", 4)
	pub, err := readPublished(t.Context(), ns.ClientURL(), since)
	if err != nil {
		t.Fatalf("readPublished: %v", err)
	}
	if len(pub.count) != 4 || pub.count["run-a"] != 1 || pub.count["before-a"] != 0 {
		t.Errorf("counted %v, want the 4 run- events once each", pub.count)
	}
}

// TestStreamDiscardedIsUnknown: a stream that discarded events of the run
// (its limit reached) is an error, not a count that would call the
// discarded events never published. The stream here is ORDERS with a
// limit of 5, the configuration of events.EnsureStream scaled down.
func TestStreamDiscardedIsUnknown(t *testing.T) {
	ns := testenv.StartNATS(t)
	_, js := testenv.ConnectNATS(t, ns.ClientURL())
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: events.Stream, Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage,
		Duplicates: events.DedupeWindow, MaxMsgs: 5, Discard: jetstream.DiscardOld,
	}); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	publishOrders(t, js, "run-", 8)
	_, err := readPublished(t.Context(), ns.ClientURL(), since)
	if !errors.Is(err, errStreamDiscarded) {
		t.Fatalf("readPublished of a stream that discarded 3 of the run's 8 events: %v, want errStreamDiscarded", err)
	}
	t.Log(err)
}

// TestStreamIsBounded: the ORDERS stream events.EnsureStream creates has
// the limits that keep a long-running system's stream bounded.
func TestStreamIsBounded(t *testing.T) {
	ns := testenv.StartNATS(t)
	_, js := testenv.ConnectNATS(t, ns.ClientURL())
	s, err := events.EnsureStream(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxMsgs != events.StreamMaxMsgs || cfg.MaxBytes != events.StreamMaxBytes || cfg.Discard != jetstream.DiscardOld {
		t.Errorf("stream limits: max msgs %d, max bytes %d, discard %v; want %d, %d, old", cfg.MaxMsgs, cfg.MaxBytes, cfg.Discard, events.StreamMaxMsgs, events.StreamMaxBytes)
	}
}
