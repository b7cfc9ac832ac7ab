package topology

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/fallacies/fallacies/services/serve"
)

// CertTTL is how long the testbed's certificates are valid: long enough for
// `fallacies up` to keep a system up for a working day, short enough that a
// leaked key is worthless soon.
const CertTTL = 24 * time.Hour

// PKI is the testbed's own certificate authority, made in memory for one
// topology when security.mtls is on. Every service, and the runner that
// observes them, gets a certificate of its own (ECDSA P-256, valid for
// 127.0.0.1, ::1, localhost and its own name, usable by servers and
// clients alike), and
// every server requires and verifies a client certificate of this CA:
//
//	CA (in memory, never written) ──issues──▶ user, payment, order, … , runner
//	client ──TLS 1.3, client cert──▶ [proxy: sees ciphertext only] ──▶ server (verifies it)
//
// It is safe for concurrent use.
type PKI struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	caPEM []byte
	ttl   time.Duration
}

// NewPKI makes a fresh certificate authority whose certificates are valid
// for ttl from now (CertTTL when ttl ≤ 0).
func NewPKI(ttl time.Duration) (*PKI, error) {
	if ttl <= 0 {
		ttl = CertTTL
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "fallacies testbed CA", Organization: []string{"fallacies"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(ttl),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &PKI{cert: cert, key: key, ttl: ttl, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// Issue makes a certificate for name (its common name), signed by the CA.
func (p *PKI) Issue(name string) (Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generate key of %s: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"fallacies"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(p.ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost", name}, // name: the authority of a registry target, e.g. registry:///user
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		return Identity{}, fmt.Errorf("issue certificate of %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Identity{}, fmt.Errorf("encode key of %s: %w", name, err)
	}
	return Identity{
		Name:    name,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		CAPEM:   p.caPEM,
	}, nil
}

// CAPEM returns the CA certificate in PEM.
func (p *PKI) CAPEM() []byte { return append([]byte(nil), p.caPEM...) }

// Identity is one party's certificate and key, with the certificate of the
// CA that issued it (and that it trusts), all in PEM.
type Identity struct {
	Name                   string
	CertPEM, KeyPEM, CAPEM []byte
}

func (id Identity) parse() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("certificate of %s: %w", id.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(id.CAPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("CA certificate of %s: no certificate in PEM", id.Name)
	}
	return cert, pool, nil
}

// ServerTLS is the TLS configuration of a server: TLS 1.3, this identity's
// certificate, and a client certificate of the CA required and verified.
func (id Identity) ServerTLS() (*tls.Config, error) {
	cert, pool, err := id.parse()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLS is the TLS configuration of a client: TLS 1.3, the server's
// certificate verified against the CA, this identity's certificate shown.
func (id Identity) ClientTLS() (*tls.Config, error) {
	cert, pool, err := id.parse()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}, nil
}

// Secure returns so with this identity's credentials: gRPC server and
// client credentials and the TLS configuration of NATS connections.
func (id Identity) Secure(so serve.Options) (serve.Options, error) {
	srv, err := id.ServerTLS()
	if err != nil {
		return so, err
	}
	cli, err := id.ClientTLS()
	if err != nil {
		return so, err
	}
	so.ServerCreds = credentials.NewTLS(srv)
	so.ClientCreds = credentials.NewTLS(cli)
	so.ClientTLS = cli
	return so, nil
}

// TLSFiles names the PEM files of an identity given to a child process.
type TLSFiles struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// WriteFiles writes the identity's PEM files into dir, readable by the
// owner only, and returns their names.
func (id Identity) WriteFiles(dir string) (TLSFiles, error) {
	f := TLSFiles{
		CA:   filepath.Join(dir, id.Name+"-ca.pem"),
		Cert: filepath.Join(dir, id.Name+"-cert.pem"),
		Key:  filepath.Join(dir, id.Name+"-key.pem"),
	}
	for path, b := range map[string][]byte{f.CA: id.CAPEM, f.Cert: id.CertPEM, f.Key: id.KeyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return TLSFiles{}, fmt.Errorf("write tls file of %s: %w", id.Name, err)
		}
	}
	return f, nil
}

// LoadIdentity reads the PEM files an identity was written to.
func LoadIdentity(name string, f TLSFiles) (Identity, error) {
	id := Identity{Name: name}
	var errs []error
	for _, r := range []struct {
		path string
		dst  *[]byte
	}{{f.CA, &id.CAPEM}, {f.Cert, &id.CertPEM}, {f.Key, &id.KeyPEM}} {
		b, err := os.ReadFile(r.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read tls file of %s: %w", name, err))
		}
		*r.dst = b
	}
	return id, errors.Join(errs...)
}
