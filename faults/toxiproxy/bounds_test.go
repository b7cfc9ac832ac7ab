package toxiproxy_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults"
	tp "github.com/fallacies/fallacies/faults/toxiproxy"
)

// edges are the values of an attribute worth trying: both ends of its
// accepted range, the values just inside them, the middle, zero and the
// default, each once and all within the bounds.
func edges(a faults.Attr) []int64 {
	var out []int64
	for _, v := range []int64{a.Min, a.Min + 1, a.Min + (a.Max-a.Min)/2, a.Max - 1, a.Max, 0, a.Default} {
		if v >= a.Min && v <= a.Max && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// boundCase is one fault to drive traffic through.
type boundCase struct {
	name  string
	kind  faults.Kind
	attrs map[string]int64
}

// boundCases lists, for every proxy fault kind, each attribute at each of
// its edges with the other attributes at their defaults (adjusted so that
// the rules between attributes hold: the case is one the loader accepts).
func boundCases(t *testing.T) []boundCase {
	var out []boundCase
	for _, spec := range faults.Specs() {
		if _, toxic := faults.As[faults.ProxyKind](spec.Kind); !toxic {
			continue // applied by another injector (packet kinds)
		}
		if len(spec.Attrs) == 0 {
			out = append(out, boundCase{name: string(spec.Kind), kind: spec.Kind, attrs: map[string]int64{}})
			continue
		}
		for _, a := range spec.Attrs {
			for _, v := range edges(a) {
				attrs := map[string]int64{}
				for _, b := range spec.Attrs {
					attrs[b.Name] = b.Default
					if b.Min > b.Default {
						attrs[b.Name] = b.Min
					}
				}
				attrs[a.Name] = v
				if spec.Kind == faults.Slicer {
					// size_variation < average_size: move the other one.
					if a.Name == "size_variation" {
						attrs["average_size"] = max(attrs["average_size"], v+1)
					} else if a.Name == "average_size" {
						attrs["size_variation"] = min(attrs["size_variation"], v-1)
					}
				}
				if name, err := spec.CheckAttrs(attrs); err != nil {
					t.Fatalf("%s %v: the case is not in the accepted range (%s): %v", spec.Kind, attrs, name, err)
				}
				out = append(out, boundCase{name: fmt.Sprintf("%s/%s=%d", spec.Kind, a.Name, v), kind: spec.Kind, attrs: attrs})
			}
		}
	}
	return out
}

// TestEveryFaultKindSurvivesItsWholeRange puts every proxy fault kind, at
// every edge of every attribute's accepted range, on a real embedded
// Toxiproxy proxy in both directions while real traffic crosses it, then
// removes it. Nothing may panic (a panic in a toxic's goroutine kills this
// test binary), the removal must finish in bounded time (a toxic that
// never listens for its removal hangs it), and the proxy must relay again
// afterwards.
func TestEveryFaultKindSurvivesItsWholeRange(t *testing.T) {
	s := startServer(t)
	inj := tp.NewInjector(s.URL(), nil)
	cases := boundCases(t)
	if len(cases) < 30 {
		t.Fatalf("only %d cases: the table lost kinds or attributes", len(cases))
	}
	payload := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: several toxic chunks
	for i, c := range cases {
		proxy := fmt.Sprintf("p%d", i)
		listen, err := s.AddProxy(proxy, echoServer(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := faults.Fault{Name: "edge", Kind: c.kind, Target: proxy, Direction: faults.Both, Toxicity: 1, Attrs: maps.Clone(c.attrs)}
			a, err := inj.Apply(t.Context(), f)
			if err != nil {
				t.Fatalf("apply %v: %v", c.attrs, err)
			}
			// Traffic through the fault: write a payload, read what comes
			// back within a short while. What comes back depends on the
			// fault; that it does not crash or wedge the proxy does not.
			// A partition refuses the connection: that is its effect.
			conn, err := net.DialTimeout("tcp", listen, 5*time.Second)
			if err == nil {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
				_, _ = io.WriteString(conn, payload)
				_, _ = io.ReadFull(conn, make([]byte, len(payload)))
			} else if c.kind != faults.Partition {
				t.Fatalf("dial through %s: %v", c.name, err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := inj.Remove(ctx, a); err != nil {
				t.Fatalf("remove %v: %v", c.attrs, err)
			}
			roundTrip(t, listen, "after "+c.name)
		})
	}
}

// TestApplyRefusesOutOfRangeAttributes checks that the injector itself
// refuses a value just outside each attribute's range, before Toxiproxy
// sees it: a run with --target gets its faults from files the loader
// checked, but the injector does not rely on it.
func TestApplyRefusesOutOfRangeAttributes(t *testing.T) {
	s := startServer(t)
	inj := tp.NewInjector(s.URL(), nil)
	if _, err := s.AddProxy("echo", echoServer(t)); err != nil {
		t.Fatal(err)
	}
	for _, spec := range faults.Specs() {
		if _, toxic := faults.As[faults.ProxyKind](spec.Kind); !toxic {
			continue // applied by another injector (packet kinds)
		}
		for _, a := range spec.Attrs {
			for _, v := range []int64{a.Min - 1, a.Max + 1} {
				f := faults.Fault{Kind: spec.Kind, Target: "echo", Attrs: map[string]int64{a.Name: v}}
				if _, err := inj.Apply(t.Context(), f); err == nil || !strings.Contains(err.Error(), a.Name) {
					t.Errorf("%s %s=%d: err = %v, want a refusal naming %s", spec.Kind, a.Name, v, err, a.Name)
				}
			}
		}
	}
	f := faults.Fault{Kind: faults.Slicer, Target: "echo", Attrs: map[string]int64{"average_size": 8, "size_variation": 8}}
	if _, err := inj.Apply(t.Context(), f); err == nil || !strings.Contains(err.Error(), "size_variation") {
		t.Errorf("slicer size_variation == average_size: err = %v, want a refusal", err)
	}
	proxies, err := inj.Proxies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(proxies["echo"].Toxics); n != 0 {
		t.Errorf("%d toxics left on the proxy after refusals", n)
	}
}
