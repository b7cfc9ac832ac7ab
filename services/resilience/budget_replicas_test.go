package resilience

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

func TestRetryBudget(t *testing.T) {
	const calls = 100
	tests := []struct {
		name     string
		budget   int
		min, max int64 // attempts the peer sees
	}{
		{"no budget: every retry", 0, 4 * calls, 4 * calls},
		// 100 calls deposit 10 tokens on top of the 10 the bucket starts with.
		{"10 percent", 10, calls, calls + config.RetryBudgetBurst + calls/10},
		{"100 percent", 100, 2 * calls, 4 * calls},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Link{Retries: 3, BackoffBase: time.Microsecond, BackoffMax: time.Microsecond, RetryBudget: tt.budget}
			pr, client, p := setup(t, cfg, serve.Options{})
			pr.set(fail(codes.Unavailable))
			for range calls {
				if err := charge(t.Context(), client); status.Code(err) != codes.Unavailable {
					t.Fatalf("charge: %v, want UNAVAILABLE", err)
				}
			}
			if n := pr.calls.Load(); n < tt.min || n > tt.max {
				t.Fatalf("peer saw %d attempts for %d calls, want %d to %d", n, calls, tt.min, tt.max)
			}
			if st := p.Stats(); st.GetAttempts() != pr.calls.Load() {
				t.Fatalf("stats count %d attempts, peer saw %d", st.GetAttempts(), pr.calls.Load())
			}
		})
	}
}

func TestMinAttemptTime(t *testing.T) {
	tests := []struct {
		name     string
		min      time.Duration
		attempts int64
	}{
		{"a retry with too little time left is not sent", time.Hour, 1},
		{"off: retries while time is left", 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Link{Retries: 2, BackoffBase: time.Microsecond, BackoffMax: time.Microsecond, MinAttemptTime: tt.min}
			pr, client, _ := setup(t, cfg, serve.Options{})
			pr.set(fail(codes.Unavailable))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := charge(ctx, client); status.Code(err) != codes.Unavailable {
				t.Fatalf("charge: %v, want UNAVAILABLE", err)
			}
			if n := pr.calls.Load(); n != tt.attempts {
				t.Fatalf("peer saw %d attempts, want %d", n, tt.attempts)
			}
		})
	}
}

// replicaSet starts n peers and returns them with a Replicas client over
// one plain connection each, carrying a policy built from cfg.
func replicaSet(t *testing.T, n int, cfg config.Link) ([]*peer, paymentv1.PaymentServiceClient, *Replicas) {
	t.Helper()
	p, err := New(config.LinkPayment, cfg, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var peers []*peer
	var conns []*grpc.ClientConn
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		pr := &peer{}
		paymentv1.RegisterPaymentServiceServer(srv, pr)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(lis)
		}()
		t.Cleanup(func() {
			srv.Stop()
			<-done
		})
		conn, err := serve.Dial(lis.Addr().String(), serve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		peers = append(peers, pr)
		conns = append(conns, conn)
	}
	rs, err := NewReplicas(p, conns)
	if err != nil {
		t.Fatal(err)
	}
	return peers, paymentv1.NewPaymentServiceClient(rs), rs
}

// stall blocks until the caller gives up.
func stall(ctx context.Context, _ int64) error {
	<-ctx.Done()
	return status.FromContextError(ctx.Err()).Err()
}

func TestReplicasRoundRobin(t *testing.T) {
	peers, client, rs := replicaSet(t, 3, config.Link{})
	for range 30 {
		if err := charge(t.Context(), client); err != nil {
			t.Fatalf("charge: %v", err)
		}
	}
	for i, pr := range peers {
		if n := pr.calls.Load(); n != 10 {
			t.Errorf("replica %d saw %d calls, want 10", i, n)
		}
	}
	if sent, _ := rs.Hedges(); sent != 0 {
		t.Errorf("%d hedges without hedging", sent)
	}
}

func TestReplicasRetryGoesToNextReplica(t *testing.T) {
	peers, client, _ := replicaSet(t, 2, config.Link{Retries: 1, BackoffBase: time.Microsecond, BackoffMax: time.Microsecond})
	peers[0].set(fail(codes.Unavailable))
	if err := charge(t.Context(), client); err != nil {
		t.Fatalf("charge: %v (the retry should have gone to the healthy replica)", err)
	}
	if a, b := peers[0].calls.Load(), peers[1].calls.Load(); a != 1 || b != 1 {
		t.Fatalf("replicas saw %d and %d calls, want 1 and 1", a, b)
	}
}

func TestReplicasHedge(t *testing.T) {
	tests := []struct {
		name      string
		hedge     time.Duration
		slow      bool // replica 0 (picked first) stalls
		failBoth  bool
		wantCode  codes.Code
		wantHedge int64
		wantWon   int64
	}{
		{"fast first replica: no hedge", 10 * time.Second, false, false, codes.OK, 0, 0},
		{"slow first replica: the hedge wins", 20 * time.Millisecond, true, false, codes.OK, 1, 1},
		{"both fail: the error comes back", 20 * time.Millisecond, false, true, codes.Internal, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers, client, rs := replicaSet(t, 3, config.Link{HedgeAfter: tt.hedge})
			if tt.slow {
				peers[0].set(stall)
			}
			if tt.failBoth {
				slowFail := func(ctx context.Context, _ int64) error {
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
					}
					return status.Error(codes.Internal, "broken")
				}
				peers[0].set(slowFail)
				peers[1].set(fail(codes.Internal))
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			resp, err := client.Charge(ctx, &paymentv1.ChargeRequest{OrderId: "o-1", UserId: "u-1", AmountCents: 1, IdempotencyKey: "o-1"})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("charge: %v, want %v", err, tt.wantCode)
			}
			if err == nil && resp.GetCharge().GetOrderId() != "o-1" {
				t.Fatalf("reply %v: the winner's answer was not copied", resp)
			}
			if tt.slow && time.Since(start) > 5*time.Second {
				t.Fatalf("hedged call took %v: it waited for the stalled replica", time.Since(start))
			}
			if sent, won := rs.Hedges(); sent != tt.wantHedge || won != tt.wantWon {
				t.Fatalf("hedges sent %d won %d, want %d and %d", sent, won, tt.wantHedge, tt.wantWon)
			}
			if st := rs.pol.Stats(); st.GetHedgesSent() != tt.wantHedge || st.GetHedgesWon() != tt.wantWon {
				t.Fatalf("LinkStats hedges sent %d won %d, want %d and %d", st.GetHedgesSent(), st.GetHedgesWon(), tt.wantHedge, tt.wantWon)
			}
			if tt.wantHedge > 0 && peers[1].calls.Load() != 1 {
				t.Fatalf("the hedge went elsewhere than the next replica: replica 1 saw %d calls", peers[1].calls.Load())
			}
		})
	}
}
