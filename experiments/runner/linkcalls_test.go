package runner

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fallacies/fallacies/tracing"
)

// linkCall is one call a service made on a link, as its client span and
// the callee's server span under it recorded it.
type linkCall struct {
	start, end time.Time
	outside    time.Duration // the client span's time outside the callee's server span: wire, proxies, the toxic
	failed     bool
}

// linkCalls reads every trace of a run (FileFullTraces in dir) and returns
// the calls whose client span is named name (for example
// "user.v1.UserService/GetUser"), in start order.
func linkCalls(t *testing.T, dir, name string) []linkCall {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FileFullTraces))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type kv struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	type ref struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	}
	type span struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []ref  `json:"references"`
		StartTime     int64  `json:"startTime"` // µs
		Duration      int64  `json:"duration"`  // µs
		Tags          []kv   `json:"tags"`
	}
	var file struct {
		Data []struct {
			Spans []span `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(zr).Decode(&file); err != nil {
		t.Fatalf("read %s: %v", FileFullTraces, err)
	}
	tag := func(s span, key string) any {
		for _, t := range s.Tags {
			if t.Key == key {
				return t.Value
			}
		}
		return nil
	}
	var out []linkCall
	for _, tr := range file.Data {
		for _, c := range tr.Spans {
			if c.OperationName != name || tag(c, "span.kind") != tracing.KindClient {
				continue
			}
			call := linkCall{
				start:   time.UnixMicro(c.StartTime),
				end:     time.UnixMicro(c.StartTime + c.Duration),
				outside: time.Duration(c.Duration) * time.Microsecond,
				failed:  tag(c, "error") == true,
			}
			for _, s := range tr.Spans {
				if tag(s, "span.kind") == tracing.KindServer && slices.Contains(s.References, ref{RefType: "CHILD_OF", SpanID: c.SpanID}) {
					call.outside -= time.Duration(s.Duration) * time.Microsecond
				}
			}
			out = append(out, call)
		}
	}
	slices.SortFunc(out, func(a, b linkCall) int { return a.start.Compare(b.start) })
	return out
}

// quantileOf returns the q-th quantile (0..1, nearest rank below) of the
// durations f picks from calls.
func quantileOf(calls []linkCall, q float64, f func(linkCall) time.Duration) time.Duration {
	d := make([]time.Duration, len(calls))
	for i, c := range calls {
		d[i] = f(c)
	}
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}
