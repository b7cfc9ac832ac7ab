package toxiproxy

import (
	"net"
	"reflect"
	"sync"
	"time"
	"unsafe"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// ResetPeerType is the Toxiproxy toxic type of the testbed's reset_peer:
// a custom toxic of the embedded server that aborts a connection with a
// TCP RST toward both peers, whether the connection was open before the
// toxic came or not, and that hears its removal at any moment.
//
// Toxiproxy's own reset_peer toxic (v2.12.0) does neither: it sets
// SO_LINGER 0 (what makes a close send RST rather than FIN) only on the
// connections that open while it is on, so the long-lived gRPC and NATS
// connections open before the fault were closed with FIN; and once bytes
// came it sleeps through its timeout without listening for its removal,
// so taking the fault off waited for the timeout.
const ResetPeerType = "reset_peer_rst"

func init() {
	toxics.Register(ResetPeerType, new(ResetPeerToxic))
}

// ResetPeerToxic resets the connections of its stream: on each connection
// it is on (its toxicity draws which), the first bytes it relays start a
// timer of Timeout milliseconds, the bytes passing on unchanged meanwhile;
// when the timer fires the connection is aborted, a TCP RST sent to the
// client and to the upstream. A connection open before the toxic came is
// timed from its first bytes after that; one that carries no bytes on the
// toxic's stream is never reset. Removing the toxic stops every timer at
// once, and the connections not yet reset carry on.
//
// Toxiproxy gives a toxic channels, not the connection, so the abort goes
// through the proxy's connection list (proxyConns): every connection of
// the proxy gets SO_LINGER 0, then the toxic closes its stub and Toxiproxy
// closes the connection's two sockets, each with an RST. The other
// connections of the proxy keep SO_LINGER 0 until the toxic is removed
// (Cleanup puts the default back): one of them closing meanwhile for
// another reason closes with RST too.
type ResetPeerToxic struct {
	// Timeout in milliseconds, from a connection's first bytes to its reset.
	Timeout int64 `json:"timeout"`

	mu       sync.Mutex
	lingered map[net.Conn]bool // the sockets this toxic set SO_LINGER 0 on
}

// resetState is one connection's timer: when it resets, zero before its
// first bytes. It survives the toxic's Pipe being interrupted and run
// again (another toxic added behind it, an update).
type resetState struct{ due time.Time }

// NewState implements toxics.StatefulToxic.
func (t *ResetPeerToxic) NewState() any { return new(resetState) }

// Pipe relays chunks from stub.Input to stub.Output until the connection's
// timer fires, then aborts the connection. It returns on an interrupt at
// any moment (after passing on a chunk it holds) and closes the stub at
// the end of the stream, as the ToxicStub contract requires.
func (t *ResetPeerToxic) Pipe(stub *toxics.ToxicStub) {
	if stub.Closed() {
		return
	}
	st, _ := stub.State.(*resetState)
	if st == nil {
		st = new(resetState)
		stub.State = st
	}
	timeout := time.Duration(t.Timeout) * time.Millisecond
	var fire <-chan time.Time
	if !st.due.IsZero() {
		timer := time.NewTimer(time.Until(st.due))
		defer timer.Stop()
		fire = timer.C
	}
	for {
		select {
		case <-stub.Interrupt:
			return
		case <-fire:
			t.abort(stub)
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if fire == nil {
				st.due = time.Now().Add(timeout)
				timer := time.NewTimer(timeout)
				defer timer.Stop()
				fire = timer.C
			}
			select {
			case stub.Output <- c:
			case <-stub.Interrupt:
				// Never drop data: hand the chunk on, then stop.
				stub.Output <- c
				return
			}
		}
	}
}

// abort resets the connection of stub: SO_LINGER 0 on the proxy's
// sockets, then the stub closed, so that Toxiproxy closes the
// connection's sockets (each close sending an RST). It then drains the
// stub's input until the stream ends, so that the toxics before it are
// not left blocked: a closed stub hears no interrupt.
func (t *ResetPeerToxic) abort(stub *toxics.ToxicStub) {
	p, interrupted := proxyOf(t, stub.Interrupt)
	if interrupted {
		return // removed (or another toxic added: Pipe runs again, and fires at once)
	}
	if p != nil {
		t.linger(proxyConns(p))
	}
	// No proxy found (removed meanwhile): the connection closes with FIN,
	// as Toxiproxy's own toxic would close it.
	select {
	case <-stub.Interrupt:
		return
	default:
	}
	stub.Close()
	for c := range stub.Input {
		_ = c // the connection is reset: what was in flight is lost
	}
}

// linger sets SO_LINGER 0 on conns, the proxy's open sockets, and
// remembers them in place of those it remembered: a socket no longer in
// the proxy's list is closed (Toxiproxy drops it from the list once it
// closed it), so the set stays as small as the proxy's connections.
func (t *ResetPeerToxic) linger(conns []net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := make(map[net.Conn]bool, len(conns))
	for _, c := range conns {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			continue
		}
		if t.lingered[c] || tc.SetLinger(0) == nil {
			now[c] = true
		}
	}
	t.lingered = now
}

// Cleanup implements toxics.CleanupToxic: Toxiproxy calls it on each
// connection's stub as it removes the toxic. The sockets the toxic set
// SO_LINGER 0 on get the default back (a close sends FIN again); those
// already closed answer an error, ignored.
func (t *ResetPeerToxic) Cleanup(*toxics.ToxicStub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.lingered {
		_ = c.(*net.TCPConn).SetLinger(-1)
	}
	t.lingered = nil
}

// servers are the embedded servers running in this process, so that a
// toxic finds its proxy (proxyOf).
var servers = struct {
	sync.Mutex
	set map[*Server]bool
}{set: map[*Server]bool{}}

func registerServer(s *Server) {
	servers.Lock()
	defer servers.Unlock()
	servers.set[s] = true
}

func unregisterServer(s *Server) {
	servers.Lock()
	defer servers.Unlock()
	delete(servers.set, s)
}

// proxyOf returns the proxy toxic t is on, nil if none is found, or
// interrupted if interrupt fired first (the interrupt is then taken). The
// search takes the proxies' toxic-collection locks, which Toxiproxy holds
// while it interrupts a stub (to add, update or remove a toxic), so it
// runs beside the caller's stub, which keeps hearing interrupt.
func proxyOf(t toxics.Toxic, interrupt <-chan struct{}) (p *toxiproxy.Proxy, interrupted bool) {
	found := make(chan *toxiproxy.Proxy, 1)
	go func() {
		servers.Lock()
		list := make([]*Server, 0, len(servers.set))
		for s := range servers.set {
			list = append(list, s)
		}
		servers.Unlock()
		for _, s := range list {
			for _, p := range s.api.Collection.Proxies() {
				for _, tx := range p.Toxics.GetToxicArray() {
					if w, ok := tx.(*toxics.ToxicWrapper); ok && w.Toxic == t {
						found <- p
						return
					}
				}
			}
		}
		found <- nil
	}()
	select {
	case p := <-found:
		return p, false
	case <-interrupt:
		return nil, true
	}
}

// connListField and connMapField locate a proxy's connection list:
// Toxiproxy keeps every open connection's two sockets in
// Proxy.connections.list (keyed by the client's address and "upstream"
// or "downstream") but exports neither field. connsReadable says the
// fields have the types proxyConns reads them as, checked once against
// the Toxiproxy built in (TestProxyConnsReadsToxiproxy fails otherwise).
var (
	connListField, connMapField reflect.StructField
	connsReadable               = func() bool {
		var ok1, ok2 bool
		connListField, ok1 = reflect.TypeFor[toxiproxy.Proxy]().FieldByName("connections")
		connMapField, ok2 = reflect.TypeFor[toxiproxy.ConnectionList]().FieldByName("list")
		return ok1 && ok2 &&
			connListField.Type == reflect.TypeFor[toxiproxy.ConnectionList]() &&
			connMapField.Type == reflect.TypeFor[map[string]net.Conn]()
	}()
)

// proxyConns returns the sockets of every connection open through p,
// both the client's and the upstream's; none when this Toxiproxy keeps
// them otherwise than connsReadable checked.
func proxyConns(p *toxiproxy.Proxy) []net.Conn {
	if !connsReadable {
		return nil
	}
	list := (*toxiproxy.ConnectionList)(unsafe.Add(unsafe.Pointer(p), connListField.Offset))
	list.Lock()
	defer list.Unlock()
	m := *(*map[string]net.Conn)(unsafe.Add(unsafe.Pointer(list), connMapField.Offset))
	out := make([]net.Conn, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return out
}
