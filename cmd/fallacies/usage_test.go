package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUsageErrorsOfEveryFlag drives every command with the usage errors
// the issue lists, found from each command's own --help so that a new flag
// or command is covered without a new line here: a duration flag at -5s
// and 0s, a port flag out of range, and an extra argument to a command
// that takes none. Each must exit 2 at once with the flag or argument
// named on one stderr line, before anything starts.
func TestUsageErrorsOfEveryFlag(t *testing.T) {
	type probe struct {
		args []string
		want string
	}
	var probes []probe
	for _, c := range commands {
		help := cli(t, t.Context(), c.name, "--help").stdout
		for _, line := range strings.Split(help, "\n") {
			header, _, _ := strings.Cut(line, "\t")
			m := flagHeader.FindStringSubmatch(strings.TrimRight(header, " "))
			if m == nil {
				continue
			}
			name, kind := m[1], m[2]
			switch {
			case kind == "duration":
				probes = append(probes,
					probe{[]string{c.name, "--" + name, "-5s"}, "--" + name + " -5s"},
					probe{[]string{c.name, "--" + name + "=0s"}, "--" + name + " 0s"})
			case kind == "int" && strings.HasSuffix(name, "port"):
				probes = append(probes, probe{[]string{c.name, "--" + name, "70000"}, "--" + name + " 70000"})
			}
		}
		switch c.usage {
		case "", "[flags]", "[--json]":
			probes = append(probes, probe{[]string{c.name, "stray"}, `"stray"`})
		}
	}
	// Addresses and enumerations, checked by the commands that take them.
	probes = append(probes,
		probe{[]string{"up", "--topology", "bogus"}, `--topology "bogus"`},
		probe{[]string{"up", "--toxiproxy-api", "127.0.0.1:99999"}, "--toxiproxy-api"},
		probe{[]string{"run", "--topology", "bogus", "testdata/pass.yaml"}, `--topology "bogus"`},
		probe{[]string{"place-order", "--order", "127.0.0.1:0"}, "--order"},
		probe{[]string{"place-order", "--order", "127.0.0.1:7001", "--amount", "-1"}, "--amount -1"},
		probe{[]string{"reset", "--toxiproxy-api", "127.0.0.1:65536", "--all"}, "--toxiproxy-api"},
		probe{[]string{"health", "127.0.0.1:99999"}, "99999"},
		probe{[]string{"health", "--http", "127.0.0.1:8474"}, "--http"},
		probe{[]string{"list", "experiments", "stray"}, `"stray"`},
	)
	// Special files as --target: refused at once, never read (a FIFO
	// would block a plain read forever, /dev/zero would fill memory).
	fifo := filepath.Join(t.TempDir(), "endpoints.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"run", "testdata/pass.yaml"}, {"reset"}, {"place-order"}} {
		probes = append(probes,
			probe{append([]string{cmd[0], "--target", fifo}, cmd[1:]...), fifo + ": is a named pipe (FIFO)"},
			probe{append([]string{cmd[0], "--target", t.TempDir()}, cmd[1:]...), "a folder, not a regular file"})
	}
	// Files and folders written at the end of a long command, where
	// nothing can be written: refused before anything starts, not after
	// minutes of work.
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	under, folder := filepath.Join(notDir, "out"), t.TempDir()
	for _, out := range []struct {
		args []string
		flag string
	}{
		{[]string{"run", "testdata/pass.yaml"}, "junit"},
		{[]string{"calibrate", "testdata/pass.yaml"}, "out"},
		{[]string{"bench", "--only", "proxy"}, "out"},
		{[]string{"up"}, "endpoints-file"},
		{[]string{"compose-wait"}, "endpoints-file"},
	} {
		probes = append(probes,
			probe{append([]string{out.args[0], "--" + out.flag, under}, out.args[1:]...), "--" + out.flag + " " + under + ": cannot write there"},
			probe{append([]string{out.args[0], "--" + out.flag, folder}, out.args[1:]...), "--" + out.flag + " " + folder + ": is a folder"})
	}
	for _, cmd := range []string{"run", "calibrate", "soak"} {
		probes = append(probes, probe{[]string{cmd, "--reports", under, "testdata/pass.yaml"}, "--reports " + under + ": cannot write there"})
	}
	durations := 0
	for _, p := range probes {
		if strings.HasPrefix(p.want, "--") && strings.HasSuffix(p.want, " 0s") {
			durations++
		}
	}
	if durations < 4 {
		t.Fatalf("found %d duration flags in the commands' --help: the probe finder is broken", durations)
	}
	for _, p := range probes {
		t.Run(strings.Join(p.args, " "), func(t *testing.T) {
			// A command that wrongly accepted its input would start: the
			// deadline stops it, and the exit code says so.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			r := cli(t, ctx, p.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			oneLine(t, "stderr", r.stderr)
			if !strings.Contains(r.stderr, p.want) {
				t.Errorf("stderr %q does not name %q", r.stderr, p.want)
			}
			if r.took > 2*time.Second {
				t.Errorf("took %v: a usage error is found before anything starts", r.took)
			}
		})
	}
}

// TestHealthGuard checks that `fallacies health` refuses an address that
// is not loopback before dialling it, like every other command, and that
// --allow-remote lifts the guard.
func TestHealthGuard(t *testing.T) {
	for _, args := range [][]string{{"health", "10.1.2.3:7001"}, {"health", "--http", "http://10.1.2.3:8474/version"}, {"health", "--http", "http://evil.example/version"}} {
		r := cli(t, t.Context(), args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--allow-remote") {
			t.Errorf("%v: exit %d, stderr %q; want 2 pointing at --allow-remote", args, r.code, r.stderr)
		}
	}
	// Allowed, it dials: a closed loopback port stands for the remote host
	// (nothing leaves the machine), and the check fails as a check (1).
	r := cli(t, t.Context(), "health", "--allow-remote", "--timeout", "300ms", closedPort(t))
	if r.code != exitFailed {
		t.Errorf("health --allow-remote on a closed port: exit %d, want %d (stderr %q)", r.code, exitFailed, r.stderr)
	}
}
