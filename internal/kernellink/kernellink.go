// Package kernellink is the kernel reference of the packet faults: a test
// host in a network namespace of its own, reached through a second
// namespace that routes between it and the host, where nftables drops a
// share of the forwarded TCP packets (`numgen random mod 10000 < N drop`,
// both directions). A relay listening inside the host namespace carries
// each connection on to an upstream on the host's loopback, so a link
// through a Link crosses the Linux kernel's TCP under loss exactly where a
// link through a faults/segment Segment crosses gVisor's:
//
//	client ──veth──▶ router (nft drops, forward) ──veth──▶ relay (test host) ──loopback──▶ upstream
//
// The drops are made in a router, not at either end: a packet that the
// sender's own output hook drops is refused to its TCP, which sends it
// again at once, without loss recovery (an earlier version did so, and its
// kernel retransmitted 6-30 segments for 450-650 drops at 5%).
//
// It needs root, ip(8) and nft(8); New says why not when one is missing
// (Available). Close deletes the veth pairs and both namespaces, the
// nftables table with them; New first deletes what a process of ours
// that died left behind (namespaces named after a pid that is gone).
package kernellink

import (
	"bytes"
	"context"
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
	"syscall"

	"golang.org/x/sys/unix"
)

// prefix names every namespace this package makes: prefix + pid + "-" + n.
const prefix = "fallacies-kl-"

// congestionControl is the relay's: Linux's own default, cubic, whatever
// the host chose (this machine's is bbr). A namespace other than the
// host's may only make the host's allowed ones its default, so the relay
// sets it on its listener, whose connections inherit it.
const congestionControl = "cubic"

// table is the nftables table in the namespace.
const table = "fallacies_loss"

var seq atomic.Uint32

// Link is a namespace with a lossy veth and a relay to one upstream. Make
// one with New; Close it.
type Link struct {
	ns       string // the test host's namespace, where the relay listens
	router   string // the namespace between it and the host, where nft drops
	nsAddr   string // the test host's address, where the relay listens
	hostVeth string // the host's end of the veth to the router
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

// New makes the test host's namespace and a router namespace joining it
// to the host, with no loss yet (SetLoss), and a relay in the test host to
// upstream (host:port on the host's loopback). Addr is where to connect.
func New(upstream string) (*Link, error) {
	if why := Available(); why != "" {
		return nil, errors.New("kernel link: " + why)
	}
	sweep()
	n := seq.Add(1)
	pid := os.Getpid()
	l := &Link{
		ns:       fmt.Sprintf("%s%d-%d", prefix, pid, n),
		router:   fmt.Sprintf("%s%d-%d-router", prefix, pid, n),
		upstream: upstream,
		conns:    map[net.Conn]struct{}{},
	}
	// Two /30s of 10.213.0.0/16 per link of this process, the third octet
	// from the pid, the fourth from the link's number: host-router and
	// router-test host.
	base := fmt.Sprintf("10.213.%d.%d", pid%256, (n%32)*8)
	hostAddr, routerOut, routerIn := addrPlus(base, 1), addrPlus(base, 2), addrPlus(base, 5)
	l.nsAddr = addrPlus(base, 6)
	name := func(end string) string { return fmt.Sprintf("fkl%d%s%d", pid%100000, end, n%100) }
	host, routerHost, routerNS, nsEnd := name("h"), name("a"), name("b"), name("n")
	l.hostVeth = host
	// gso_max_segs 1: the kernel hands each veth one MSS per packet, so
	// nftables draws its loss per packet, as the segment's wire does
	// (with TSO a dropped buffer would be up to 44 packets).
	steps := [][]string{
		{"ip", "netns", "add", l.router},
		{"ip", "netns", "add", l.ns},
		{"ip", "link", "add", host, "type", "veth", "peer", "name", routerHost, "netns", l.router},
		{"ip", "-n", l.router, "link", "add", routerNS, "type", "veth", "peer", "name", nsEnd, "netns", l.ns},
		{"ip", "addr", "add", hostAddr + "/30", "dev", host},
		{"ip", "link", "set", host, "up", "gso_max_segs", "1"},
		{"ip", "-n", l.router, "addr", "add", routerOut + "/30", "dev", routerHost},
		{"ip", "-n", l.router, "link", "set", routerHost, "up", "gso_max_segs", "1"},
		{"ip", "-n", l.router, "addr", "add", routerIn + "/30", "dev", routerNS},
		{"ip", "-n", l.router, "link", "set", routerNS, "up", "gso_max_segs", "1"},
		{"ip", "netns", "exec", l.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"ip", "-n", l.ns, "addr", "add", l.nsAddr + "/30", "dev", nsEnd},
		{"ip", "-n", l.ns, "link", "set", nsEnd, "up", "gso_max_segs", "1"},
		{"ip", "-n", l.ns, "link", "set", "lo", "up"},
		{"ip", "-n", l.ns, "route", "add", "default", "via", routerIn},
		// The route goes with the host's veth.
		{"ip", "route", "add", l.nsAddr + "/32", "via", routerOut, "dev", host},
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

// SetLoss makes the router drop each TCP packet it forwards, either way,
// with probability p (0 to 1, in steps of 0.01%), replacing the rules
// before; the counters start again from zero.
func (l *Link) SetLoss(p float64) error {
	if p < 0 || p > 1 {
		return fmt.Errorf("kernel link: loss %v out of [0, 1]", p)
	}
	n := int(p*10000 + 0.5)
	var rules strings.Builder
	fmt.Fprintf(&rules, "table inet %s\ndelete table inet %s\ntable inet %s {\n", table, table, table)
	rules.WriteString("  chain forward { type filter hook forward priority 0; policy accept;\n")
	rules.WriteString("    meta l4proto tcp counter comment \"packets\"\n")
	fmt.Fprintf(&rules, "    meta l4proto tcp numgen random mod 10000 < %d counter drop comment \"dropped\"\n  }\n", n)
	rules.WriteString("}\n")
	return run(strings.NewReader(rules.String()), "ip", "netns", "exec", l.router, "nft", "-f", "-")
}

// Counters are the TCP packets the router forwarded or dropped (both
// directions), and those it dropped, since the last SetLoss.
type Counters struct{ Packets, Dropped uint64 }

// Counters reads the nftables counters of the router.
func (l *Link) Counters() (Counters, error) {
	var out bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", l.router, "nft", "-j", "list", "table", "inet", table)
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

// TCP are the TCP figures of the test host's kernel since New: the
// segments it sent again and its retransmission timeouts (RTO expiries).
// The relay's side of every connection is there, so for a transfer from
// the upstream these are the sender's.
type TCP struct{ Retransmits, Timeouts uint64 }

// TCP reads the test host's TCP counters (TcpRetransSegs of
// /proc/net/snmp, TcpExtTCPTimeouts of /proc/net/netstat, in its
// namespace).
func (l *Link) TCP() (TCP, error) {
	var t TCP
	for _, f := range []struct {
		file, table, field string
		to                 *uint64
	}{
		{"/proc/net/snmp", "Tcp:", "RetransSegs", &t.Retransmits},
		{"/proc/net/netstat", "TcpExt:", "TCPTimeouts", &t.Timeouts},
	} {
		var out bytes.Buffer
		cmd := exec.Command("ip", "netns", "exec", l.ns, "cat", f.file)
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return TCP{}, fmt.Errorf("kernel link: read %s: %w", f.file, err)
		}
		v, ok := procField(out.String(), f.table, f.field)
		if !ok {
			return TCP{}, fmt.Errorf("kernel link: no %s%s in %s", f.table, f.field, f.file)
		}
		*f.to = v
	}
	return t, nil
}

// procField finds a counter in the text of /proc/net/snmp or netstat:
// pairs of lines, "Table: name name …" then "Table: value value …".
func procField(text, table, field string) (uint64, bool) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != table || len(values) != len(names) || values[0] != table {
			continue
		}
		for j, name := range names {
			if name == field {
				v, err := strconv.ParseUint(values[j], 10, 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}

// Close stops the relay, cuts its connections and deletes both
// namespaces with their veth pairs and nftables table.
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

// deleteNamespace deletes the veth pairs (at once: a namespace's devices
// go some time after the namespace) and both namespaces, the router's
// firewall with them. Deleting the host's veth takes its route.
func (l *Link) deleteNamespace() error {
	var errs []error
	if _, err := net.InterfaceByName(l.hostVeth); err == nil {
		errs = append(errs, run(nil, "ip", "link", "delete", l.hostVeth))
	}
	for _, ns := range []string{l.ns, l.router} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			errs = append(errs, run(nil, "ip", "netns", "delete", ns))
		}
	}
	return errors.Join(errs...)
}

// listenInside opens a TCP listener in the namespace, whose connections
// use congestionControl. The socket belongs
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
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, congestionControl)
			}); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("kernel link: congestion control %s: %w", congestionControl, serr)
			}
			return nil
		}}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
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
