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
	"github.com/fallacies/fallacies/services/serve"
)

// ServeConfig is what one service instance needs: the system
// configuration, the addresses it listens on and those of the links it
// dials (always proxy addresses). The processes topology writes it as JSON
// for `fallacies serve --config`.
type ServeConfig struct {
	Service    string        `json:"service"`
	System     config.System `json:"system"`
	Listen     string        `json:"listen"`                // gRPC; host:0 for a random port
	HTTPListen string        `json:"http_listen,omitempty"` // user only
	// HTTPHosts are host names user's JSON API answers to besides its
	// addresses (user only; compose: the toxiproxy container's name).
	HTTPHosts []string `json:"http_hosts,omitempty"`
	// Links are the addresses of the links the service dials, by link
	// (proxy) name: host:port, or a nats:// URL for a link to NATS.
	Links map[string]string `json:"links,omitempty"`
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

// ServeOne runs one service until ctx ends, printing the readiness line to
// out once it serves. It is what `fallacies serve` runs.
func ServeOne(ctx context.Context, c ServeConfig, so serve.Options, out io.Writer) error {
	if err := c.System.Validate(); err != nil {
		return fmt.Errorf("invalid system configuration: %w", err)
	}
	var id *Identity
	if c.TLS != nil {
		loaded, err := LoadIdentity(c.Service, *c.TLS)
		if err != nil {
			return fmt.Errorf("%s: mtls: %w", c.Service, err)
		}
		id = &loaded
	}
	r, err := runServer(ctx, c, id, so)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r.ready)
	fmt.Fprintf(out, "%s%s\n", ReadyPrefix, b)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-r.errc:
		r.serving--
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(serveErr, r.stop(sctx))
}

// running is a started service instance: in this process (a *local) or
// in a child process (a *child).
type running interface {
	readiness() Ready
	stop(ctx context.Context) error
}

// local is a service instance serving in goroutines of this process.
type local struct {
	name    string
	ready   Ready
	srv     service
	errc    chan error // one value from each serve goroutine as it returns
	serving int        // serve goroutines not yet returned
	lis     []net.Listener
}

// runServer builds the service of c (the one constructor path of every
// topology: serviceSpecs) and serves it on new listeners at c.Listen and,
// for a service with an HTTP API, c.HTTPListen. With an identity (mTLS)
// every listener and client speaks TLS. It returns once the service is
// ready: serving, and a consumer subscribed.
func runServer(ctx context.Context, c ServeConfig, id *Identity, so serve.Options) (_ *local, err error) {
	spec, err := specOf(c.Service)
	if err != nil {
		return nil, err
	}
	name := instance{spec: spec, replica: c.Replica}.name()
	var httpTLS *tls.Config
	if id != nil {
		if so, err = id.Secure(so); err != nil {
			return nil, fmt.Errorf("%s: mtls: %w", name, err)
		}
		if httpTLS, err = id.ServerTLS(); err != nil {
			return nil, fmt.Errorf("%s: mtls: %w", name, err)
		}
	}
	srv, err := spec.build(c.System, c.Replica, c.Links, so)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	l := &local{name: name, srv: srv, errc: make(chan error, 2)}
	defer func() {
		if err != nil {
			l.stop(context.WithoutCancel(ctx))
		}
	}()
	lis, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, c.Listen, err)
	}
	l.ready.GRPC = lis.Addr().String()
	l.serve(srv.Serve, lis)
	if hs, ok := srv.(httpServer); ok && spec.http && c.HTTPListen != "" {
		hl, err := net.Listen("tcp", c.HTTPListen)
		if err != nil {
			return nil, fmt.Errorf("%s: listen on %s: %w", name, c.HTTPListen, err)
		}
		l.ready.HTTP = hl.Addr().String()
		if httpTLS != nil {
			hl = tls.NewListener(hl, httpTLS)
		}
		hs.SetHTTPHosts(c.HTTPHosts...)
		l.serve(hs.ServeHTTP, hl)
	}
	if r, ok := srv.(readier); ok {
		if err := waitReady(ctx, name, r.Ready()); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *local) serve(fn func(net.Listener) error, lis net.Listener) {
	l.lis = append(l.lis, lis)
	l.serving++
	go func() { l.errc <- fn(lis) }()
}

func (l *local) readiness() Ready { return l.ready }

// stop shuts the service down and waits for its serve goroutines; the
// error joins the shutdown's and the first serve error.
func (l *local) stop(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	for _, lis := range l.lis {
		lis.Close()
	}
	var serveErr error
	for ; l.serving > 0; l.serving-- {
		select {
		case e := <-l.errc:
			if serveErr == nil {
				serveErr = e
			}
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("%s did not stop: %w", l.name, ctx.Err()))
		}
	}
	return errors.Join(serveErr, err)
}

// failed returns a serve error that ended the service early, or nil.
func (l *local) failed() error {
	select {
	case err := <-l.errc:
		l.serving--
		if err == nil {
			err = errors.New("stopped serving")
		}
		return fmt.Errorf("%s: serve: %w", l.name, err)
	default:
		return nil
	}
}
