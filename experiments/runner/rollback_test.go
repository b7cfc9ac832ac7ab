package runner

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/report/schematest"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/topology/proctest"
)

// buildFallacies builds cmd/fallacies for the processes topology.
func buildFallacies(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fallacies")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/fallacies/fallacies/cmd/fallacies").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPanicRollsBackProcessFaults forces a panic while a process is paused
// and another killed on the processes topology: before the topology is
// torn down the paused process runs again and the killed one was started
// again, and afterwards no process of the run is left.
func TestPanicRollsBackProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the processes topology")
	}
	bin := buildFallacies(t)
	exp := mustParse(t, `
name: panic-processes
fallacy: network-is-reliable
description: process faults still on when the runner panics
topology: processes
load: { rate: 20/s, duration: 1s, timeout: 300ms }
variants: { only: {} }
faults:
  - { name: frozen-payment, at: 0s, target: payment, kind: pause }
  - { name: dead-ledger, at: 0s, target: ledger, kind: kill }
hypotheses:
  - { when: during, check: "order.success_rate >= 0%" }
`)
	services := func() map[string]proctest.Proc {
		ps, err := proctest.Services(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	var atPanic, atTeardown map[string]proctest.Proc
	testHookLoadDone = func() {
		atPanic = services()
		panic("boom")
	}
	testHookTeardown = func(topology.Topology) {
		// The scheduler's removal has run: payment continued, ledger
		// started again (Restart waits until it is healthy).
		atTeardown = services()
	}
	t.Cleanup(func() { testHookLoadDone, testHookTeardown = nil, nil })
	res, err := Run(t.Context(), exp, Options{ReportsDir: t.TempDir(), Binary: bin})
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("err = %v, want the panic reported as a testbed failure", err)
	}
	if p, ok := atPanic["payment"]; !ok || !p.Stopped() {
		t.Fatalf("at the panic payment is pid %d state %c (found %v): not paused, the test proves nothing", p.PID, p.State, ok)
	}
	if l, ok := atPanic["ledger"]; ok && l.Alive() {
		t.Fatalf("at the panic ledger runs (pid %d state %c): not killed, the test proves nothing", l.PID, l.State)
	}
	if p := atTeardown["payment"]; !p.Alive() {
		t.Errorf("payment before teardown: pid %d state %c, want it running again (the pause rolled back)", p.PID, p.State)
	}
	if l := atTeardown["ledger"]; !l.Alive() || l.PID == atPanic["ledger"].PID {
		t.Errorf("ledger before teardown: pid %d state %c (was pid %d), want a new running process (the kill rolled back)", l.PID, l.State, atPanic["ledger"].PID)
	}
	// Nothing of the run is left: no paused orphan, no process at all.
	deadline := time.Now().Add(10 * time.Second)
	for left := services(); len(left) > 0; left = services() {
		if time.Now().After(deadline) {
			t.Fatalf("service processes left after the run: %+v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res == nil {
		t.Fatal("no report")
	}
	schematest.ValidateDir(t, res.Dir)
}
