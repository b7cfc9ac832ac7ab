// Package proctest finds the service processes of a processes topology
// from /proc (Linux), for tests that check what a fault or its rollback
// did to a real process: whether it runs, is stopped (paused) or is gone.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc is one service process.
type Proc struct {
	PID     int
	Service string // the SERVICE of `fallacies serve SERVICE`
	// State is the one-letter state of /proc/PID/stat: R running, S
	// sleeping, D disk wait, T stopped (paused), Z zombie, ….
	State byte
}

// Stopped reports whether the process is stopped by a signal (SIGSTOP).
func (p Proc) Stopped() bool { return p.State == 'T' }

// Alive reports whether the process exists and runs: neither stopped nor
// a zombie. The zero Proc (a service not found) is not alive.
func (p Proc) Alive() bool {
	return p.PID != 0 && p.State != 'T' && p.State != 't' && p.State != 'Z' && p.State != 'X'
}

// Services lists the `fallacies serve SERVICE` processes whose parent is
// parent, by service; a process that is gone meanwhile is left out.
func Services(parent int) (map[string]Proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := map[string]Proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ppid, ok := read(pid)
		if !ok || ppid != parent || p.Service == "" {
			continue
		}
		out[p.Service] = p
	}
	return out, nil
}

// Get returns the process pid as it is now; ok is false once it is gone
// (reaped).
func Get(pid int) (p Proc, ok bool) {
	p, _, ok = read(pid)
	return p, ok
}

func read(pid int) (p Proc, ppid int, ok bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Proc{}, 0, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Proc{}, 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return Proc{}, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	p = Proc{PID: pid, State: f[0][0]}
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "serve" {
				p.Service = args[i+1]
				break
			}
		}
	}
	return p, ppid, true
}
