package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fallacies/fallacies/topology/proctest"
)

// TestProcessFaultsOnEveryWayOut runs an experiment on the processes
// topology that pauses payment and kills ledger, and stops the run while
// both are on: after SIGINT and SIGTERM the faults are removed before the
// topology goes; after SIGKILL nothing ran on the way out, and the
// children must die with their parent rather than stay behind, paused.
// Either way no service process of the run is left. (That the faults are
// rolled back before the topology is torn down, on the same deferred path,
// is TestPanicRollsBackProcessFaults in experiments/runner.)
func TestProcessFaultsOnEveryWayOut(t *testing.T) {
	needBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			reports := t.TempDir()
			c := startChild(t, "run", "--quiet", "--reports", reports, "testdata/processhold.yaml")
			run := c.cmd.Process.Pid
			var held map[string]proctest.Proc
			waitFor(t, 60*time.Second, "payment paused and ledger killed", c.done, func() bool {
				ps, err := proctest.Services(run)
				if err != nil {
					t.Fatal(err)
				}
				held = ps
				l, ledger := ps["ledger"]
				return ps["payment"].Stopped() && ps["order"].Alive() && (!ledger || !l.Alive())
			})
			if err := c.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := c.wait(t, 60*time.Second)
			// Every process of the run is gone, the paused one included (a
			// zombie is dead: orphans wait for this container's init to
			// reap them).
			gone := func() bool {
				for _, p := range held {
					if q, ok := proctest.Get(p.PID); ok && q.State != 'Z' {
						return false
					}
				}
				return true
			}
			deadline := time.Now().Add(10 * time.Second)
			for !gone() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			for name, p := range held {
				if q, ok := proctest.Get(p.PID); ok && q.State != 'Z' {
					t.Errorf("%s (pid %d) left behind in state %c", name, p.PID, q.State)
				}
			}
			if sig == syscall.SIGKILL {
				if code != -1 {
					t.Errorf("exit %d after SIGKILL, want -1 (killed)", code)
				}
				return
			}
			if code != exitTestbed && code != 128+int(sig) {
				t.Errorf("exit %d, want %d or %d\nstderr:\n%s", code, exitTestbed, 128+int(sig), c.stderr)
			}
			if !strings.Contains(c.stderr.String(), "every fault applied was removed") {
				t.Errorf("stderr does not say the faults were removed:\n%s", c.stderr)
			}
			rep := readReport(t, reportDir(t, reports))
			if rep.Passed || len(rep.Variants) != 1 || len(rep.Variants[0].Faults) != 2 {
				t.Errorf("report of the interrupted run: passed=%v variants=%+v; want failed with both faults", rep.Passed, rep.Variants)
			}
		})
	}
}
