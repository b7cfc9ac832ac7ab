package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
				r := cli(t, t.Context(), args...)
				if r.code != exitOK {
					t.Errorf("fallacies %s: exit %d, want 0 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
				}
				if want := "Usage: fallacies " + c.name; !strings.HasPrefix(r.stdout, want) {
					t.Errorf("fallacies %s: stdout %q does not start with %q", strings.Join(args, " "), r.stdout, want)
				}
				if r.stderr != "" {
					t.Errorf("fallacies %s: stderr %q, want nothing", strings.Join(args, " "), r.stderr)
				}
			}
		})
	}
}

func TestNoArgumentsListsCommands(t *testing.T) {
	r := cli(t, t.Context())
	if r.code != exitUsage {
		t.Errorf("fallacies with no arguments: exit %d, want %d", r.code, exitUsage)
	}
	out := r.stdout + r.stderr
	for _, c := range commands {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(c.name) + `\s+` + regexp.QuoteMeta(c.summary)).MatchString(out) {
			t.Errorf("command %s is not listed with its summary:\n%s", c.name, out)
		}
	}
	if r := cli(t, t.Context(), "--help"); r.code != exitOK || !strings.Contains(r.stdout, "place-order") {
		t.Errorf("fallacies --help: exit %d, want 0 and the command list; stdout %q", r.code, r.stdout)
	}
}

func TestUnknownCommand(t *testing.T) {
	r := cli(t, t.Context(), "frobnicate", "x")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	oneLine(t, "stderr", r.stderr)
	if !strings.Contains(r.stderr, `"frobnicate"`) || !strings.Contains(r.stderr, "--help") {
		t.Errorf("stderr %q should name the command and point at --help", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

func TestUnknownFlag(t *testing.T) {
	r := cli(t, t.Context(), "validate", "--frobnicate", "testdata/pass.yaml")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	if !strings.Contains(r.stderr, "frobnicate") {
		t.Errorf("stderr %q should name the flag", r.stderr)
	}
}

// TestBadInput runs every refusal the CLI makes before starting anything:
// one clear line on stderr, the right exit code, and no time spent.
func TestBadInput(t *testing.T) {
	noYAML := t.TempDir()
	if err := os.WriteFile(filepath.Join(noYAML, "notes.txt"), []byte("no experiments here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A loopback listener the refused runs must never connect to.
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	remoteTarget := writeEndpoints(t, map[string]string{
		"toxiproxy_api": "http://10.1.2.3:8474", "nats": "nats://" + trap.Addr().String(),
		"order": trap.Addr().String(), "payment": trap.Addr().String(), "user": trap.Addr().String(),
		"notification": trap.Addr().String(), "ledger": trap.Addr().String(),
	})
	incomplete := writeEndpoints(t, map[string]string{"toxiproxy_api": "http://127.0.0.1:1"})

	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of the one stderr line
	}{
		{"run missing file", []string{"run", "testdata/nope.yaml"}, exitUsage, []string{"testdata/nope.yaml", "no such file"}},
		{"validate missing file", []string{"validate", "testdata/nope.yaml"}, exitUsage, []string{"testdata/nope.yaml", "no such file"}},
		{"run folder without yaml", []string{"run", noYAML}, exitUsage, []string{noYAML, "*.yaml"}},
		{"validate folder without yaml", []string{"validate", noYAML}, exitUsage, []string{noYAML, "*.yaml"}},
		{"run nothing", []string{"run"}, exitUsage, []string{"experiment"}},
		{"validate nothing", []string{"validate"}, exitUsage, []string{"experiment"}},
		{"run bogus topology", []string{"run", "--topology", "bogus", "testdata/pass.yaml"}, exitUsage, []string{`"bogus"`, "embedded", "processes"}},
		{"place-order without address", []string{"place-order"}, exitUsage, []string{"--order", "--target"}},
		{"place-order remote", []string{"place-order", "--order", "10.1.2.3:50051", "--timeout", "1m"}, exitUsage, []string{"10.1.2.3:50051", "--allow-remote"}},
		{"place-order n out of range", []string{"place-order", "--order", "127.0.0.1:1", "-n", "0"}, exitUsage, []string{"-n 0"}},
		{"run remote target", []string{"run", "--target", remoteTarget, "testdata/pass.yaml"}, exitUsage, []string{"10.1.2.3:8474", "--allow-remote", "--target"}},
		{"run incomplete target", []string{"run", "--target", incomplete, "testdata/pass.yaml"}, exitUsage, []string{"--target", "missing", "order"}},
		{"run missing target", []string{"run", "--target", "testdata/nope.json", "testdata/pass.yaml"}, exitUsage, []string{"--target", "testdata/nope.json"}},
		{"reset nothing", []string{"reset"}, exitUsage, []string{"--target", "--toxiproxy-api"}},
		{"reset remote", []string{"reset", "--toxiproxy-api", "http://10.1.2.3:8474", "--all"}, exitUsage, []string{"10.1.2.3:8474", "--allow-remote"}},
		{"reset stray argument", []string{"reset", "now"}, exitUsage, []string{`"now"`}},
		{"up stray argument", []string{"up", "now"}, exitUsage, []string{`"now"`}},
		{"up bad knob", []string{"up", "--set", "order.user.timeout"}, exitUsage, []string{"--set", "name=value"}},
		{"up unknown knob", []string{"up", "--set", "order.nope=1"}, exitUsage, []string{"--set", "order.nope"}},
		{"serve without config", []string{"serve", "user"}, exitUsage, []string{"--config"}},
		{"serve unknown link", []string{"serve", "order", "--listen", "127.0.0.1:0", "--link", "nats=127.0.0.1:4222"}, exitUsage, []string{"--link", `"nats=127.0.0.1:4222"`, "nats-order"}},
		{"serve bad link address", []string{"serve", "order", "--listen", "127.0.0.1:0", "--link", "user=toxiproxy"}, exitUsage, []string{"--link user", "HOST:PORT"}},
		{"list missing folder", []string{"list", "testdata/nope"}, exitUsage, []string{"testdata/nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, t.Context(), tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			oneLine(t, "stderr", r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
			// A refusal is made before anything is started or dialled.
			if r.took > 2*time.Second {
				t.Errorf("took %v: a refusal should return at once", r.took)
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

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: root reads any file whatever its mode")
	}
	f := filepath.Join(t.TempDir(), "secret.yaml")
	b, err := os.ReadFile("testdata/pass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, b, 0o000); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "validate"} {
		r := cli(t, t.Context(), cmd, f)
		if r.code != exitUsage {
			t.Errorf("%s: exit %d, want %d (stderr %q)", cmd, r.code, exitUsage, r.stderr)
		}
		if !strings.Contains(r.stderr, f) || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("%s: stderr %q should name the file and say permission denied", cmd, r.stderr)
		}
	}
}

// TestInvalidExperiment wants every problem as FILE:LINE:COL: message, and
// nothing started.
func TestInvalidExperiment(t *testing.T) {
	const file = "testdata/invalid.yaml"
	loc := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:\d+:\d+: \S`)
	for _, cmd := range []string{"run", "validate"} {
		t.Run(cmd, func(t *testing.T) {
			args := []string{cmd, file}
			if cmd == "run" {
				args = []string{cmd, "--quiet", "--reports", t.TempDir(), file}
			}
			r := cli(t, t.Context(), args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d", r.code, exitUsage)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) < 3 {
				t.Fatalf("want both problems and a summary on stderr, got %q", r.stderr)
			}
			for _, l := range lines[:len(lines)-1] {
				if !loc.MatchString(l) {
					t.Errorf("stderr line %q does not start with %s:LINE:COL:", l, file)
				}
			}
			for _, want := range []string{`"50/x"`, `"lag"`} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not report %s:\n%s", want, r.stderr)
				}
			}
			if sum := lines[len(lines)-1]; !strings.Contains(sum, "nothing was started") {
				t.Errorf("last line %q should say nothing was started", sum)
			}
			if r.took > 2*time.Second {
				t.Errorf("took %v: an invalid experiment must not start anything", r.took)
			}
		})
	}
	// One bad file among good ones: nothing runs, the good ones are not
	// reported as invalid.
	r := cli(t, t.Context(), "validate", "testdata/pass.yaml", file)
	if r.code != exitUsage || strings.Contains(r.stderr, "pass.yaml") || !strings.Contains(r.stderr, "1 of 2") {
		t.Errorf("validate good+bad: exit %d, stderr %q; want 2 and only the bad file", r.code, r.stderr)
	}
}

// TestRunTargetToxiproxyDown wants exit 3 and a message naming the address
// that did not answer (in the report on stdout or on stderr).
func TestRunTargetToxiproxyDown(t *testing.T) {
	api := "http://" + closedPort(t)
	down := closedPort(t)
	file := writeEndpoints(t, map[string]string{
		"toxiproxy_api": api, "order": down, "payment": down, "notification": down, "ledger": down,
	})
	r := cli(t, t.Context(), "run", "--quiet", "--reports", t.TempDir(), "--target", file, "testdata/pass.yaml")
	if r.code != exitTestbed {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, exitTestbed, r.stderr)
	}
	out := r.stdout + r.stderr
	if !strings.Contains(out, api) || !strings.Contains(out, "not reachable") {
		t.Errorf("output does not say the toxiproxy API %s is not reachable:\n%s", api, out)
	}
	if strings.Contains(out, "testbed failure: testbed failure") {
		t.Errorf("output stutters:\n%s", out)
	}
	if r.took > 10*time.Second {
		t.Errorf("took %v to find a closed port closed", r.took)
	}
}

// TestUpPortTaken holds the Toxiproxy API port and wants `up` to say so,
// for both topologies (the port is checked before any child starts).
func TestUpPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	for _, kind := range []string{"embedded", "processes"} {
		t.Run(kind, func(t *testing.T) {
			r := cli(t, t.Context(), "up", "--topology", kind, "--toxiproxy-api", addr)
			if r.code != exitTestbed {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", r.code, exitTestbed, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, "already in use") {
				t.Errorf("stderr %q should say the port %s is already in use", r.stderr, addr)
			}
			if strings.Contains(r.stdout, "is up") {
				t.Errorf("stdout says the system is up: %q", r.stdout)
			}
		})
	}
}

func TestValidateLatency(t *testing.T) {
	r := cli(t, t.Context(), "validate", "../../experiments/latency.yaml")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "../../experiments/latency.yaml: ok (latency:") {
		t.Errorf("stdout %q should say the file is ok", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr %q, want nothing", r.stderr)
	}
	// A folder validates every file in it.
	r = cli(t, t.Context(), "validate", "../../experiments")
	if r.code != exitOK || !strings.Contains(r.stdout, "latency.yaml: ok") {
		t.Errorf("validate ../../experiments: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestList(t *testing.T) {
	r := cli(t, t.Context(), "list", "../../experiments")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^latency\s+latency-is-zero\s+\S`).MatchString(r.stdout) {
		t.Errorf("list does not show latency with its fallacy and description:\n%s", r.stdout)
	}
	// An invalid file is listed as such, not hidden and not fatal.
	r = cli(t, t.Context(), "list", "testdata")
	if r.code != exitOK {
		t.Fatalf("list testdata: exit %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^invalid\.yaml\s+\(invalid\)`).MatchString(r.stdout) || !strings.Contains(r.stdout, "cli-pass") {
		t.Errorf("list testdata should show cli-pass and mark invalid.yaml:\n%s", r.stdout)
	}
}

func TestKnobs(t *testing.T) {
	r := cli(t, t.Context(), "knobs")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^order\.user\.timeout\s+duration\s+off\s+0s to 10m\s+\S`).MatchString(r.stdout) {
		t.Errorf("knobs does not list order.user.timeout with its range:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^order\.user\.bulkhead\s+int \(calls\)\s+0\s+0 to 100000\s+\S`).MatchString(r.stdout) {
		t.Errorf("knobs does not list order.user.bulkhead with its range:\n%s", r.stdout)
	}
}

// TestValidateKnobOutOfRange: a variant knob beyond its range is exit 2
// with the position of the value.
func TestValidateKnobOutOfRange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.yaml")
	src := "name: k\nfallacy: latency-is-zero\nload: { rate: 10/s, duration: 1s }\nvariants:\n  naive:\n    user.history_bytes: 9223372036854775807\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, t.Context(), "validate", path)
	want := path + ":6:25: variants.naive.user.history_bytes: 9223372036854775807 is out of range, need 0 to 4194304"
	if r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("validate: exit %d, stderr %q, want exit 2 and %q", r.code, r.stderr, want)
	}
}

func TestVersion(t *testing.T) {
	r := cli(t, t.Context(), "version")
	if r.code != exitOK || r.stdout != "fallacies "+version+"\n" {
		t.Errorf("version: exit %d, stdout %q", r.code, r.stdout)
	}
}
