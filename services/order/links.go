package order

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/discovery"
	"github.com/fallacies/fallacies/services/resilience"
	"github.com/fallacies/fallacies/services/serve"
)

// maxProfileBytes is the largest profile order accepts from user: the
// largest history user.history_bytes allows and room for the rest (gRPC's
// default of 4 MiB would refuse a profile the knob accepts).
const maxProfileBytes = config.MaxHistoryBytes + 1<<20

// dialUser connects the user link: pinned to deps.UserAddr, or, with
// registry discovery, resolved in the registry over order's own NATS
// connection and followed whenever the registry changes.
func (s *Server) dialUser(deps Deps, o serve.Options) error {
	var err error
	opts := append(s.userPol.DialOptions(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxProfileBytes)))
	if s.cfg.UserDiscovery == config.DiscoveryRegistry {
		opts = append(opts, grpc.WithResolvers(discovery.NewResolver(s.js, s.log)))
		if s.userConn, err = serve.DialTarget(discovery.Target("user"), o, opts...); err != nil {
			return fmt.Errorf("dial user through the registry: %w", err)
		}
		return nil
	}
	if s.userConn, err = serve.Dial(deps.UserAddr, o, opts...); err != nil {
		return fmt.Errorf("dial user %s: %w", deps.UserAddr, err)
	}
	return nil
}

// dialPayment connects the payment link: one connection carrying the
// link's policy, or, with several replicas, one connection per replica and
// the policy around the choice of replica (round-robin, hedging).
func (s *Server) dialPayment(deps Deps, o serve.Options) error {
	var err error
	// Each attempt's key is set inside the policy, under its retries.
	var perAttempt []grpc.DialOption
	if s.cfg.ChargeKey == config.ChargeKeyAttempt {
		perAttempt = append(perAttempt, grpc.WithChainUnaryInterceptor(keyPerAttempt()))
	}
	if len(deps.PaymentReplicas) == 0 {
		if s.payConn, err = serve.Dial(deps.PaymentAddr, o, append(s.payPol.DialOptions(), perAttempt...)...); err != nil {
			return fmt.Errorf("dial payment %s: %w", deps.PaymentAddr, err)
		}
		s.payments = paymentv1.NewPaymentServiceClient(s.payConn)
		return nil
	}
	if s.payConn, err = serve.Dial(deps.PaymentAddr, o, perAttempt...); err != nil {
		return fmt.Errorf("dial payment %s: %w", deps.PaymentAddr, err)
	}
	conns := []*grpc.ClientConn{s.payConn}
	for _, addr := range deps.PaymentReplicas {
		conn, err := serve.Dial(addr, o, perAttempt...)
		if err != nil {
			return fmt.Errorf("dial payment replica %s: %w", addr, err)
		}
		s.replicaConns = append(s.replicaConns, conn)
		conns = append(conns, conn)
	}
	rs, err := resilience.NewReplicas(s.payPol, conns)
	if err != nil {
		return fmt.Errorf("payment replicas: %w", err)
	}
	s.payments = paymentv1.NewPaymentServiceClient(rs)
	return nil
}

// keyPerAttempt returns an interceptor that gives every Charge attempt an
// idempotency key of its own, the order id and a sequence number after a
// '/' (order.charge_key: attempt): the payment server then takes a retry
// for a new charge. '/' is a character no order id has and a shared key
// bucket (NATS key-value) accepts.
func keyPerAttempt() grpc.UnaryClientInterceptor {
	var seq atomic.Int64
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if c, ok := req.(*paymentv1.ChargeRequest); ok {
			c = proto.CloneOf(c)
			c.IdempotencyKey = fmt.Sprintf("%s/%d", c.GetOrderId(), seq.Add(1))
			req = c
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// secure makes the user HTTP client speak TLS with the service's client
// certificate (security.mtls); nothing changes when c is nil.
func (u *userHTTP) secure(c *tls.Config) {
	if c == nil {
		return
	}
	if tr, ok := u.client.Transport.(*http.Transport); ok {
		tr.TLSClientConfig = c.Clone()
		u.base = "https://" + u.addr
	}
}
