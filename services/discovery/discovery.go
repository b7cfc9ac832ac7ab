// Package discovery is the testbed's service registry: a JetStream
// key-value bucket that maps a service name to the address its clients
// dial (in the testbed, the proxy in front of it). The topology writes it;
// a client that asks for registry discovery resolves through it with a
// gRPC resolver that watches the key and follows every change:
//
//	topology ──Publish(user, 127.0.0.1:41234)──▶ bucket REGISTRY ──watch──▶ resolver ──▶ gRPC ClientConn
//	(restart at a new address: Publish again)                               (new address: new connection)
//
// A client pinned to the address it was given at start never looks here
// again: when the service moves, it keeps dialling the old address.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/resolver"
)

// Bucket is the key-value bucket of the registry.
const Bucket = "REGISTRY"

// Scheme is the gRPC resolver scheme of registry targets:
// "registry:///user" resolves the service user.
const Scheme = "registry"

// Target returns the gRPC target that resolves service in the registry.
func Target(service string) string { return Scheme + ":///" + service }

// retryWait is how long the resolver waits before it tries again to open
// the bucket or its watch (NATS may not be reachable yet).
const retryWait = 100 * time.Millisecond

// Ensure creates the registry bucket if it does not exist and returns it.
// A bucket that exists is left as it is.
func Ensure(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      Bucket,
			Description: "fallacies service registry: service name → address to dial",
			History:     1,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Publish records that service is reached at addr.
func Publish(ctx context.Context, kv jetstream.KeyValue, service, addr string) error {
	if _, err := kv.PutString(ctx, service, addr); err != nil {
		return fmt.Errorf("publish %s at %s in %s: %w", service, addr, Bucket, err)
	}
	return nil
}

// Lookup returns the address the registry holds for service.
func Lookup(ctx context.Context, kv jetstream.KeyValue, service string) (string, error) {
	e, err := kv.Get(ctx, service)
	if err != nil {
		return "", fmt.Errorf("look up %s in %s: %w", service, Bucket, err)
	}
	return string(e.Value()), nil
}

// NewResolver returns a gRPC resolver builder for registry targets
// ("registry:///SERVICE"), reading the bucket through js. Pass it to a
// client connection with grpc.WithResolvers. Each resolver it builds owns
// one goroutine that watches the service's key and pushes every new
// address to its connection; Close stops it.
func NewResolver(js jetstream.JetStream, log *slog.Logger) resolver.Builder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &builder{js: js, log: log}
}

type builder struct {
	js  jetstream.JetStream
	log *slog.Logger
}

// Scheme implements resolver.Builder.
func (b *builder) Scheme() string { return Scheme }

// Build implements resolver.Builder: it starts watching the target's key.
func (b *builder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := t.Endpoint()
	if service == "" {
		return nil, fmt.Errorf("registry target %q names no service", t.URL.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &watcher{service: service, cc: cc, cancel: cancel, done: make(chan struct{}), log: b.log.With("service", service)}
	go r.run(ctx, b.js)
	return r, nil
}

// watcher is the resolver of one target.
type watcher struct {
	service string
	cc      resolver.ClientConn
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	addr string // last address pushed
}

// run watches the key until ctx ends, opening the bucket and the watch
// again whenever they fail.
func (r *watcher) run(ctx context.Context, js jetstream.JetStream) {
	defer close(r.done)
	for ctx.Err() == nil {
		err := r.watch(ctx, js)
		if ctx.Err() != nil {
			return
		}
		r.log.Debug("registry watch ended", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryWait):
		}
	}
}

// watch follows the key until the watch ends or ctx does.
func (r *watcher) watch(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", Bucket, err)
	}
	w, err := kv.Watch(ctx, r.service)
	if err != nil {
		return fmt.Errorf("watch %s in %s: %w", r.service, Bucket, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // nil: the initial values are all delivered
			}
			r.push(string(e.Value()))
		}
	}
}

// push hands a new address to the client connection.
func (r *watcher) push(addr string) {
	r.mu.Lock()
	changed := addr != r.addr
	r.addr = addr
	r.mu.Unlock()
	if !changed {
		return
	}
	r.log.Info("registry address", "addr", addr)
	if err := r.cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}}); err != nil {
		r.log.Debug("registry update refused", "addr", addr, "err", err)
	}
}

// ResolveNow implements resolver.Resolver; the watch is always current.
func (r *watcher) ResolveNow(resolver.ResolveNowOptions) {}

// Close implements resolver.Resolver: it stops the watch and waits for it.
func (r *watcher) Close() {
	r.cancel()
	<-r.done
}
