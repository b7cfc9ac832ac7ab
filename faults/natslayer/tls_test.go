package natslayer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/fallacies/fallacies/faults/natslayer"
	"github.com/fallacies/fallacies/internal/testenv"
)

// TestTLSIsRelayedUntouched: a server that requires TLS makes the
// connection unreadable after INFO; the layer relays it byte for byte, the
// client's TLS handshake with the real server succeeds through it, and no
// rule acts on it (a drop of every subject drops nothing), counted in
// Opaque.
func TestTLSIsRelayedUntouched(t *testing.T) {
	cert, pool := selfSigned(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	testenv.Eventually(t, 20*time.Second, "TLS nats-server ready", func() bool { return ns.ReadyForConnections(10 * time.Millisecond) })
	l, err := natslayer.Listen("127.0.0.1", ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	setRules(t, l, natslayer.Rule{Name: "all", Kind: natslayer.Drop})

	nc, err := nats.Connect("tls://"+l.Addr(), nats.Secure(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("TLS through the layer: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", []byte("through")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "through" {
		t.Fatalf("a message over TLS through the layer: %v", err)
	}
	if l.Opaque() != 1 {
		t.Fatalf("opaque connections %d, want the TLS one", l.Opaque())
	}
	if c := l.Counters()["all"]; c.Messages != 0 {
		t.Fatalf("the rule saw %d messages of a TLS connection", c.Messages)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "natslayer test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
