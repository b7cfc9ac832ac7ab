package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fallacies/fallacies/services/events"
)

// Bounds on reading the ORDERS stream after a run.
const (
	// streamReadLimit is the most messages readPublished reads; a stream
	// holding more since the run started is reported as unknown.
	streamReadLimit = 5_000_000
	// streamReadTimeout bounds the whole read.
	streamReadTimeout = 30 * time.Second
	// streamFetchBatch is how many messages one fetch asks for.
	streamFetchBatch = 1000
)

// errStreamTooLarge marks a stream with more messages than streamReadLimit.
var errStreamTooLarge = errors.New("too many messages to count")

// errStreamDiscarded marks a stream that discarded events stored since the
// run started (it keeps events.StreamMaxMsgs at most): counting what is
// left would report the discarded ones as never published.
var errStreamDiscarded = errors.New("the stream discarded events of this run")

// streamRead is what readPublished found in the ORDERS stream.
type streamRead struct {
	count map[string]int       // orders.created messages by order id
	first map[string]time.Time // when the stream stored each order's first message
}

// readPublished counts the orders.created messages stored in the ORDERS
// stream since since, by order id, and notes when each order's first was
// stored, reading the stream over a direct
// connection to natsURL (never through a proxy: the runner observes, it is
// not under test). It returns a zero streamRead when there is no stream (core publish
// mode creates none, so what was published is not known).
//
// It reads with an ephemeral pull consumer that acknowledges nothing and is
// deleted afterwards, so the services' own durable consumers are untouched.
// It stops at the number of messages pending when it started, at
// streamReadLimit messages, or after streamReadTimeout.
func readPublished(ctx context.Context, natsURL string, since time.Time, opts ...nats.Option) (streamRead, error) {
	ctx, cancel := context.WithTimeout(ctx, streamReadTimeout)
	defer cancel()
	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("fallacies-checker"), nats.Timeout(5 * time.Second), nats.MaxReconnects(0)}, opts...)...)
	if err != nil {
		return streamRead{}, fmt.Errorf("connect to nats %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return streamRead{}, fmt.Errorf("open jetstream at %s: %w", natsURL, err)
	}
	stream, err := js.Stream(ctx, events.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return streamRead{}, nil
	}
	if err != nil {
		return streamRead{}, fmt.Errorf("look up stream %s: %w", events.Stream, err)
	}
	start := since
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "fallacies consistency checker: counts what was published",
		FilterSubject:     events.SubjectCreated,
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return streamRead{}, fmt.Errorf("create reader on stream %s: %w", events.Stream, err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer dcancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name) // it expires by itself anyway
	}()
	pending := cons.CachedInfo().NumPending
	if pending > streamReadLimit {
		return streamRead{}, fmt.Errorf("stream %s holds %d messages since the run started: %w (limit %d)", events.Stream, pending, errStreamTooLarge, streamReadLimit)
	}
	out := streamRead{count: make(map[string]int), first: make(map[string]time.Time)}
	var read uint64
	for read < pending {
		batch, err := cons.Fetch(int(min(pending-read, streamFetchBatch)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return streamRead{}, fmt.Errorf("read stream %s: %w", events.Stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			id := orderIDOf(msg)
			out.count[id]++
			if md, err := msg.Metadata(); err == nil {
				if t, ok := out.first[id]; !ok || md.Timestamp.Before(t) {
					out.first[id] = md.Timestamp
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return streamRead{}, fmt.Errorf("read stream %s: %w", events.Stream, err)
		}
		read += uint64(n)
		if n == 0 {
			if ctx.Err() != nil {
				return streamRead{}, fmt.Errorf("read stream %s: %d of %d messages read: %w", events.Stream, read, pending, ctx.Err())
			}
			// Messages can vanish under the reader (a limit or a purge):
			// what is left is what there is.
			info, err := cons.Info(ctx)
			if err != nil {
				return streamRead{}, fmt.Errorf("read stream %s: %w", events.Stream, err)
			}
			if info.NumPending == 0 {
				break
			}
		}
	}
	// Checked after the read, so that events discarded under the reader
	// count too. Its oldest event stored after the run started, with
	// events before it gone, means some of those were the run's (or, at
	// the very boundary, the last ones before it: unknown either way).
	info, err := stream.Info(ctx)
	if err != nil {
		return streamRead{}, fmt.Errorf("read stream %s: %w", events.Stream, err)
	}
	if st := info.State; st.FirstSeq > 1 && st.FirstTime.After(since) {
		return streamRead{}, fmt.Errorf("stream %s: %w: its oldest event (sequence %d) was stored at %s, after the run started at %s (it keeps at most %d events or %d MB)",
			events.Stream, errStreamDiscarded, st.FirstSeq, st.FirstTime.Format(time.RFC3339Nano), since.Format(time.RFC3339Nano), events.StreamMaxMsgs, events.StreamMaxBytes>>20)
	}
	return out, nil
}

// orderIDOf names the order of one stored event: its Nats-Msg-Id, which
// order sets to the order id, else the id in the body.
func orderIDOf(msg jetstream.Msg) string {
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	if e, err := events.Unmarshal(msg.Data()); err == nil {
		return e.OrderID
	}
	return ""
}

// publishedSince is readPublished for the runner: a stream that cannot be
// read leaves what was published unknown (logged), rather than failing a
// run whose other figures stand.
func publishedSince(ctx context.Context, log *slog.Logger, natsURL string, since time.Time, opts ...nats.Option) streamRead {
	if natsURL == "" {
		return streamRead{}
	}
	pub, err := readPublished(ctx, natsURL, since, opts...)
	if err != nil {
		log.Warn("count published events", "nats", natsURL, "err", err)
		return streamRead{}
	}
	return pub
}
