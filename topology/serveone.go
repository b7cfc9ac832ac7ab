package topology

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/ledger"
	"github.com/fallacies/fallacies/services/notification"
	"github.com/fallacies/fallacies/services/order"
	"github.com/fallacies/fallacies/services/payment"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
)

// ServeConfig is what one service process needs: the system configuration
// and the addresses it listens on and dials (always proxy addresses).
type ServeConfig struct {
	Service    string        `json:"service"`
	System     config.System `json:"system"`
	Listen     string        `json:"listen"`                // gRPC; host:0 for a random port
	HTTPListen string        `json:"http_listen,omitempty"` // user only
	// HTTPHosts are host names user's JSON API answers to besides its
	// addresses (user only; compose: the toxiproxy container's name).
	HTTPHosts   []string `json:"http_hosts,omitempty"`
	UserAddr    string   `json:"user_addr,omitempty"`    // order only
	PaymentAddr string   `json:"payment_addr,omitempty"` // order only
	// UserHTTPAddr is the proxy of user's JSON API (order only).
	UserHTTPAddr string `json:"user_http_addr,omitempty"`
	NATSURL      string `json:"nats_url,omitempty"` // order, notification, ledger; payment with shared keys
	// PaymentReplicas are the proxies of further payment replicas (order only).
	PaymentReplicas []string `json:"payment_replicas,omitempty"`
	// Replica is the index of a payment replica (payment only; 0 for the first).
	Replica int `json:"replica,omitempty"`
	// TLS names the PEM files of the service's identity when the system
	// runs with mTLS; nil means plaintext.
	TLS *TLSFiles `json:"tls,omitempty"`
}

// Ready is the line a service process prints on stdout once it serves:
// "READY " followed by this object in JSON.
type Ready struct {
	GRPC string `json:"grpc"`
	HTTP string `json:"http,omitempty"`
}

// ReadyPrefix starts the readiness line of a service process.
const ReadyPrefix = "READY "

type service interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// ServeOne runs one service until ctx ends, printing the readiness line to
// out once its listeners are bound. It is what `fallacies serve` runs.
func ServeOne(ctx context.Context, c ServeConfig, so serve.Options, out io.Writer) error {
	if err := c.System.Validate(); err != nil {
		return fmt.Errorf("invalid system configuration: %w", err)
	}
	var httpTLS *tls.Config // the user HTTP API's, with mTLS
	if c.TLS != nil {
		id, err := LoadIdentity(c.Service, *c.TLS)
		if err != nil {
			return fmt.Errorf("%s: mtls: %w", c.Service, err)
		}
		if so, err = id.Secure(so); err != nil {
			return fmt.Errorf("%s: mtls: %w", c.Service, err)
		}
		if httpTLS, err = id.ServerTLS(); err != nil {
			return fmt.Errorf("%s: mtls: %w", c.Service, err)
		}
	}
	var (
		svc service
		err error
		us  *user.Server
	)
	sys := c.System
	switch c.Service {
	case "user":
		us, err = user.New(sys.User, so)
		svc = us
	case "payment":
		svc, err = payment.NewReplica(sys.Payment, payment.Replica{Index: c.Replica, NATSURL: c.NATSURL}, so)
	case "notification":
		svc, err = notification.New(sys.Notification, c.NATSURL, sys.Order.PublishMode, so)
	case "ledger":
		svc, err = ledger.New(sys.Ledger, c.NATSURL, sys.Order.PublishMode, so)
	case "order":
		svc, err = order.New(sys.Order, order.Deps{UserAddr: c.UserAddr, PaymentAddr: c.PaymentAddr, NATSURL: c.NATSURL, PaymentReplicas: c.PaymentReplicas, UserHTTPAddr: c.UserHTTPAddr}, so)
	default:
		return fmt.Errorf("unknown service %q (want one of user, payment, notification, ledger, order)", c.Service)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.Service, err)
	}
	lis, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", c.Service, c.Listen, err)
	}
	ready := Ready{GRPC: lis.Addr().String()}
	errc := make(chan error, 2)
	go func() { errc <- svc.Serve(lis) }()
	running := 1
	if us != nil && c.HTTPListen != "" {
		hl, err := net.Listen("tcp", c.HTTPListen)
		if err != nil {
			svc.Shutdown(context.WithoutCancel(ctx))
			return fmt.Errorf("user: listen on %s: %w", c.HTTPListen, err)
		}
		ready.HTTP = hl.Addr().String()
		if httpTLS != nil {
			hl = tls.NewListener(hl, httpTLS)
		}
		us.SetHTTPHosts(c.HTTPHosts...)
		go func() { errc <- us.ServeHTTP(hl) }()
		running++
	}
	// A consumer is ready once it is subscribed.
	if r, ok := svc.(interface{ Ready() <-chan struct{} }); ok {
		if err := waitReady(ctx, c.Service, r.Ready()); err != nil {
			svc.Shutdown(context.WithoutCancel(ctx))
			return err
		}
	}
	b, _ := json.Marshal(ready)
	fmt.Fprintf(out, "%s%s\n", ReadyPrefix, b)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		running--
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	shutdownErr := svc.Shutdown(sctx)
	for ; running > 0; running-- {
		if err := <-errc; err != nil && serveErr == nil {
			serveErr = err
		}
	}
	return errors.Join(serveErr, shutdownErr)
}
