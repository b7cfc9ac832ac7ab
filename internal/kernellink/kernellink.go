// Package kernellink is the kernel reference of the packet faults: a test
// host in a network namespace of its own, reached over a veth pair, where
// nftables drops a share of the TCP packets (`numgen random mod 10000 < N
// drop`, both directions). A relay listening inside the namespace carries
// each connection on to an upstream on the host's loopback, so a link
// through a Link crosses the Linux kernel's TCP under loss exactly where a
// link through a faults/segment Segment crosses gVisor's:
//
//	client ──TCP over veth, nft drops──▶ relay (in the namespace) ──loopback──▶ upstream
//
// It needs root, ip(8) and nft(8); New says why not when one is missing
// (Available). Close deletes the namespace, which takes the veth pair and
// the nftables table with it; New first deletes what a process of ours
// that died left behind (namespaces named after a pid that is gone).
package kernellink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// prefix names every namespace this package makes: prefix + pid + "-" + n.
const prefix = "fallacies-kl-"

// table is the nftables table in the namespace.
const table = "fallacies_loss"

var seq atomic.Uint32

// Link is a namespace with a lossy veth and a relay to one upstream. Make
// one with New; Close it.
type Link struct {
	ns       string
	hostAddr string // the host's end of the veth
	nsAddr   string // the namespace's end, where the relay listens
	hostVeth string // the host's end's name
	upstream string
	ln       net.Listener

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Available reports why a Link cannot be made here, or "" when it can:
// it needs root, ip(8) and nft(8).
func Available() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces and nftables)"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "needs " + tool + " (" + err.Error() + ")"
		}
	}
	return ""
}

// New makes a namespace joined to the host by a veth pair, with no loss
// yet (SetLoss), and a relay in it to upstream (host:port on the host's
// loopback). Addr is where to connect.
func New(upstream string) (*Link, error) {
	if why := Available(); why != "" {
		return nil, errors.New("kernel link: " + why)
	}
	sweep()
	n := seq.Add(1)
	pid := os.Getpid()
	l := &Link{
		ns:       fmt.Sprintf("%s%d-%d", prefix, pid, n),
		upstream: upstream,
		conns:    map[net.Conn]struct{}{},
	}
	// A /30 of 10.213.0.0/16 per link of this process: the third octet
	// from the pid, the fourth from the link's number.
	base := fmt.Sprintf("10.213.%d.%d", pid%256, (n%64)*4)
	l.hostAddr, l.nsAddr = addrPlus(base, 1), addrPlus(base, 2)
	host, peer := fmt.Sprintf("fkl%dh%d", pid%100000, n%100), fmt.Sprintf("fkl%dn%d", pid%100000, n%100)
	l.hostVeth = host
	// gso_max_segs 1: the kernel hands the veth one MSS per packet, so
	// nftables draws its loss per packet, as the segment's wire does
	// (with TSO a dropped buffer would be up to 44 packets).
	steps := [][]string{
		{"ip", "netns", "add", l.ns},
		{"ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", l.ns},
		{"ip", "addr", "add", l.hostAddr + "/30", "dev", host},
		{"ip", "link", "set", host, "up", "gso_max_segs", "1"},
		{"ip", "-n", l.ns, "addr", "add", l.nsAddr + "/30", "dev", peer},
		{"ip", "-n", l.ns, "link", "set", peer, "up", "gso_max_segs", "1"},
		{"ip", "-n", l.ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(nil, s...); err != nil {
			l.deleteNamespace()
			return nil, err
		}
	}
	if err := l.SetLoss(0); err != nil {
		l.deleteNamespace()
		return nil, err
	}
	ln, err := l.listenInside(net.JoinHostPort(l.nsAddr, "0"))
	if err != nil {
		l.deleteNamespace()
		return nil, err
	}
	l.ln = ln
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the relay's address in the namespace: point the client at it.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Namespace is the name of the link's network namespace.
func (l *Link) Namespace() string { return l.ns }

// SetLoss makes nftables drop each TCP packet entering or leaving the
// namespace with probability p (0 to 1, in steps of 0.01%), replacing the
// rules before; the counters start again from zero.
func (l *Link) SetLoss(p float64) error {
	if p < 0 || p > 1 {
		return fmt.Errorf("kernel link: loss %v out of [0, 1]", p)
	}
	n := int(p*10000 + 0.5)
	var rules strings.Builder
	fmt.Fprintf(&rules, "table inet %s\ndelete table inet %s\ntable inet %s {\n", table, table, table)
	for _, chain := range []string{"input", "output"} {
		fmt.Fprintf(&rules, "  chain %s { type filter hook %s priority 0; policy accept;\n", chain, chain)
		fmt.Fprintf(&rules, "    meta l4proto tcp counter comment \"packets\"\n")
		fmt.Fprintf(&rules, "    meta l4proto tcp numgen random mod 10000 < %d counter drop comment \"dropped\"\n  }\n", n)
	}
	rules.WriteString("}\n")
	return run(strings.NewReader(rules.String()), "ip", "netns", "exec", l.ns, "nft", "-f", "-")
}

// Counters are the TCP packets that crossed the namespace's firewall
// (both directions) and those it dropped, since the last SetLoss.
type Counters struct{ Packets, Dropped uint64 }

// Counters reads the nftables counters of the namespace.
func (l *Link) Counters() (Counters, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", l.ns, "nft", "-j", "list", "table", "inet", table)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return Counters{}, fmt.Errorf("kernel link: read counters: %w", err)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		return Counters{}, fmt.Errorf("kernel link: read counters: %w", err)
	}
	var c Counters
	for _, item := range doc.Nftables {
		if item.Rule == nil {
			continue
		}
		for _, e := range item.Rule.Expr {
			var ctr struct {
				Counter *struct{ Packets uint64 } `json:"counter"`
			}
			if json.Unmarshal(e, &ctr) != nil || ctr.Counter == nil {
				continue
			}
			switch item.Rule.Comment {
			case "packets":
				c.Packets += ctr.Counter.Packets
			case "dropped":
				c.Dropped += ctr.Counter.Packets
			}
		}
	}
	return c, nil
}

// Close stops the relay, cuts its connections and deletes the namespace
// with its veth pair and nftables table.
func (l *Link) Close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.ln.Close()
	l.wg.Wait()
	if derr := l.deleteNamespace(); derr != nil {
		return derr
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// deleteNamespace deletes the veth pair (at once: a namespace's devices
// go some time after the namespace) and the namespace, its firewall with
// it.
func (l *Link) deleteNamespace() error {
	if _, err := net.InterfaceByName(l.hostVeth); err == nil {
		if err := run(nil, "ip", "link", "delete", l.hostVeth); err != nil {
			return err
		}
	}
	return run(nil, "ip", "netns", "delete", l.ns)
}

// listenInside opens a TCP listener in the namespace. The socket belongs
// to the namespace it was made in, whichever thread accepts on it; the
// thread that made it entered the namespace and is never returned to the
// Go scheduler (it exits with its goroutine).
func (l *Link) listenInside(addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with this goroutine
		f, err := os.Open("/run/netns/" + l.ns)
		if err != nil {
			ch <- result{err: fmt.Errorf("kernel link: open namespace: %w", err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("kernel link: enter namespace %s: %w", l.ns, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.relay(c)
		}()
	}
}

// relay carries one connection to the upstream and back.
func (l *Link) relay(c net.Conn) {
	up, err := net.Dial("tcp", l.upstream)
	if err != nil {
		c.Close()
		return
	}
	if !l.track(c, up) {
		return
	}
	defer l.untrack(c, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

func (l *Link) track(cs ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		l.conns[c] = struct{}{}
	}
	return true
}

func (l *Link) untrack(cs ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(l.conns, c)
	}
}

// sweep deletes the namespaces a process of ours left behind: those named
// after a pid that no longer runs.
func sweep() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM) {
			continue
		}
		_ = run(nil, "ip", "netns", "delete", e.Name())
	}
}

// run runs a command, with stdin when given, and returns its stderr as
// the error.
func run(stdin io.Reader, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kernel link: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// addrPlus returns the IPv4 address base (a.b.c.d) plus k in its last octet.
func addrPlus(base string, k int) string {
	i := strings.LastIndexByte(base, '.')
	last, _ := strconv.Atoi(base[i+1:])
	return base[:i+1] + strconv.Itoa(last+k)
}
