package load

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestWithRetries(t *testing.T) {
	tests := []struct {
		name    string
		retries int
		outcome []Outcome // what the n-th attempt returns; the last repeats
		want    Outcome
		calls   int64
	}{
		{"success at once", 3, []Outcome{{Code: codes.OK}}, Outcome{Code: codes.OK}, 1},
		{"unavailable twice, then success", 3, []Outcome{{Code: codes.Unavailable}, {Code: codes.Unavailable}, {Code: codes.OK}}, Outcome{Code: codes.OK}, 3},
		{"retries spent", 3, []Outcome{{Code: codes.DeadlineExceeded}}, Outcome{Code: codes.DeadlineExceeded}, 4},
		{"not retryable", 3, []Outcome{{Code: codes.InvalidArgument}}, Outcome{Code: codes.InvalidArgument}, 1},
		{"unknown outcome: the client gave up", 3, []Outcome{{Code: codes.DeadlineExceeded, Unknown: true}}, Outcome{Code: codes.DeadlineExceeded, Unknown: true}, 1},
		{"no retries", 0, []Outcome{{Code: codes.Unavailable}}, Outcome{Code: codes.Unavailable}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			var ids []string
			inner := DoerFunc(func(_ context.Context, r Request) Outcome {
				n := int(calls.Add(1))
				ids = append(ids, r.OrderID)
				return tt.outcome[min(n, len(tt.outcome))-1]
			})
			d, err := WithRetries(inner, tt.retries, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Do(t.Context(), Request{OrderID: "o-1"}); got != tt.want {
				t.Fatalf("outcome %+v, want %+v", got, tt.want)
			}
			if n := calls.Load(); n != tt.calls {
				t.Fatalf("%d attempts, want %d", n, tt.calls)
			}
			for _, id := range ids {
				if id != "o-1" {
					t.Fatalf("a retry sent order %q, want the same order id o-1", id)
				}
			}
		})
	}
}

func TestWithRetriesStopsWithTheContext(t *testing.T) {
	var calls atomic.Int64
	inner := DoerFunc(func(context.Context, Request) Outcome {
		calls.Add(1)
		return Outcome{Code: codes.Unavailable}
	})
	d, err := WithRetries(inner, 10, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan Outcome, 1)
	go func() { done <- d.Do(ctx, Request{}) }()
	select {
	case out := <-done:
		if out.Code != codes.Unavailable {
			t.Fatalf("outcome %+v, want the last attempt's UNAVAILABLE", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a retry backoff outlived the request's context")
	}
	if n := calls.Load(); n > 2 {
		t.Fatalf("%d attempts within a 50ms deadline and a 1h backoff", n)
	}
}

func TestWithRetriesValidates(t *testing.T) {
	inner := DoerFunc(func(context.Context, Request) Outcome { return Outcome{} })
	for _, c := range []struct {
		retries int
		backoff time.Duration
	}{{-1, time.Millisecond}, {MaxRetries + 1, time.Millisecond}, {2, 0}} {
		if _, err := WithRetries(inner, c.retries, c.backoff); err == nil {
			t.Errorf("WithRetries(%d, %v): no error", c.retries, c.backoff)
		}
	}
}
