package toxiproxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// runStub runs a SnifferToxic on a fresh stub and returns the stub, its
// input and output, and a channel closed when Pipe returns.
func runStub(t *testing.T, tx *SnifferToxic) (*toxics.ToxicStub, chan *stream.StreamChunk, chan *stream.StreamChunk, chan struct{}) {
	t.Helper()
	in := make(chan *stream.StreamChunk)
	out := make(chan *stream.StreamChunk)
	stub := toxics.NewToxicStub(in, out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		stub.Run(&toxics.ToxicWrapper{Toxic: tx, Type: SnifferType, Toxicity: 1})
	}()
	return stub, in, out, done
}

func TestSnifferPipeRelaysAndClosesAtEndOfStream(t *testing.T) {
	tx := new(SnifferToxic)
	stub, in, out, done := runStub(t, tx)
	for _, s := range []string{"hello ", "world"} {
		in <- &stream.StreamChunk{Data: []byte(s), Timestamp: time.Now()}
		if c := <-out; string(c.Data) != s {
			t.Fatalf("relayed %q, want %q", c.Data, s)
		}
	}
	in <- nil // end of stream
	if _, ok := <-out; ok {
		t.Fatal("output not closed at the end of the stream")
	}
	<-done
	if !stub.Closed() {
		t.Fatal("stub not closed at the end of the stream")
	}
	if seen, sample := tx.snapshot(); seen != 11 || string(sample) != "hello world" {
		t.Fatalf("recorded %d %q", seen, sample)
	}
}

func TestSnifferPipeInterruptKeepsInFlightData(t *testing.T) {
	tx := new(SnifferToxic)
	stub, in, out, done := runStub(t, tx)

	// Interrupted while idle: returns, stub left open for the next toxic.
	if !stub.InterruptToxic() {
		t.Fatal("interrupt refused")
	}
	<-done
	if stub.Closed() {
		t.Fatal("interrupt closed the stub")
	}

	// Interrupted while holding a chunk nobody reads yet: the chunk is
	// still handed on before Pipe returns.
	done = make(chan struct{})
	go func() {
		defer close(done)
		stub.Run(&toxics.ToxicWrapper{Toxic: tx, Type: SnifferType, Toxicity: 1})
	}()
	in <- &stream.StreamChunk{Data: []byte("in flight")}
	interrupted := make(chan bool)
	go func() { interrupted <- stub.InterruptToxic() }()
	if c := <-out; string(c.Data) != "in flight" {
		t.Fatalf("relayed %q", c.Data)
	}
	if !<-interrupted {
		t.Fatal("interrupt refused")
	}
	<-done
}

func TestSnifferKeepsFirstMiB(t *testing.T) {
	tx := new(SnifferToxic)
	chunk := bytes.Repeat([]byte("a"), 300*1024)
	for range 4 {
		tx.record(chunk)
	}
	tx.record([]byte("tail"))
	seen, sample := tx.snapshot()
	if seen != int64(4*len(chunk)+4) || len(sample) != SniffLimit || bytes.Contains(sample, []byte("tail")) {
		t.Fatalf("seen %d, kept %d", seen, len(sample))
	}
}
