package topology

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/ledger"
	"github.com/fallacies/fallacies/services/notification"
	"github.com/fallacies/fallacies/services/order"
	"github.com/fallacies/fallacies/services/payment"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
)

// Embedded is the whole system in this process: nats-server and Toxiproxy
// as libraries, every service a goroutine.
type Embedded struct {
	endpoints Endpoints
	toxiproxy *toxiproxy.Server
	sec       *security // nil: plaintext

	mu       sync.Mutex
	stops    []func(context.Context) error // in start order; run in reverse
	stopped  bool
	serveErr chan error
}

// StartEmbedded starts the embedded topology and returns when every service
// answers its health check. On error everything started so far is stopped.
func StartEmbedded(ctx context.Context, o Options) (t *Embedded, err error) {
	t = &Embedded{serveErr: make(chan error, 16)}
	started := t // a `return nil, err` clears t before the deferred cleanup runs
	defer func() {
		if err != nil {
			started.Stop(context.WithoutCancel(ctx))
			t = nil
		}
	}()
	host := o.host()
	sys := o.System
	if t.sec, err = newSecurity(sys.Security.MTLS); err != nil {
		return nil, err
	}
	natsTLS, err := t.sec.serverTLS("nats")
	if err != nil {
		return nil, err
	}
	ns, stopNATS, err := startNATS(ctx, host, o.NATSPort, natsTLS)
	if err != nil {
		return nil, err
	}
	t.onStop(func(context.Context) error { stopNATS(); return nil })

	apiAddr := o.ToxiproxyAPI
	if apiAddr == "" {
		apiAddr = net.JoinHostPort(host, "0")
	}
	apiLis, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy API: listen on %s: %w (is another toxiproxy or `fallacies up` running? pick another address with --toxiproxy-api)", apiAddr, err)
	}
	tp, err := toxiproxy.Start(ctx, apiLis, o.Logger)
	if err != nil {
		apiLis.Close()
		return nil, fmt.Errorf("toxiproxy: %w", err)
	}
	t.toxiproxy = tp
	t.onStop(tp.Shutdown)

	// Bind every service listener first so the proxies know where to point.
	lis := map[string]net.Listener{}
	names := []string{"user", "user_http", "payment", "notification", "ledger", "order"}
	for i := 1; i < paymentReplicas(sys); i++ {
		names = append(names, replicaName(i))
	}
	for _, name := range names {
		l, err := listen(host)
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			return nil, err
		}
		lis[name] = l
	}
	// Listeners no service took over by the time a start fails are closed
	// on Stop too (closing one twice is harmless).
	bound := slices.Collect(maps.Values(lis))
	t.onStop(func(context.Context) error {
		for _, l := range bound {
			l.Close()
		}
		return nil
	})
	upstream := map[string]string{"nats": ns.Addr().String()}
	for name, l := range lis {
		upstream[name] = l.Addr().String()
	}
	routes := proxyRoutes()
	for i := 1; i < paymentReplicas(sys); i++ {
		routes[replicaName(i)] = replicaName(i)
	}
	if sys.Payment.Idempotency == config.IdempotencyShared {
		routes[ProxyNATSPayment] = "nats"
	}
	proxies := map[string]string{}
	for name, to := range routes {
		addr, err := tp.AddProxy(name, upstream[to])
		if err != nil {
			for _, l := range lis {
				l.Close()
			}
			return nil, fmt.Errorf("create proxy %s: %w", name, err)
		}
		proxies[name] = addr
	}
	t.endpoints = Endpoints{
		ToxiproxyAPI: tp.URL(),
		NATS:         natsURL(ns),
		UserHTTP:     upstream["user_http"],
		Proxies:      proxies,
		Services: map[string]string{
			"user": upstream["user"], "payment": upstream["payment"], "order": upstream["order"],
			"notification": upstream["notification"], "ledger": upstream["ledger"],
		},
	}
	for i := 1; i < paymentReplicas(sys); i++ {
		t.endpoints.Services[replicaName(i)] = upstream[replicaName(i)]
	}
	reg, err := openRegistry(ctx, natsURL(ns), t.sec)
	if err != nil {
		return nil, err
	}
	err = reg.publish(ctx, registryEntries(proxies))
	reg.close()
	if err != nil {
		return nil, err
	}
	// Every service gets its own certificate when security.mtls is on.
	sos := map[string]serve.Options{}
	for _, name := range append(slices.Clone(Services), replicaNames(sys)...) {
		// Replicas trace as the one service they are.
		if sos[name], err = t.sec.service(name, o.serveOptions(strings.TrimRight(name, "-0123456789"))); err != nil {
			return nil, err
		}
	}
	if httpTLS, err := t.sec.serverTLS("user-http"); err != nil {
		return nil, err
	} else if httpTLS != nil {
		lis["user_http"] = tls.NewListener(lis["user_http"], httpTLS)
	}
	us, err := user.New(sys.User, sos["user"])
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	t.serve("user", us.Serve, lis["user"], nil)
	t.serve("user-http", us.ServeHTTP, lis["user_http"], us.Shutdown)

	for i := range paymentReplicas(sys) {
		name := replicaName(i)
		ps, err := payment.NewReplica(sys.Payment, payment.Replica{Index: i, NATSURL: "nats://" + proxies[ProxyNATSPayment]}, sos[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.serve(name, ps.Serve, lis[name], ps.Shutdown)
	}

	mode := sys.Order.PublishMode
	ntf, err := notification.New(sys.Notification, "nats://"+proxies["nats-notification"], mode, sos["notification"])
	if err != nil {
		return nil, fmt.Errorf("notification: %w", err)
	}
	t.serve("notification", ntf.Serve, lis["notification"], ntf.Shutdown)

	ldg, err := ledger.New(sys.Ledger, "nats://"+proxies["nats-ledger"], mode, sos["ledger"])
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	t.serve("ledger", ldg.Serve, lis["ledger"], ldg.Shutdown)

	ord, err := order.New(sys.Order, order.Deps{
		UserAddr:        proxies["user"],
		PaymentAddr:     proxies["payment"],
		NATSURL:         "nats://" + proxies["nats-order"],
		PaymentReplicas: replicaProxies(sys, proxies),
		UserHTTPAddr:    proxies["user-http"],
	}, sos["order"])
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	t.serve("order", ord.Serve, lis["order"], ord.Shutdown)

	for _, name := range append(slices.Clone(Services), replicaNames(sys)...) {
		if err := waitHealthy(ctx, t.endpoints.Services[name], t.sec.creds()); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	// A consumer is ready once it is subscribed: in core NATS mode an event
	// published before that would be lost.
	for name, ready := range map[string]<-chan struct{}{"notification": ntf.Ready(), "ledger": ldg.Ready()} {
		if err := waitReady(ctx, name, ready); err != nil {
			return nil, err
		}
	}
	select {
	case err := <-t.serveErr:
		return nil, err
	default:
	}
	return t, nil
}

// serve runs fn(lis) in a goroutine owned by the topology; shutdown (when
// not nil) is run on Stop.
func (t *Embedded) serve(name string, fn func(net.Listener) error, lis net.Listener, shutdown func(context.Context) error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(lis); err != nil {
			select {
			case t.serveErr <- fmt.Errorf("%s: serve: %w", name, err):
			default:
			}
		}
	}()
	t.onStop(func(ctx context.Context) error {
		var err error
		if shutdown != nil {
			err = shutdown(ctx)
		}
		lis.Close()
		select {
		case <-done:
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("%s did not stop: %w", name, ctx.Err()))
		}
		return err
	})
}

func (t *Embedded) onStop(f func(context.Context) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stops = append(t.stops, f)
}

// Endpoints returns where every piece listens.
func (t *Embedded) Endpoints() Endpoints { return t.endpoints }

// Toxiproxy returns the embedded Toxiproxy server.
func (t *Embedded) Toxiproxy() *toxiproxy.Server { return t.toxiproxy }

// Stop stops every service, then Toxiproxy, then nats-server.
func (t *Embedded) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	stops := t.stops
	t.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		if err := stops[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
