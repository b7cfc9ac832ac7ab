package kernellink

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/fallacies/fallacies/internal/testenv"
)

// TestKernelLinkLosesPacketsAndCleansUp carries 4 MB to an echo server and
// back through the namespace with nftables dropping 5% of the packets: the
// kernel's TCP repairs every loss (the bytes come back intact), the
// firewall counted about 5% of the packets as dropped, and Close leaves no
// namespace and no veth behind.
func TestKernelLinkLosesPacketsAndCleansUp(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip("kernel reference unavailable: " + why)
	}
	l, err := New(testenv.EchoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	if err := l.SetLoss(0.05); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", l.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	want := make([]byte, 4<<20)
	for i := range want {
		want[i] = byte(rand.N(256))
	}
	go func() {
		c.Write(want)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back %d of %d bytes: %v", len(got), len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(want))
	}
	ctr, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	share := float64(ctr.Dropped) / float64(ctr.Packets)
	t.Logf("%d packets, %d dropped (%.2f%%)", ctr.Packets, ctr.Dropped, 100*share)
	// The drops are the network's, not the sender's own: its TCP learns of
	// them from the receiver and sends the segments again (a drop on the
	// sender's output hook is refused to its TCP, which sends the segment
	// anew without counting a retransmission).
	tcp, err := l.TCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test host's TCP: %d retransmitted segments, %d RTO expiries", tcp.Retransmits, tcp.Timeouts)
	if tcp.Retransmits < ctr.Dropped/4 {
		t.Errorf("the test host retransmitted %d segments for %d dropped packets: want about half of them at least", tcp.Retransmits, ctr.Dropped)
	}
	// 4 MB each way is about 5,800 full-sized packets: with TSO on, a
	// dropped buffer would be many packets and the count far lower.
	if ctr.Packets < 5000 || share < 0.035 || share > 0.065 {
		t.Fatalf("counters %+v: want thousands of packets, about 5%% dropped", ctr)
	}

	// No loss: the counters start again and nothing is dropped. The
	// connection's last packets (a delayed ACK, the FINs) may still cross
	// the router after the reset, so a few packets are counted, not zero.
	if err := l.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	if after, err := l.Counters(); err != nil || after.Dropped != 0 || after.Packets > 20 {
		t.Fatalf("after SetLoss(0): %+v, %v; want the counters started again (a few packets at most, none dropped)", after, err)
	}

	ns := l.Namespace()
	closed = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ns, ns + "-router"} {
		if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
			t.Fatalf("namespace %s still there after Close: %v", name, err)
		}
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if len(i.Name) > 3 && i.Name[:3] == "fkl" {
			t.Errorf("veth %s still there after Close", i.Name)
		}
	}
}

// TestSweepDeletesNamespacesOfDeadProcesses: a namespace named after a
// pid that no longer runs (a run killed with SIGKILL) is deleted by the
// next New; one of a live process is left alone.
func TestSweepDeletesNamespacesOfDeadProcesses(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip("kernel reference unavailable: " + why)
	}
	// A pid above the kernel's pid_max cannot be running.
	dead := prefix + "4194305-1"
	if err := run(nil, "ip", "netns", "add", dead); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run(nil, "ip", "netns", "delete", dead) })
	l, err := New(testenv.EchoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat("/run/netns/" + dead); !os.IsNotExist(err) {
		t.Fatalf("namespace %s of a dead process still there: %v", dead, err)
	}
	if _, err := os.Stat("/run/netns/" + l.Namespace()); err != nil {
		t.Fatalf("the live link's namespace: %v", err)
	}
}
