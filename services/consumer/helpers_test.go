package consumer

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/fallacies/fallacies/internal/testenv"
	consumerv1 "github.com/fallacies/fallacies/services/api/consumer/v1"
	"github.com/fallacies/fallacies/services/events"
	"github.com/fallacies/fallacies/services/serve"
)

// waitTimeout bounds every poll in these tests; generous for a busy machine.
const waitTimeout = 20 * time.Second

// started is a consumer serving gRPC on loopback.
type started struct {
	*Server
	client consumerv1.ConsumerServiceClient
}

// startConsumer builds, serves and waits until cfg's consumer is
// subscribed; it is shut down at cleanup.
func startConsumer(t *testing.T, cfg Config, o serve.Options) started {
	t.Helper()
	s, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	conn, err := serve.Dial(lis.Addr().String(), serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		shutdown(t, s)
		if err := <-served; err != nil {
			t.Errorf("Serve after Shutdown = %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(waitTimeout):
		t.Fatalf("consumer %s never became ready", cfg.Name)
	}
	return started{Server: s, client: consumerv1.NewConsumerServiceClient(conn)}
}

func shutdown(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// publisher publishes orders.created directly to the server, as order does.
type publisher struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newPublisher(t *testing.T, url string) publisher {
	t.Helper()
	nc, js := testenv.ConnectNATS(t, url)
	if _, err := events.EnsureStream(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	return publisher{nc: nc, js: js}
}

func eventMsg(orderID string) *nats.Msg {
	m := nats.NewMsg(events.SubjectCreated)
	m.Data = events.OrderCreated{OrderID: orderID, UserID: "u-0001", AmountCents: 500, ChargeID: "ch-" + orderID}.Marshal()
	m.Header.Set(jetstream.MsgIDHeader, orderID)
	m.Header.Set(events.HeaderPublishedAt, strconv.FormatInt(time.Now().UnixNano(), 10))
	return m
}

// publish stores one event in the stream, deduplicated by order id.
func (p publisher) publish(t *testing.T, m *nats.Msg) {
	t.Helper()
	if _, err := p.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatalf("publish %s: %v", m.Header.Get(jetstream.MsgIDHeader), err)
	}
}

// link is a TCP forwarder standing in for a proxy that can be cut: while
// cut it closes every connection and refuses new ones (accepts and closes).
type link struct {
	lis    net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{lis: lis, target: target, conns: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.accept()
	t.Cleanup(l.close)
	return l
}

func (l *link) url() string { return "nats://" + l.lis.Addr().String() }

func (l *link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.lis.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns[c], l.conns[up] = struct{}{}, struct{}{}
		l.wg.Add(2)
		l.mu.Unlock()
		go l.pipe(c, up)
		go l.pipe(up, c)
	}
}

func (l *link) pipe(dst, src net.Conn) {
	defer l.wg.Done()
	_, err := io.Copy(dst, src)
	_ = err // the other direction or Cut closed the pair
	_ = dst.Close()
	_ = src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

// setCut cuts the link (closing every connection) or heals it.
func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			_ = c.Close()
		}
	}
}

func (l *link) close() {
	l.setCut(true)
	_ = l.lis.Close()
	l.wg.Wait()
}

// listAll pages through ListApplied over gRPC.
func listAll(t *testing.T, c consumerv1.ConsumerServiceClient, pageSize int32, opts ...grpc.CallOption) []*consumerv1.Application {
	t.Helper()
	var out []*consumerv1.Application
	token := ""
	for range 10000 {
		resp, err := c.ListApplied(t.Context(), &consumerv1.ListAppliedRequest{PageSize: pageSize, PageToken: token}, opts...)
		if err != nil {
			t.Fatalf("ListApplied: %v", err)
		}
		out = append(out, resp.Applications...)
		if token = resp.NextPageToken; token == "" {
			return out
		}
	}
	t.Fatal("ListApplied paging never ends")
	return nil
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}
