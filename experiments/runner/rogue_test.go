package runner

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/fallacies/fallacies/experiments/definition"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
)

func TestClientRetries(t *testing.T) {
	w := definition.Workload{Retries: 3, RetryBackoff: 20 * time.Millisecond}
	tests := []struct {
		name    string
		c       config.Client
		retries int
		backoff time.Duration
	}{
		{"the load section's", config.Client{}, 3, 20 * time.Millisecond},
		{"a variant switches them off", config.Client{Retries: 0, RetriesSet: true}, 0, 20 * time.Millisecond},
		{"a variant's own", config.Client{Retries: 5, RetriesSet: true, RetryBackoff: time.Second}, 5, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, b := clientRetries(w, tt.c)
			if r != tt.retries || b != tt.backoff {
				t.Fatalf("clientRetries = %d, %v; want %d, %v", r, b, tt.retries, tt.backoff)
			}
		})
	}
}

// rogueTarget is a payment server that records the charges it makes.
type rogueTarget struct {
	paymentv1.UnimplementedPaymentServiceServer
	charged chan string
}

func (s *rogueTarget) Charge(_ context.Context, req *paymentv1.ChargeRequest) (*paymentv1.ChargeResponse, error) {
	s.charged <- req.GetOrderId()
	return &paymentv1.ChargeResponse{Charge: &paymentv1.Charge{OrderId: req.GetOrderId()}}, nil
}

func TestRogueCharge(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	target := &rogueTarget{charged: make(chan string, 1)}
	paymentv1.RegisterPaymentServiceServer(srv, target)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	// A plaintext server takes the stranger's charge.
	ok, err := rogueCharge(t.Context(), lis.Addr().String(), false, "run-1")
	if err != nil || !ok {
		t.Fatalf("rogue charge on a plaintext server: ok %v, err %v; want it to succeed", ok, err)
	}
	if id := <-target.charged; id != "rogue-run-1" {
		t.Fatalf("charged order %q, want rogue-run-1", id)
	}
	// Speaking TLS to it fails: the rogue reports the refusal, not an error.
	ok, err = rogueCharge(t.Context(), lis.Addr().String(), true, "run-2")
	if err != nil || ok {
		t.Fatalf("rogue TLS charge on a plaintext server: ok %v, err %v; want a refusal", ok, err)
	}
	if _, err := rogueCharge(t.Context(), "", false, "run-3"); err == nil {
		t.Fatal("rogue charge without an address: no error")
	}
}
