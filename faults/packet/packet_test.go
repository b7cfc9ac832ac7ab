package packet_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/packet"
	"github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoThroughProxy starts an echo server behind a proxy of an embedded
// Toxiproxy and returns the proxy's address and an injector journaling
// to a file of the test.
func echoThroughProxy(t *testing.T) (listen string, inj *toxiproxy.Injector, srv *toxiproxy.Server) {
	t.Helper()
	echo := testenv.EchoServer(t)
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err = toxiproxy.Start(t.Context(), api, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	if listen, err = srv.AddProxy(faults.ProxyPayment, echo); err != nil {
		t.Fatal(err)
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return listen, toxiproxy.NewInjector(srv.URL(), j), srv
}

// echo sends n bytes through addr and reads them back within d.
func echo(addr string, n int, d time.Duration) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	go c.Write(make([]byte, n))
	_, err = io.ReadFull(c, make([]byte, n))
	return err
}

func TestPacketFaultCrossesTheSegmentAndCountsAndRestores(t *testing.T) {
	listen, tinj, _ := echoThroughProxy(t)
	inj := packet.NewInjector(tinj, 1)
	lossy := faults.Fault{Name: "lossy", Kind: faults.PacketLoss, Target: faults.ProxyPayment, Direction: faults.Both, Attrs: map[string]int64{"probability": 50_000}}
	other := faults.Fault{Name: "slow", Kind: faults.Latency, Target: faults.ProxyPayment}
	if err := inj.Prepare(t.Context(), []faults.Fault{lossy, other}); err != nil {
		t.Fatal(err)
	}
	a, err := inj.Apply(t.Context(), lossy)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(listen, 256<<10, 30*time.Second); err != nil {
		t.Fatalf("through a 5%% lossy segment: %v", err)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	c := inj.Counters("lossy")
	if c["packets"] < 100 || c["dropped"] == 0 || c["retransmits"] == 0 {
		t.Fatalf("counters %v: want packets, drops and retransmissions", c)
	}
	// Off: the counters of the fault stay as they were.
	if err := echo(listen, 64<<10, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if again := inj.Counters("lossy"); again["packets"] != c["packets"] {
		t.Fatalf("counters moved after the fault came off: %v then %v", c, again)
	}
	if err := inj.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	proxies, err := tinj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The proxy points at the echo server again: no segment is left.
	if err := echo(listen, 1000, 10*time.Second); err != nil {
		t.Fatalf("after Close: %v (proxy %+v)", err, proxies[faults.ProxyPayment])
	}
}

func TestPrepareRefusesABadPacketFaultBeforeInterposing(t *testing.T) {
	_, tinj, _ := echoThroughProxy(t)
	before, err := tinj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	inj := packet.NewInjector(tinj, 1)
	defer inj.Close(context.Background())
	good := faults.Fault{Name: "good", Kind: faults.PacketLoss, Target: faults.ProxyPayment, Attrs: map[string]int64{"probability": 10_000}}
	bad := faults.Fault{Name: "bad", Kind: faults.PacketLoss, Target: faults.ProxyPayment, Attrs: map[string]int64{"probability": 600_000}}
	if err := inj.Prepare(t.Context(), []faults.Fault{good, bad}); err == nil {
		t.Fatal("a 60% loss was prepared")
	}
	after, err := tinj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after[faults.ProxyPayment].Upstream, before[faults.ProxyPayment].Upstream; got != want {
		t.Fatalf("upstream %s after a refused Prepare, want %s untouched", got, want)
	}
}
