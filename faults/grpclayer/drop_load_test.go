package grpclayer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/faults/grpclayer"
)

// TestDropsUnderLoadLeaveTheConnectionWell: a quarter of the answers
// dropped under concurrent calls with short deadlines; once the rule is
// gone every call on the same connection passes.
func TestDropsUnderLoadLeaveTheConnectionWell(t *testing.T) {
	_, layer, c := setup(t, grpclayer.Rule{Name: "lost", Kind: grpclayer.DropResponse, Method: charge, Probability: 0.25})
	var wg sync.WaitGroup
	var n, other atomic.Int64
	var firstOther atomic.Value
	stop := time.Now().Add(2 * time.Second)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				_, err := c.Charge(ctx, req(fmt.Sprintf("w%d-%d", w, i)))
				cancel()
				n.Add(1)
				if err != nil && status.Code(err) != codes.DeadlineExceeded {
					other.Add(1)
					firstOther.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	if other.Load() > 0 {
		t.Errorf("%d of %d calls failed otherwise than by their deadline, first: %v", other.Load(), n.Load(), firstOther.Load())
	}
	got := layer.Counters()["lost"]
	if got.Faulted == 0 {
		t.Fatalf("counters %+v", got)
	}
	if err := layer.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Charge(ctx, req(fmt.Sprintf("after-%d", i)))
		cancel()
		if err != nil {
			t.Fatalf("call %d after the rule: %v (counters %+v)", i, err, got)
		}
	}
}
