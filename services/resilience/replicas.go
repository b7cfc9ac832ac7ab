package resilience

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Hedging span event and attribute: a second attempt was sent to the
// replica named.
const (
	EventHedge  = "hedge"
	AttrReplica = attribute.Key("fallacies.replica")
)

// Replicas is one link to several replicas of a service: it spreads calls
// round-robin over one client connection per replica and, when the link's
// HedgeAfter is positive, hedges: when the replica picked first has not
// answered after HedgeAfter, a second attempt goes to the next replica
// and the first answer that is not an error wins; the other attempt is
// cancelled.
//
//	call ──▶ policy (bulkhead, retries, breaker, deadline) ──▶ pick replica i (round-robin)
//	                                                            ├─ attempt on i ───────────┐ first success wins
//	                                                            └─ after HedgeAfter: i+1 ──┘ the other is cancelled
//
// Round-robin is done here rather than by gRPC's round_robin balancer so
// that a hedge can go to a replica other than the first attempt's: a
// balancer cannot be told which replica to avoid. Hedging sends the same
// request twice, so it is only safe for idempotent calls whose replicas
// recognise a repeated idempotency key across replicas (payment with
// payment.idempotency: shared); with keys local to each replica a hedged
// charge is made twice, and the consistency checker reports it.
//
// Replicas implements grpc.ClientConnInterface (unary calls only) and is
// safe for concurrent use.
type Replicas struct {
	pol        *Policy
	conns      []*grpc.ClientConn
	hedgeAfter time.Duration
	next       atomic.Uint64
}

var _ grpc.ClientConnInterface = (*Replicas)(nil)

// NewReplicas returns the link of policy p over conns (one per replica,
// dialled without p's interceptor: Replicas applies p itself, around the
// choice of replica, so that a retry goes to the next replica).
func NewReplicas(p *Policy, conns []*grpc.ClientConn) (*Replicas, error) {
	if len(conns) == 0 {
		return nil, fmt.Errorf("replicas of %s: no connection", p.link)
	}
	return &Replicas{pol: p, conns: conns, hedgeAfter: p.cfg.HedgeAfter}, nil
}

// Hedges returns how many hedges were sent and how many of them answered
// first (the policy's counters, also in its Stats).
func (r *Replicas) Hedges() (sent, won int64) { return r.pol.hedges.Load(), r.pol.hedgesWon.Load() }

// Invoke implements grpc.ClientConnInterface: one call through the policy.
func (r *Replicas) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return r.pol.Intercept(ctx, method, args, reply, nil, r.invoke, opts...)
}

// NewStream implements grpc.ClientConnInterface; streams are not balanced.
func (r *Replicas) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "replicas of %s: streaming calls are not supported", r.pol.link)
}

// invoke is one attempt of the policy: a replica picked round-robin, and
// a hedge when it is slow.
func (r *Replicas) invoke(ctx context.Context, method string, req, reply any, _ *grpc.ClientConn, opts ...grpc.CallOption) error {
	n := len(r.conns)
	first := int((r.next.Add(1) - 1) % uint64(n))
	msg, ok := reply.(proto.Message)
	if r.hedgeAfter <= 0 || n < 2 || !ok {
		return r.conns[first].Invoke(ctx, method, req, reply, opts...)
	}
	return r.hedged(ctx, first, method, req, msg, opts)
}

type hedgeResult struct {
	reply   proto.Message
	err     error
	replica int
	hedge   bool
}

// hedged runs the attempt on replica first and, after hedgeAfter without
// an answer, a second one on the next replica. Each attempt decodes into
// its own reply; the winner's is merged into reply. The attempt still
// running when the call returns is cancelled, and its goroutine ends as
// soon as its Invoke returns (the channel has room for both results).
func (r *Replicas) hedged(ctx context.Context, first int, method string, req any, reply proto.Message, opts []grpc.CallOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan hedgeResult, 2)
	send := func(i int, hedge bool) {
		rep := reply.ProtoReflect().New().Interface()
		go func() {
			err := r.conns[i].Invoke(ctx, method, req, rep, opts...)
			results <- hedgeResult{reply: rep, err: err, replica: i, hedge: hedge}
		}()
	}
	send(first, false)
	outstanding := 1
	timer := time.NewTimer(r.hedgeAfter)
	defer timer.Stop()
	fire := timer.C
	var lastErr error
	for {
		select {
		case <-fire:
			fire = nil
			second := (first + 1) % len(r.conns)
			r.pol.hedges.Add(1)
			trace.SpanFromContext(ctx).AddEvent(EventHedge, trace.WithAttributes(
				AttrLink.String(r.pol.link), AttrReplica.Int(second)))
			send(second, true)
			outstanding++
		case res := <-results:
			outstanding--
			if res.err == nil {
				if res.hedge {
					r.pol.hedgesWon.Add(1)
				}
				proto.Reset(reply)
				proto.Merge(reply, res.reply)
				return nil
			}
			lastErr = res.err
			if outstanding == 0 {
				// Both attempts failed, or the first failed before a hedge
				// was due: the policy decides on a retry.
				return lastErr
			}
		case <-ctx.Done():
			if lastErr != nil {
				return lastErr
			}
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}
