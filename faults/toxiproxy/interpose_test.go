package toxiproxy_test

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
)

// tagLayer is a layer that answers every connection with "layer:" and
// then relays to the upstream it was started in front of.
func tagLayer(t *testing.T) faults.Layer {
	return faults.LayerFunc(func(upstream string) (string, error) {
		return tcpServer(t, func(c net.Conn) {
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer up.Close()
			io.WriteString(c, "layer:")
			io.Copy(c, up)
		}), nil
	})
}

func TestInterposePutsALayerOnTheLinkAndRemoveTakesItOff(t *testing.T) {
	s := startServer(t)
	listen, err := s.AddProxy("svc", tcpServer(t, func(c net.Conn) { io.WriteString(c, "server") }))
	if err != nil {
		t.Fatal(err)
	}
	greeting := func() string {
		c := dial(t, listen)
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	j, err := faults.OpenJournal(filepath.Join(t.TempDir(), "j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	inj := tp.NewInjector(s.URL(), j)
	a, err := inj.Interpose(t.Context(), "svc", "tag", tagLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	if g := greeting(); g != "layer:server" {
		t.Fatalf("through the layer: %q, want layer:server", g)
	}
	if err := inj.Remove(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if g := greeting(); g != "server" {
		t.Fatalf("after Remove: %q, want server", g)
	}
	if out, _ := j.Outstanding(); len(out) != 0 {
		t.Fatalf("journal still lists %v", out)
	}
}

func TestResetPointsAnInterposedProxyBackAfterACrash(t *testing.T) {
	s := startServer(t)
	server := tcpServer(t, func(c net.Conn) { io.WriteString(c, "server") })
	if _, err := s.AddProxy("svc", server); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	// The run "crashes": its injector never removes the layer.
	if _, err := tp.NewInjector(s.URL(), j).Interpose(t.Context(), "svc", "tag", tagLayer(t)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j2, err := faults.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if n, err := tp.Reset(t.Context(), s.URL(), j2, false); err != nil || n != 1 {
		t.Fatalf("Reset = %d, %v; want 1 fault undone", n, err)
	}
	ps, err := tp.NewInjector(s.URL(), nil).Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ps["svc"].Upstream; got != server {
		t.Fatalf("upstream after reset = %s, want %s", got, server)
	}
}

func TestInterposeOnAnUnknownProxyStartsNothing(t *testing.T) {
	s := startServer(t)
	started := false
	_, err := tp.NewInjector(s.URL(), nil).Interpose(t.Context(), "nope", "tag", faults.LayerFunc(func(string) (string, error) {
		started = true
		return "", nil
	}))
	if err == nil || !strings.Contains(err.Error(), "proxy not found") || started {
		t.Fatalf("err = %v, layer started = %v; want proxy not found and no layer", err, started)
	}
}
