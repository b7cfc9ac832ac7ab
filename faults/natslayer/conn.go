package natslayer

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is each stream's read buffer: a control line (nats-server's
	// max_control_line is 4 KiB) and most payloads fit, and are relayed
	// from it without a copy.
	bufSize = 64 << 10
	// maxPayload bounds a payload the layer accepts (nats-server's largest
	// max_payload is 64 MiB); a larger count is a framing it cannot follow.
	maxPayload = 64 << 20
	// maxAcks bounds the deliveries a connection remembers the subject of,
	// per generation, for nats-drop-ack; two generations are kept.
	maxAcks = 1 << 16
)

// ackPrefix starts the reply subject of a JetStream delivery: the consumer
// acknowledges by publishing to it.
const ackPrefix = "$JS.ACK."

// conn is one client connection and its connection to the server.
type conn struct {
	l              *Layer
	client, server net.Conn
	toServer       *stream
	toClient       *stream

	infoSeen  chan struct{} // closed once the server's first INFO went on (or the stream turned opaque)
	infoOnce  sync.Once
	opaque    atomic.Bool // relay bytes untouched from now on
	countOnce sync.Once

	ackMu         sync.Mutex
	acks, oldAcks map[string]string // reply subject → subject of deliveries awaiting an ack
	closeOnce     sync.Once
}

func newConn(l *Layer, client, server net.Conn) *conn {
	c := &conn{l: l, client: client, server: server, infoSeen: make(chan struct{}), acks: map[string]string{}}
	c.toServer = newStream(c, ToServer, client, server)
	c.toClient = newStream(c, ToClient, server, client)
	return c
}

// run relays both streams until one ends, then closes both connections.
func (c *conn) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	for _, s := range []*stream{c.toServer, c.toClient} {
		go func() {
			defer wg.Done()
			s.run()
			c.close()
		}()
	}
	wg.Wait()
	c.toServer.stopScheduler()
	c.toClient.stopScheduler()
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

// goOpaque makes both streams relay bytes untouched from now on.
func (c *conn) goOpaque() {
	c.opaque.Store(true)
	c.countOnce.Do(func() { c.l.opaque.Add(1) })
	c.infoOnce.Do(func() { close(c.infoSeen) })
}

// rememberAck notes the subject of a delivery the client will acknowledge
// on reply.
func (c *conn) rememberAck(reply, subject string) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if len(c.acks) >= maxAcks {
		c.oldAcks, c.acks = c.acks, map[string]string{}
	}
	c.acks[reply] = subject
}

// ackedSubject returns the subject of the delivery acknowledged on reply,
// forgetting it, or "" when it was not noted.
func (c *conn) ackedSubject(reply string) string {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if s, ok := c.acks[reply]; ok {
		delete(c.acks, reply)
		return s
	}
	if s, ok := c.oldAcks[reply]; ok {
		delete(c.oldAcks, reply)
		return s
	}
	return ""
}

// stream is one way of a connection: it reads operations from src and
// writes them, faulted or not, to dst.
type stream struct {
	c    *conn
	flow Flow
	src  net.Conn
	dst  net.Conn
	r    *bufio.Reader
	line []byte // the control line being handled, copied out of r

	wmu sync.Mutex // guards w: the stream and its scheduler both write
	w   *bufio.Writer

	states map[*rule]*ruleState // per rule, read and written by run only

	sched *scheduler // of held messages, started with the first one
}

// ruleState is what a stream knows of one rule: whether its connection is
// among the rule's toxicity, and its held messages.
type ruleState struct {
	affected bool
	lastOut  time.Time    // the release time of the message a delay rule held last
	passed   atomic.Int64 // messages of the rule's subject not held: they overtake held ones
}

func newStream(c *conn, flow Flow, src, dst net.Conn) *stream {
	return &stream{c: c, flow: flow, src: src, dst: dst, r: bufio.NewReaderSize(src, bufSize),
		w: bufio.NewWriterSize(dst, bufSize), states: map[*rule]*ruleState{}}
}

// run relays operations until src ends or dst fails.
func (s *stream) run() {
	if err := s.start(); err != nil {
		return
	}
	for !s.c.opaque.Load() {
		if s.r.Buffered() == 0 {
			if err := s.flush(); err != nil {
				return
			}
		}
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				s.passOpaque(line)
			}
			return
		}
		s.line = append(s.line[:0], line...)
		if err := s.op(); err != nil {
			return
		}
	}
	s.relayRaw()
}

// start waits, on the client's stream, until the server's INFO went on,
// so that a connection turning to TLS is known before the client's first
// byte is read; a client that speaks before it (TLS first) is opaque. On
// the server's stream a first operation other than INFO is opaque.
func (s *stream) start() error {
	if s.flow == ToServer {
		if _, err := s.r.Peek(1); err != nil {
			return err
		}
		select {
		case <-s.c.infoSeen:
		default:
			s.c.goOpaque()
		}
		return nil
	}
	b, err := s.r.Peek(4)
	if err != nil {
		return err
	}
	if !opIs(b, "INFO") {
		s.c.goOpaque()
	}
	return nil
}

// passOpaque writes what was read and turns the connection opaque: the
// rest is relayed untouched.
func (s *stream) passOpaque(pending []byte) {
	s.c.goOpaque()
	s.write(pending)
}

// relayRaw copies the rest of src to dst untouched.
func (s *stream) relayRaw() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w.Flush() == nil {
		io.Copy(s.dst, s.r)
	}
}

// op handles the operation whose control line is s.line.
func (s *stream) op() error {
	verb, args := splitOp(s.line)
	switch {
	case s.flow == ToClient && (opIs(verb, "MSG") || opIs(verb, "HMSG")):
		return s.message(args, opIs(verb, "HMSG"), 2)
	case s.flow == ToServer && (opIs(verb, "PUB") || opIs(verb, "HPUB")):
		return s.message(args, opIs(verb, "HPUB"), 1)
	case s.flow == ToClient && opIs(verb, "INFO"):
		return s.info(args)
	case opIs(verb, "PING"), opIs(verb, "PONG"), opIs(verb, "+OK"), opIs(verb, "-ERR"),
		opIs(verb, "CONNECT"), opIs(verb, "SUB"), opIs(verb, "UNSUB"), len(verb) == 0:
		return s.write(s.line)
	}
	s.passOpaque(s.line) // an operation the layer does not know may carry a payload
	return nil
}

// message handles a MSG, HMSG, PUB or HPUB whose arguments are args:
// subject, the sid (MSG, HMSG: skip 2 with the subject), an optional reply
// subject, the header size (HMSG, HPUB) and the total size.
func (s *stream) message(args [][]byte, headers bool, skip int) error {
	fixed := skip + 1 // subject [sid] size
	if headers {
		fixed++
	}
	if len(args) != fixed && len(args) != fixed+1 {
		s.passOpaque(s.line)
		return nil
	}
	size, err := strconv.Atoi(string(args[len(args)-1]))
	if err != nil || size < 0 || size > maxPayload {
		s.passOpaque(s.line)
		return nil
	}
	var reply []byte
	if len(args) == fixed+1 {
		reply = args[skip]
	}
	rules := s.c.l.currentRules()
	if len(rules) == 0 {
		return s.pass(size)
	}
	subject := string(args[0])
	if s.flow == ToServer && bytes.HasPrefix(args[0], []byte(ackPrefix)) {
		return s.ack(rules, subject, size)
	}
	if s.flow == ToClient && bytes.HasPrefix(reply, []byte(ackPrefix)) {
		s.noteDelivery(rules, string(reply), subject)
	}
	for _, r := range rules {
		if !r.matches(s.flow, subject) || !s.state(r).affected {
			continue
		}
		if !r.fires() {
			continue
		}
		return s.fault(r, size)
	}
	for _, r := range rules {
		if r.Kind == Reorder && r.matches(s.flow, subject) {
			s.state(r).passed.Add(1)
		}
	}
	return s.pass(size)
}

// noteDelivery remembers the subject of a JetStream delivery when a
// drop-ack rule may have to recognise its ack.
func (s *stream) noteDelivery(rules []*rule, reply, subject string) {
	for _, r := range rules {
		if r.Kind == DropAck && SubjectMatches(r.Subject, subject) {
			s.c.rememberAck(reply, subject)
			return
		}
	}
}

// ack handles a client's publish to a $JS.ACK. subject: a positive ack
// (+ACK or an empty body) of a delivery a drop-ack rule matches may be
// dropped. The ack's subject stands for the delivery's when the delivery
// was not noted.
func (s *stream) ack(rules []*rule, ackSubject string, size int) error {
	body, err := s.peekPayload(size)
	if err != nil {
		return err
	}
	if body == nil || !isPositiveAck(body[:size]) {
		return s.pass(size)
	}
	subject := s.c.ackedSubject(ackSubject)
	if subject == "" {
		subject = ackSubject
	}
	for _, r := range rules {
		if r.Kind != DropAck || !SubjectMatches(r.Subject, subject) || !s.state(r).affected {
			continue
		}
		if r.fires() {
			_, err := s.r.Discard(size + 2)
			return err
		}
		break
	}
	return s.pass(size)
}

func isPositiveAck(body []byte) bool {
	return len(body) == 0 || bytes.Equal(body, []byte("+ACK"))
}

// state returns the stream's state of rule r, drawing its toxicity the
// first time.
func (s *stream) state(r *rule) *ruleState {
	st, ok := s.states[r]
	if !ok {
		st = &ruleState{affected: r.Toxicity >= 1 || rand.Float64() < r.Toxicity}
		s.states[r] = st
	}
	return st
}

// fault applies rule r to the message whose control line is s.line and
// whose payload of size bytes (and CRLF) is next in r.
func (s *stream) fault(r *rule, size int) error {
	switch r.Kind {
	case Drop:
		_, err := s.r.Discard(size + 2)
		return err
	case Duplicate:
		frame, err := s.frame(size)
		if err != nil {
			return err
		}
		if err := s.write(frame); err != nil {
			return err
		}
		return s.write(frame)
	case Delay:
		frame, err := s.frame(size)
		if err != nil {
			return err
		}
		st := s.state(r)
		at := time.Now().Add(r.delay())
		if at.Before(st.lastOut) {
			at = st.lastOut
		}
		st.lastOut = at
		s.hold(held{at: at, frame: frame})
		return nil
	case Reorder:
		frame, err := s.frame(size)
		if err != nil {
			return err
		}
		st := s.state(r)
		s.hold(held{at: time.Now().Add(r.Hold), frame: frame, rule: r, state: st, passedAt: st.passed.Load()})
		return nil
	}
	return s.pass(size)
}

// peekPayload returns the payload of size bytes and its CRLF from the
// read buffer without consuming them, or nil when they do not fit in it.
func (s *stream) peekPayload(size int) ([]byte, error) {
	if size+2 > s.r.Size() {
		return nil, nil
	}
	b, err := s.r.Peek(size + 2)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// pass writes the message through: its control line, then its payload.
func (s *stream) pass(size int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.w.Write(s.line); err != nil {
		return err
	}
	if size+2 <= s.r.Size() {
		b, err := s.r.Peek(size + 2)
		if err != nil {
			return err
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			return s.desync(b)
		}
		if _, err := s.w.Write(b); err != nil {
			return err
		}
		_, err = s.r.Discard(size + 2)
		return err
	}
	_, err := io.CopyN(s.w, s.r, int64(size)+2)
	return err
}

// desync relays b and the rest untouched: the payload did not end where
// its size said, so the layer lost the framing. s.wmu is held.
func (s *stream) desync(b []byte) error {
	s.c.goOpaque()
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	_, err := s.r.Discard(len(b))
	return err
}

// frame reads the whole message, its control line and payload, into a new
// slice.
func (s *stream) frame(size int) ([]byte, error) {
	f := make([]byte, len(s.line)+size+2)
	copy(f, s.line)
	if _, err := io.ReadFull(s.r, f[len(s.line):]); err != nil {
		return nil, err
	}
	return f, nil
}

// write writes b whole.
func (s *stream) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.w.Write(b)
	return err
}

func (s *stream) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.w.Flush()
}

// info relays the server's INFO without the addresses of other servers
// (connect_urls, ws_connect_urls), which a client would reconnect to past
// the layer, and turns the connection opaque when it goes to TLS.
func (s *stream) info(args [][]byte) error {
	defer s.c.infoOnce.Do(func() { close(s.c.infoSeen) })
	if len(args) != 1 {
		return s.write(s.line)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(args[0], &fields); err != nil {
		s.passOpaque(s.line)
		return nil
	}
	tls := string(fields["tls_required"]) == "true"
	_, urls := fields["connect_urls"]
	_, ws := fields["ws_connect_urls"]
	line := s.line
	if urls || ws {
		delete(fields, "connect_urls")
		delete(fields, "ws_connect_urls")
		b, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		line = append(append([]byte("INFO "), b...), '\r', '\n')
	}
	if tls {
		s.c.goOpaque()
	}
	if err := s.write(line); err != nil {
		return err
	}
	if tls {
		return s.flush()
	}
	return nil
}

// splitOp splits a control line into its operation and its arguments,
// separated by spaces or tabs; INFO and CONNECT keep their JSON whole.
func splitOp(line []byte) (verb []byte, args [][]byte) {
	line = bytes.TrimRight(line, "\r\n")
	line = bytes.TrimLeft(line, " \t")
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return line, nil
	}
	verb, rest := line[:i], bytes.TrimLeft(line[i:], " \t")
	if opIs(verb, "INFO") || opIs(verb, "CONNECT") || opIs(verb, "-ERR") {
		return verb, [][]byte{rest}
	}
	return verb, bytes.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' })
}

// opIs reports whether b starts with op, in any case; b is a whole verb,
// or a peek at the stream's first bytes (len(b) == len(op)).
func opIs(b []byte, op string) bool {
	return len(b) == len(op) && bytes.EqualFold(b, []byte(op))
}

// held is a message the stream holds until at.
type held struct {
	at       time.Time
	seq      uint64 // order of holding, for equal times
	frame    []byte
	rule     *rule      // a reorder rule, whose overtaken it counts; nil for a delay
	state    *ruleState // that rule's state on this stream
	passedAt int64      // state.passed when it was held
}

// hold hands a message to the stream's scheduler, starting it if needed.
func (s *stream) hold(h held) {
	if s.sched == nil {
		s.sched = newScheduler(s)
	}
	s.sched.add(h)
}

func (s *stream) stopScheduler() {
	if s.sched != nil {
		s.sched.stop()
	}
}

// scheduler writes held messages at their time.
type scheduler struct {
	s    *stream
	mu   sync.Mutex
	q    heldQueue
	seq  uint64
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func newScheduler(s *stream) *scheduler {
	sc := &scheduler{s: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
	sc.wg.Add(1)
	go sc.run()
	return sc
}

func (sc *scheduler) add(h held) {
	sc.mu.Lock()
	sc.seq++
	h.seq = sc.seq
	heap.Push(&sc.q, h)
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

func (sc *scheduler) stop() {
	close(sc.done)
	sc.wg.Wait()
}

func (sc *scheduler) run() {
	defer sc.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		sc.mu.Lock()
		var due []held
		for len(sc.q) > 0 && !sc.q[0].at.After(time.Now()) {
			due = append(due, heap.Pop(&sc.q).(held))
		}
		var next time.Duration = time.Hour
		if len(sc.q) > 0 {
			next = time.Until(sc.q[0].at)
		}
		sc.mu.Unlock()
		if len(due) > 0 {
			sc.release(due)
		}
		t.Reset(next)
		select {
		case <-t.C:
		case <-sc.wake:
		case <-sc.done:
			return
		}
	}
}

// release writes due messages in order and flushes them.
func (sc *scheduler) release(due []held) {
	s := sc.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, h := range due {
		if h.rule != nil {
			h.rule.overtaken.Add(h.state.passed.Load() - h.passedAt)
		}
		if _, err := s.w.Write(h.frame); err != nil {
			return
		}
	}
	s.w.Flush()
}

// heldQueue is a min-heap of held messages by time, then by order held.
type heldQueue []held

func (q heldQueue) Len() int { return len(q) }
func (q heldQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q heldQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *heldQueue) Push(x any)   { *q = append(*q, x.(held)) }
func (q *heldQueue) Pop() any {
	old := *q
	h := old[len(old)-1]
	*q = old[:len(old)-1]
	return h
}
