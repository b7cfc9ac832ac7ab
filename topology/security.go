package topology

import (
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc/credentials"

	"github.com/fallacies/fallacies/services/serve"
)

// ObserverName is the identity of the client outside the system (the
// runner, health checks) when the topology runs with mTLS.
const ObserverName = "observer"

// security is a topology's transport security: nil when the system runs
// plaintext (security.mtls off), else its CA and the observer's identity.
type security struct {
	pki      *PKI
	observer Identity
}

// newSecurity makes the CA of a topology when mtls is on; nil otherwise.
func newSecurity(mtls bool) (*security, error) {
	if !mtls {
		return nil, nil
	}
	pki, err := NewPKI(0)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	obs, err := pki.Issue(ObserverName)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return &security{pki: pki, observer: obs}, nil
}

// issue returns a new identity for the named piece; nil when s is nil.
func (s *security) issue(name string) (*Identity, error) {
	if s == nil {
		return nil, nil
	}
	id, err := s.pki.Issue(name)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return &id, nil
}

// serverTLS returns a server TLS configuration for the named piece (the
// user HTTP API, nats-server); nil when s is nil.
func (s *security) serverTLS(name string) (*tls.Config, error) {
	if s == nil {
		return nil, nil
	}
	id, err := s.issue(name)
	if err != nil {
		return nil, err
	}
	return id.ServerTLS()
}

// observerOptions returns the serve options of the observer: its client
// credentials and NATS TLS; zero when s is nil.
func (s *security) observerOptions() serve.Options {
	if s == nil {
		return serve.Options{}
	}
	so, err := s.observer.Secure(serve.Options{})
	if err != nil {
		// The observer's identity was parsed when it was issued.
		return serve.Options{}
	}
	so.ServerCreds = nil
	return so
}

// creds returns the observer's gRPC client credentials, or nil (plaintext).
func (s *security) creds() credentials.TransportCredentials {
	return s.observerOptions().ClientCreds
}

// ObserverOptions returns the serve options with which a client outside
// the system under test (the runner) reaches the services of t: a client
// certificate of t's own CA when the system runs with security.mtls on,
// the zero Options (plaintext) otherwise, and for topologies it did not
// start.
func ObserverOptions(t Topology) serve.Options {
	if o, ok := t.(interface{ observerOptions() serve.Options }); ok {
		return o.observerOptions()
	}
	return serve.Options{}
}
