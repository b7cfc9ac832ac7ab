package grpclayer

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// Kind is what a rule does to the calls it picks.
type Kind string

// Rule kinds.
const (
	// Error answers with a status (a Trailers-Only response) instead of
	// forwarding the call: the server never sees it. With Attempts, which
	// needs the call's whole first message, the headers wait while the
	// message's frames are already read; if the client wrote them apart,
	// the server sees the headers and the message but for its last frame,
	// then a reset: a unary handler never runs.
	Error Kind = "grpc-error"
	// Delay forwards the call and holds its response for Latency ± Jitter
	// (drawn once per call), from the response's first frame.
	Delay Kind = "grpc-delay"
	// DropResponse forwards the call, lets the server execute it, and
	// swallows the response: the client's deadline runs out.
	DropResponse Kind = "grpc-drop-response"
	// Abort forwards the call and resets the stream (RST_STREAM) in the
	// middle of the response: the headers and half of the first DATA frame
	// reach the client, then the stream is cut, on both sides.
	Abort Kind = "grpc-abort"
)

// Rule is one call-level fault on the layer's link.
type Rule struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Method is the full method name, "payment.v1.PaymentService/Charge"
	// (a leading slash is accepted); empty matches every method.
	Method string `json:"method,omitempty"`
	// Probability picks the calls (or with Attempts the logical requests)
	// the rule acts on, 0 < p <= 1; 0 is taken as 1.
	Probability float64 `json:"probability,omitempty"`
	// Code and Message are the status Error answers with.
	Code    codes.Code `json:"code,omitempty"`
	Message string     `json:"message,omitempty"`
	// Attempts, when above 0, makes Error, DropResponse and Abort act only
	// on the first Attempts attempts of each logical request. A logical
	// request is keyed by its method and the bytes of its first request
	// message: a client retrying a call resends the same message (for
	// payment's Charge: the same order id and idempotency key), so every
	// attempt of one request carries the same key, while two different
	// requests differ in their ids. This needs nothing from the client but
	// the message it sends anyway, unlike a metadata header that only some
	// clients set.
	Attempts int `json:"attempts,omitempty"`
	// Latency and Jitter are Delay's hold.
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
}

// Check reports a rule the layer cannot apply.
func (r Rule) Check() error {
	switch r.Kind {
	case Error, Delay, DropResponse, Abort:
	default:
		return fmt.Errorf("rule %q: unknown kind %q (grpc-error, grpc-delay, grpc-drop-response, grpc-abort)", r.Name, r.Kind)
	}
	if r.Probability < 0 || r.Probability > 1 {
		return fmt.Errorf("rule %q: probability %g is not in (0, 1]", r.Name, r.Probability)
	}
	if r.Attempts < 0 {
		return fmt.Errorf("rule %q: attempts %d is negative", r.Name, r.Attempts)
	}
	if r.Kind == Error && (r.Code == codes.OK || r.Code > codes.Unauthenticated) {
		return fmt.Errorf("rule %q: code %d is not an error status (1 to 16)", r.Name, r.Code)
	}
	if r.Latency < 0 || r.Jitter < 0 {
		return fmt.Errorf("rule %q: negative latency or jitter", r.Name)
	}
	if m := strings.TrimPrefix(r.Method, "/"); m != "" && !strings.Contains(m, "/") {
		return fmt.Errorf("rule %q: method %q is not service/method, e.g. payment.v1.PaymentService/Charge", r.Name, r.Method)
	}
	return nil
}

// Counters are what a rule saw: Calls matching its method, Faulted those
// it acted on.
type Counters struct {
	Calls   int64 `json:"calls"`
	Faulted int64 `json:"faulted"`
}

// Map returns the counters by name, the form of a report's counters.
func (c Counters) Map() map[string]uint64 {
	return map[string]uint64{"calls": uint64(c.Calls), "faulted": uint64(c.Faulted)}
}

// maxKeys bounds the logical requests a rule with Attempts remembers per
// generation; two generations are kept, so a request is remembered across
// at least maxKeys newer requests.
const maxKeys = 1 << 17

// rule is a Rule at work: its counters and, with Attempts, the attempts
// seen per logical request.
type rule struct {
	Rule
	method         string // with its leading slash
	calls, faulted atomic.Int64

	mu        sync.Mutex
	seed      maphash.Seed
	cur, prev map[uint64]attempt
}

// attempt is what a rule with Attempts knows of one logical request.
type attempt struct {
	seen     int  // attempts so far
	selected bool // the probability draw of its first attempt
}

func newRule(r Rule) *rule {
	m := strings.TrimPrefix(r.Method, "/")
	if m != "" {
		m = "/" + m
	}
	if r.Probability == 0 {
		r.Probability = 1
	}
	return &rule{Rule: r, method: m, seed: maphash.MakeSeed(), cur: map[uint64]attempt{}}
}

func (r *rule) matches(method string) bool { return r.method == "" || r.method == method }

// fires counts a call of a matching method and says whether the rule acts
// on it; first is the call's first request message.
func (r *rule) fires(method string, first []byte) bool {
	r.calls.Add(1)
	var hit bool
	if r.Attempts > 0 && r.Kind != Delay {
		hit = r.attempt(method, first)
	} else {
		hit = r.draw()
	}
	if hit {
		r.faulted.Add(1)
	}
	return hit
}

func (r *rule) draw() bool { return r.Probability >= 1 || rand.Float64() < r.Probability }

// attempt counts one attempt of the logical request and says whether it is
// among the first Attempts of a selected request.
func (r *rule) attempt(method string, first []byte) bool {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(method)
	h.WriteByte(0)
	h.Write(first)
	k := h.Sum64()
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.cur[k]
	if !ok {
		if a, ok = r.prev[k]; !ok {
			a.selected = r.draw()
		}
	}
	a.seen++
	if len(r.cur) >= maxKeys {
		r.prev, r.cur = r.cur, map[uint64]attempt{}
	}
	r.cur[k] = a
	return a.selected && a.seen <= r.Attempts
}

// hold draws Delay's hold for one call: Latency ± Jitter, uniform, never
// below zero.
func (r *rule) hold() time.Duration {
	d := r.Latency
	if r.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*r.Jitter)+1)) - r.Jitter
	}
	return max(d, 0)
}

func (r *rule) counters() Counters {
	return Counters{Calls: r.calls.Load(), Faulted: r.faulted.Load()}
}
