package topology_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fallacies/fallacies/internal/testenv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

// tlsEcho is a TLS server with cfg that answers each connection's first
// byte, then closes it.
func tlsEcho(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 1)
			if _, err := c.Read(b); err == nil {
				c.Write(b)
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
	})
	return lis.Addr().String()
}

func TestPKI(t *testing.T) {
	pki, err := topology.NewPKI(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.Issue("payment")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := server.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsEcho(t, srvTLS)

	client, err := pki.Issue("order")
	if err != nil {
		t.Fatal(err)
	}
	other, err := topology.NewPKI(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("order")
	if err != nil {
		t.Fatal(err)
	}
	good, err := client.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := stranger.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	foreign.RootCAs = good.RootCAs // it trusts the server; the server does not trust it
	noCert := &tls.Config{RootCAs: good.RootCAs, MinVersion: tls.VersionTLS13}

	tests := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"a certificate of the CA", good, true},
		{"no client certificate", noCert, false},
		{"a certificate of another CA", foreign, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", addr, tt.cfg)
			if err == nil {
				// TLS 1.3 reports a refused client certificate on the
				// first read.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err = c.Write([]byte{'x'}); err == nil {
					_, err = c.Read(make([]byte, 1))
				}
				c.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("exchange: %v, want ok %v", err, tt.ok)
			}
		})
	}

	// Child processes get the identity as files.
	files, err := client.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := topology.LoadIdentity("order", files)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.CertPEM) != string(client.CertPEM) || string(back.KeyPEM) != string(client.KeyPEM) || string(back.CAPEM) != string(pki.CAPEM()) {
		t.Fatal("identity read back from its files differs")
	}
}

// health asks a gRPC server at addr for its health with creds.
func health(ctx context.Context, addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestEmbeddedMTLS(t *testing.T) {
	top := startEmbedded(t, system(t, "security.mtls", "on"))
	ep := top.Endpoints()
	so := topology.ObserverOptions(top)
	if so.ClientCreds == nil || so.ClientTLS == nil {
		t.Fatal("no observer credentials with mtls on")
	}
	// The observer reaches the services, and orders flow through every
	// encrypted link (user, payment, NATS to both consumers).
	conn, err := serve.Dial(ep.Services["order"], so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ids := orderIDs(t, "o", 5)
	mustPlace(t, orderv1.NewOrderServiceClient(conn), ids)

	// Strangers are refused at every address: the services and the proxies.
	noCert := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	for _, addr := range []string{ep.Services["payment"], ep.Proxies["payment"], ep.Proxies["user"], ep.Services["order"]} {
		if err := health(t.Context(), addr, insecure.NewCredentials()); err == nil {
			t.Errorf("plaintext client answered at %s", addr)
		}
		if err := health(t.Context(), addr, noCert); err == nil {
			t.Errorf("client without a certificate answered at %s", addr)
		}
	}
	// NATS refuses a plaintext client too.
	c, err := net.DialTimeout("tcp", ep.Proxies["nats-order"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	info := make([]byte, 4096)
	n, _ := c.Read(info)
	if got := string(info[:n]); !strings.Contains(got, `"tls_required":true`) {
		t.Errorf("NATS INFO does not require TLS: %q", got)
	}

	// order's JSON-over-HTTP client of user speaks TLS too.
	viaHTTP := startEmbedded(t, system(t, "security.mtls", "on", "order.user_transport", "http"))
	hconn, err := serve.Dial(viaHTTP.Endpoints().Services["order"], topology.ObserverOptions(viaHTTP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hconn.Close() })
	mustPlace(t, orderv1.NewOrderServiceClient(hconn), orderIDs(t, "http", 3))

	plain := startEmbedded(t, system(t))
	if so := topology.ObserverOptions(plain); so.ClientCreds != nil {
		t.Error("observer credentials with mtls off")
	}
}

func TestEmbeddedPaymentReplicas(t *testing.T) {
	top := startEmbedded(t, system(t, "payment.replicas", "3", "payment.idempotency", "shared"))
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	ids := orderIDs(t, "o", 30)
	mustPlace(t, cl.order, ids)
	// Round-robin: each replica made a third of the charges.
	seen := map[string]int{}
	for _, name := range []string{"payment", "payment-1", "payment-2"} {
		pc := paymentv1.NewPaymentServiceClient(dial(t, ep, name))
		charges := listCharges(t, pc)
		if len(charges) != 10 {
			t.Errorf("%s made %d charges, want 10", name, len(charges))
		}
		for _, c := range charges {
			seen[c.GetOrderId()]++
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("order %s charged %d times across replicas, want once", id, seen[id])
		}
	}
	// A charge repeated on another replica is recognised through the
	// shared keys: replayed, not charged again.
	first := paymentv1.NewPaymentServiceClient(dial(t, ep, "payment-1"))
	req := &paymentv1.ChargeRequest{OrderId: "again", UserId: "u-0001", AmountCents: 5, IdempotencyKey: "again"}
	if _, err := first.Charge(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	resp, err := paymentv1.NewPaymentServiceClient(dial(t, ep, "payment-2")).Charge(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetReplayed() || resp.GetCharge().GetChargeId() != "ch-r1-again" {
		t.Fatalf("second replica answered %v, want the first replica's charge ch-r1-again, replayed", resp)
	}
	req.AmountCents = 6
	_, err = paymentv1.NewPaymentServiceClient(dial(t, ep, "payment")).Charge(t.Context(), req)
	wantCode(t, "a key reused for another amount on a third replica", err, codes.FailedPrecondition)
}

// TestProcessesMove restarts user at a new address: order pinned to the
// old one fails for good, order resolving user in the registry follows.
func TestProcessesMove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bin := fallaciesBinary(t)
	tests := []struct {
		discovery string
		recovers  bool
	}{
		{"pinned", false},
		{"registry", true},
	}
	for _, tt := range tests {
		t.Run(tt.discovery, func(t *testing.T) {
			sys := system(t, "topology.restart_address", "new", "order.user.discovery", tt.discovery)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			top, err := topology.StartProcesses(ctx, topology.Options{System: sys, Binary: bin})
			if err != nil {
				t.Fatalf("start processes topology: %v", err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
				defer cancel()
				if err := top.Stop(ctx); err != nil {
					t.Errorf("stop: %v", err)
				}
			})
			cl := dialAll(t, top.Endpoints())
			mustPlace(t, cl.order, orderIDs(t, "before", 3))
			old := top.Endpoints().Proxies["user"]
			if err := top.Restart(ctx, "user"); err != nil {
				t.Fatalf("restart user: %v", err)
			}
			moved := top.Endpoints().Proxies["user"]
			if moved == old || moved == "" {
				t.Fatalf("user proxy at %q after the restart, was %q: it did not move", moved, old)
			}
			if err := health(t.Context(), old, insecure.NewCredentials()); err == nil {
				t.Fatalf("the old address %s still answers", old)
			}
			if err := health(t.Context(), moved, insecure.NewCredentials()); err != nil {
				t.Fatalf("the new address %s does not answer: %v", moved, err)
			}
			if tt.recovers {
				testenv.EventuallyNil(t, 10*time.Second, "an order through the moved replica", func() error {
					_, err := placeOrder(t.Context(), cl.order, orderID(t, "after", int(time.Now().UnixNano()%1e6)), 2*time.Second)
					return err
				})
				return
			}
			// Pinned: every order fails for a second after the replacement
			// is up and answering at its new address.
			for i, until := 0, time.Now().Add(time.Second); time.Now().Before(until); i++ {
				_, err := placeOrder(t.Context(), cl.order, orderID(t, "after", i), 2*time.Second)
				wantCode(t, "order pinned to the old user address", err, codes.Unavailable)
			}
		})
	}
}
