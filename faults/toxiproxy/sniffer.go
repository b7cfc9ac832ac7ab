package toxiproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// SnifferType is the Toxiproxy toxic type of the sniffer.
const SnifferType = "sniffer"

// SniffLimit is how many bytes one sniffer toxic keeps: the first SniffLimit
// bytes it relays. It counts every byte it relays.
const SniffLimit = 1 << 20

func init() {
	toxics.Register(SnifferType, new(SnifferToxic))
}

// SnifferToxic is a Toxiproxy toxic that relays every chunk unchanged and
// records the bytes it saw, to show what a listener on the path reads.
//
//	input ──▶ record (first SniffLimit bytes) ──▶ output, unchanged
//
// Toxiproxy makes one SnifferToxic per toxic added through the API and runs
// it on every connection of its proxy in its direction, so the record is
// shared by those connections and guarded by a mutex. It has no attributes.
type SnifferToxic struct {
	mu     sync.Mutex
	seen   int64
	sample []byte
}

// Pipe relays chunks from stub.Input to stub.Output, recording each one. It
// returns on an interrupt (after passing on any chunk it holds) and closes
// the stub at the end of the stream, as the ToxicStub contract requires.
func (t *SnifferToxic) Pipe(stub *toxics.ToxicStub) {
	if stub.Closed() {
		return
	}
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			t.record(c.Data)
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

func (t *SnifferToxic) record(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen += int64(len(p))
	if room := SniffLimit - len(t.sample); room > 0 {
		t.sample = append(t.sample, p[:min(room, len(p))]...)
	}
}

// snapshot returns the byte count and a copy of the sample.
func (t *SnifferToxic) snapshot() (int64, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen, append([]byte(nil), t.sample...)
}

// Sniff is what the sniffer toxics on one proxy saw.
type Sniff struct {
	Proxy     string `json:"proxy"`
	BytesSeen int64  `json:"bytes_seen"`
	// Sample holds the bytes kept by every sniffer toxic on the proxy, in
	// chain order (upstream toxics first); JSON carries it as base64.
	Sample []byte       `json:"sample_base64"`
	Toxics []SniffToxic `json:"toxics"`
}

// SniffToxic is what one sniffer toxic saw.
type SniffToxic struct {
	Name      string `json:"name"`
	Stream    string `json:"stream"`
	BytesSeen int64  `json:"bytes_seen"`
	Sample    []byte `json:"sample_base64"`
}

// Sniffed returns what the sniffer toxics currently on the proxy named name
// saw. A proxy with no sniffer toxic gives an empty Sniff.
func (s *Server) Sniffed(name string) (Sniff, error) {
	p, err := s.api.Collection.Get(name)
	if err != nil {
		return Sniff{}, fmt.Errorf("read sniffer of proxy %s: %w", name, err)
	}
	out := Sniff{Proxy: name, Sample: []byte{}, Toxics: []SniffToxic{}}
	for _, tx := range p.Toxics.GetToxicArray() {
		w, ok := tx.(*toxics.ToxicWrapper)
		if !ok {
			continue
		}
		sn, ok := w.Toxic.(*SnifferToxic)
		if !ok {
			continue
		}
		seen, sample := sn.snapshot()
		out.BytesSeen += seen
		out.Sample = append(out.Sample, sample...)
		out.Toxics = append(out.Toxics, SniffToxic{Name: w.Name, Stream: w.Stream, BytesSeen: seen, Sample: sample})
	}
	return out, nil
}

// handleSniffer serves GET /fallacies/sniffer/{proxy}.
func (s *Server) handleSniffer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("proxy")
	sn, err := s.Sniffed(name)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusInternalServerError
		msg := err.Error()
		var apiErr *toxiproxy.ApiError
		if errors.As(err, &apiErr) {
			status, msg = apiErr.StatusCode, apiErr.Message
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "status": status})
		return
	}
	if err := json.NewEncoder(w).Encode(sn); err != nil {
		s.log.Debug("sniffer_response_failed", "proxy", name, "err", err)
	}
}
