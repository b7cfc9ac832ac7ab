package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// broker fans the latest state out to every page connected to
// /api/events. A slow page misses intermediate states, never the latest.
type broker struct {
	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	last   []byte // the latest message, sent at once to a new page
	closed bool
}

func newBroker() *broker { return &broker{subs: map[chan []byte]struct{}{}} }

// publish encodes v as the SSE event name and sends it to every page.
func (b *broker) publish(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("console: encode %s: %v", name, err)) // the state is plain data
	}
	msg := fmt.Appendf(nil, "event: %s\ndata: %s\n\n", name, data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = msg
	for ch := range b.subs {
		select {
		case <-ch: // drop the unsent older state
		default:
		}
		ch <- msg
	}
}

// subscribe returns a channel of messages, the latest one already in it;
// ok is false once the broker is closed.
func (b *broker) subscribe() (ch chan []byte, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, false
	}
	ch = make(chan []byte, 1)
	if b.last != nil {
		ch <- b.last
	}
	b.subs[ch] = struct{}{}
	return ch, true
}

func (b *broker) unsubscribe(ch chan []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// count is the number of pages connected.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// close ends every stream.
func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// serveEvents streams the state to one page as Server-Sent Events until
// the page goes away or the console stops.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, ok := c.events.subscribe()
	if !ok {
		http.Error(w, "the console is stopping", http.StatusServiceUnavailable)
		return
	}
	c.pageOpened()
	defer c.pageClosed()
	defer c.events.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
