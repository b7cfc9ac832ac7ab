package natslayer_test

import (
	"math"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/internal/testenv"
)

// accuracyMessages is how many messages the share of faulted messages is
// measured over: the target is within 1.5 points over 10,000.
const accuracyMessages = 10_000

// TestProbabilityAccuracy sends 10,000 messages through a real nats-server
// and the layer for each of nats-drop and nats-duplicate at probability
// 0.1, and checks that the share faulted is within 1.5 points of it and
// that the subscriber saw exactly what the counters say. Skipped with
// -short.
func TestProbabilityAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 messages per kind; run without -short")
	}
	for _, kind := range []natslayer.Kind{natslayer.Drop, natslayer.Duplicate} {
		t.Run(string(kind), func(t *testing.T) {
			ns, l := setup(t)
			setRules(t, l, natslayer.Rule{Name: "r", Kind: kind, Subject: "acc.x", Probability: 0.1})
			sub := collect(t, via(t, l), ">")
			pub := direct(t, ns)
			for i := 0; i < accuracyMessages; i += 1000 {
				publishN(t, pub, "acc.x", 1000)
			}
			publishN(t, pub, "end", 1)
			sub.waitFor(t, "end")
			c := l.Counters()["r"]
			want := accuracyMessages - c.Faulted
			if kind == natslayer.Duplicate {
				want = accuracyMessages + c.Faulted
			}
			testenv.Eventually(t, 10*time.Second, "every message counted", func() bool { return int64(len(sub.data("acc.x"))) == want })
			share := float64(c.Faulted) / float64(c.Messages)
			t.Logf("%s p=0.1: %d of %d faulted (%.2f%%)", kind, c.Faulted, c.Messages, 100*share)
			if c.Messages != accuracyMessages || math.Abs(share-0.1) > 0.015 {
				t.Fatalf("%d of %d faulted: %.2f%%, want 10%% ± 1.5 points", c.Faulted, c.Messages, 100*share)
			}
		})
	}
}
