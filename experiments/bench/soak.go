package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fallacies/fallacies/experiments/load"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

// Bounds of the soak.
const (
	soakRate      = 500         // orders per second
	soakStep      = time.Minute // one row of the curve
	soakStartWait = 30 * time.Second
	soakStopWait  = 20 * time.Second
)

// soak keeps `fallacies up` (the embedded topology in a child process)
// under a steady open-loop load of soakRate orders per second for
// Config.SoakFor, one soakStep at a time, and reads the child's resident
// memory after each step: the latency and memory curve of a system left
// running.
func (b *bench) soak(ctx context.Context) (*Section, error) {
	steps := max(int(b.cfg.SoakFor/soakStep), 2)
	s := &Section{
		Title: "9. Soak",
		Intro: fmt.Sprintf("`fallacies up` (the embedded topology, untraced, default knobs) in a child process, driven by the open-loop generator at %d orders/s for %d × %v; "+
			"latency runs from each order's intended time; memory is the child's resident set (VmRSS) at the end of each step, and the load is the machine's 1-minute load average then (other work on the machine moves the p99). One run: the steps are the repetitions.",
			soakRate, steps, soakStep),
		Header: []string{"minute", "orders placed so far", "achieved /s", "p50 ms", "p99 ms", "failed", "resident MB", "load average"},
	}
	dir, err := os.MkdirTemp("", "fallacies-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	epFile := filepath.Join(dir, "endpoints.json")
	up := exec.Command(b.cfg.Binary, "up", "--endpoints-file", epFile, "--toxiproxy-api", "127.0.0.1:0")
	up.Stdout, up.Stderr = nil, nil
	if err := up.Start(); err != nil {
		return nil, fmt.Errorf("start fallacies up: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	defer stopChild(up, exited)
	ep, err := awaitEndpoints(ctx, epFile, exited)
	if err != nil {
		return nil, err
	}
	conn, err := serve.Dial(ep.Services["order"], serve.Options{})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	doer := load.NewOrderDoer(orderv1.NewOrderServiceClient(conn), 5*time.Second)
	var total int64
	p99s, rss := make([]float64, steps), make([]float64, steps)
	for i := range steps {
		res, err := runLoad(ctx, soakRate, soakStep, doer)
		if err != nil {
			return nil, fmt.Errorf("soak minute %d: %w", i+1, err)
		}
		all := res.Phases[load.PhaseAll].Total
		total += all.Requests
		rss[i], err = residentMB(up.Process.Pid)
		if err != nil {
			return nil, err
		}
		p99s[i] = ms(all.P99())
		s.row(fmt.Sprint(i+1), fmt.Sprint(total), fmt.Sprintf("%.0f", res.Achieved), fmt.Sprintf("%.2f", ms(all.P50())), fmt.Sprintf("%.2f", p99s[i]), fmt.Sprint(all.ErrorCount()), fmt.Sprintf("%.0f", rss[i]), loadAverage())
		b.logf("soak minute %d/%d: %.0f/s, p99 %.2f ms, %d failed, resident %.0f MB, load %s", i+1, steps, res.Achieved, p99s[i], all.ErrorCount(), rss[i], loadAverage())
	}
	last := steps - 1
	s.target(fmt.Sprintf("soak at %d orders/s: p99 of the last minute ≤ 1.5 × the second's", soakRate),
		fmt.Sprintf("%.2f ms vs %.2f ms", p99s[last], p99s[1]), p99s[last] <= 1.5*p99s[1])
	s.target(fmt.Sprintf("soak at %d orders/s: memory after the last minute ≤ 1.5 × after the second", soakRate),
		fmt.Sprintf("%.0f MB vs %.0f MB", rss[last], rss[1]), rss[last] <= 1.5*rss[1])
	return s, nil
}

// awaitEndpoints polls for the endpoints file `fallacies up` writes once
// the system is ready.
func awaitEndpoints(ctx context.Context, path string, exited <-chan error) (topology.Endpoints, error) {
	deadline := time.Now().Add(soakStartWait)
	for {
		if _, err := os.Stat(path); err == nil {
			return topology.LoadEndpoints(path)
		}
		select {
		case err := <-exited:
			return topology.Endpoints{}, fmt.Errorf("fallacies up exited before it was ready: %v", err)
		case <-ctx.Done():
			return topology.Endpoints{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return topology.Endpoints{}, fmt.Errorf("fallacies up: not ready within %v", soakStartWait)
		}
	}
}

// stopChild interrupts a child (it tears down what it started) and kills
// it if it has not exited within soakStopWait.
func stopChild(c *exec.Cmd, exited <-chan error) {
	_ = c.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(soakStopWait):
		_ = c.Process.Kill()
		<-exited
	}
}

// residentMB reads a process's resident set size from /proc.
func residentMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("read memory of process %d: %q: %w", pid, line, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("read memory: no VmRSS in /proc status")
}

// loadAverage returns the machine's 1-minute load average as /proc/loadavg
// gives it, or "" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
