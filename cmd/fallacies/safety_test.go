package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSafetyRefusesRemoteAddresses: every address a command would talk to
// or bind — a --target file's Toxiproxy API, NATS, services, proxies and
// OTLP endpoint, `up`'s admin API bind address and OTLP endpoint — is
// refused when it is not loopback and --allow-remote is not given: exit
// code 2, one line naming the address and the flag, and nothing dialled
// (a loopback trap every other address points at accepts no connection).
func TestSafetyRefusesRemoteAddresses(t *testing.T) {
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	local := trap.Addr().String()
	// targetWith is a complete endpoints file on the trap, with one key
	// replaced.
	targetWith := func(key, value string) string {
		m := map[string]string{
			"toxiproxy_api": "http://" + local, "nats": "nats://" + local, "user_http": local,
			"order": local, "payment": local, "user": local, "notification": local, "ledger": local,
			"proxy.user": local, "proxy.payment": local,
		}
		m[key] = value
		return writeEndpoints(t, m)
	}

	tests := []struct {
		name string
		args []string
		want []string // substrings of the one stderr line
	}{
		{"run: remote nats", []string{"run", "--target", targetWith("nats", "nats://192.0.2.7:4222"), "testdata/pass.yaml"},
			[]string{"nats://192.0.2.7:4222", "--allow-remote"}},
		{"run: remote service", []string{"run", "--target", targetWith("payment", "192.0.2.7:50051"), "testdata/pass.yaml"},
			[]string{"192.0.2.7:50051", "--allow-remote"}},
		{"run: remote proxy", []string{"run", "--target", targetWith("proxy.user", "[2001:db8::1]:9000"), "testdata/pass.yaml"},
			[]string{"[2001:db8::1]:9000", "--allow-remote"}},
		{"run: remote otlp", []string{"run", "--target", targetWith("otlp", "http://collector.example.com:4317"), "testdata/pass.yaml"},
			[]string{"collector.example.com", "--allow-remote"}},
		{"run: host name that is not localhost", []string{"run", "--target", targetWith("ledger", "db.internal:50051"), "testdata/pass.yaml"},
			[]string{"db.internal:50051", "--allow-remote"}},
		{"run: loopback hiding a remote in a server list", []string{"run", "--target", targetWith("nats", "nats://"+local+",nats://192.0.2.7:4222"), "testdata/pass.yaml"},
			[]string{"192.0.2.7:4222", "--allow-remote"}},
		{"run: every interface", []string{"run", "--target", targetWith("toxiproxy_api", "http://0.0.0.0:8474"), "testdata/pass.yaml"},
			[]string{"0.0.0.0:8474", "--allow-remote"}},
		{"reset: target with a remote toxiproxy", []string{"reset", "--target", targetWith("toxiproxy_api", "http://192.0.2.7:8474"), "--all"},
			[]string{"192.0.2.7:8474", "--allow-remote"}},
		{"place-order: target with a remote order", []string{"place-order", "--target", targetWith("order", "192.0.2.7:50051")},
			[]string{"192.0.2.7:50051", "--allow-remote"}},
		{"up: admin API on every interface", []string{"up", "--toxiproxy-api", "0.0.0.0:8474"},
			[]string{"0.0.0.0:8474", "--allow-remote"}},
		{"up: admin API with no host", []string{"up", "--toxiproxy-api", ":8474"},
			[]string{":8474", "--allow-remote"}},
		{"up: remote otlp endpoint", []string{"up", "--toxiproxy-api", "127.0.0.1:0", "--otlp-endpoint", "http://192.0.2.7:4317"},
			[]string{"192.0.2.7:4317", "--allow-remote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, t.Context(), tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			oneLine(t, "stderr", r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stdout, "is up") {
				t.Errorf("stdout %q: the system was started", r.stdout)
			}
			if r.took > 2*time.Second {
				t.Errorf("took %v: a refusal is made before anything starts", r.took)
			}
		})
	}
	// Nothing dialled the trap: a connection would be waiting in its
	// backlog, and Accept would return it at once.
	trap.(*net.TCPListener).SetDeadline(time.Now())
	if c, err := trap.Accept(); err == nil {
		c.Close()
		t.Errorf("a refused command connected to %s", trap.Addr())
	} else if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Errorf("accept on the trap: %v", err)
	}
}

// TestSafetyRefusesUnboundedLoad: a load beyond the hard bounds is an
// invalid experiment (exit 2, nothing started), with the field, the limit
// and the file position.
func TestSafetyRefusesUnboundedLoad(t *testing.T) {
	tests := []struct {
		name, load string
		want       []string
	}{
		{"rate", "{ rate: 50000/s, duration: 30s }", []string{"flood.yaml:4:", "load.rate", "limit of 20000/s"}},
		{"duration", "{ rate: 10/s, duration: 2h }", []string{"flood.yaml:4:", "load.duration", "limit of 10m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "flood.yaml")
			src := "name: flood\nfallacy: latency-is-zero\ndescription: too much\nload: " + tt.load +
				"\nvariants: { only: {} }\nhypotheses: [ { when: always, check: \"events.lost == 0\" } ]\n"
			if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"run", "validate"} {
				r := cli(t, t.Context(), cmd, "--reports", t.TempDir(), f)
				if cmd == "validate" {
					r = cli(t, t.Context(), cmd, f)
				}
				if r.code != exitUsage {
					t.Errorf("%s: exit %d, want %d (stderr %q)", cmd, r.code, exitUsage, r.stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: stderr %q does not contain %q", cmd, r.stderr, w)
					}
				}
				if r.took > 2*time.Second {
					t.Errorf("%s took %v: nothing should have started", cmd, r.took)
				}
			}
		})
	}
}

// TestSoak runs a tiny soak: two rounds (the warm-up and one more) of an
// experiment's resilient variant at twice its load, with the growth table
// and a verdict; and refuses unbounded soaks.
func TestSoak(t *testing.T) {
	dir := t.TempDir()
	exp := filepath.Join(dir, "tiny.yaml")
	src := `name: tiny
fallacy: latency-is-zero
description: a short latency fault
load: { rate: 20/s, duration: 1500ms, drain: 2s }
variants:
  naive: {}
  resilient: { order.user.timeout: 100ms, order.user.fallback: cached-profile }
faults:
  - { name: slow, at: 500ms, for: 500ms, target: user, kind: latency, latency: 20ms }
hypotheses:
  - { when: always, check: "events.lost == 0" }
`
	if err := os.WriteFile(exp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(strings.Replace(src, "resilient:", "tuned:", 1), "name: tiny", "name: other", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOAK_DURATION", "1s")
	r := cli(t, t.Context(), "soak", "--factor", "2", dir)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"resilient variants of tiny at 2× their load",
		"skipped: other (no resilient variant)",
		"GOROUTINES", "goroutines", "open fds", "heap in use",
		"rounds 2, orders sent ", ", lost 0,",
		"no growth beyond the bounds, nothing lost",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
		}
	}
	// 2 rounds × 1.5 s × 40/s: every round sends 60 orders.
	if !strings.Contains(r.stdout, "orders sent 120,") {
		t.Errorf("stdout: want 120 orders sent over two rounds at twice 20/s:\n%s", r.stdout)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"soak", "--duration", "3h", dir}, "--duration 3h0m0s"},
		{[]string{"soak", "--factor", "0", dir}, "--factor 0"},
		{[]string{"soak", "--factor", "50", dir}, "at most 10"},
		{[]string{"soak", "--variant", "nope", dir}, "no experiment has a variant named nope"},
		{[]string{"soak"}, "experiment file"},
	} {
		t.Setenv("SOAK_DURATION", "")
		r := cli(t, t.Context(), tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
		}
	}
}
