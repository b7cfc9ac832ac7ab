package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults/container"
	"github.com/fallacies/fallacies/topology"
)

// needDocker skips unless Docker and compose answer (and the compose tests
// are not turned off with FALLACIES_COMPOSE_TEST=0, as in topology), then
// builds the images.
func needDocker(t *testing.T) []string {
	t.Helper()
	needBinary(t)
	if os.Getenv("FALLACIES_COMPOSE_TEST") == "0" {
		t.Skip("compose tests turned off by FALLACIES_COMPOSE_TEST=0")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		t.Skipf("no usable Docker engine (`docker info` failed: %v): %s", err, first)
	}
	cli, err := topology.ComposeCommand(t.Context())
	if err != nil {
		t.Skipf("no compose: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "images")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make images: %v\n%s", err, out)
	}
	return cli
}

// containerHold is a `fallacies run` of testdata/containerhold.yaml on the
// compose topology, with payment paused and user disconnected (container
// faults) and notification paused (a process fault, which hits the
// container on compose).
type containerHold struct {
	c       *child
	reports string
	journal string // the run's fault journal; containers in journal + ".containers"
	project string
}

// startContainerHold starts the run and returns once both container
// faults are on; the test's clean-up takes the project down if the run
// left it up.
func startContainerHold(t *testing.T, cli []string) *containerHold {
	t.Helper()
	h := &containerHold{reports: t.TempDir()}
	h.c = startChild(t, "run", "--quiet", "--reports", h.reports, "testdata/containerhold.yaml")
	// The report folder and its container journal name the project.
	waitFor(t, 5*time.Minute, "the container faults to be journaled", h.c.done, func() bool {
		dirs, _ := filepath.Glob(filepath.Join(h.reports, "*", "faults.journal.containers"))
		if len(dirs) != 1 {
			return false
		}
		j, err := container.OpenJournal(dirs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		out, err := j.Outstanding()
		if err != nil || len(out) == 0 {
			return false
		}
		h.journal, h.project = strings.TrimSuffix(dirs[0], ".containers"), out[0].Project
		return true
	})
	t.Cleanup(func() {
		// A killed run leaves its project up: take it down.
		args := append(slices.Clone(cli[1:]), "-p", h.project, "-f", filepath.Join("..", "..", "docker-compose.yml"), "down", "-v", "--remove-orphans", "-t", "1")
		if out, err := exec.Command(cli[0], args...).CombinedOutput(); err != nil {
			t.Errorf("compose down %s: %v\n%s", h.project, err, out)
		}
	})
	waitFor(t, time.Minute, "payment and notification paused and user disconnected", h.c.done, func() bool { return h.held(t) })
	return h
}

// state reads the payment, user and notification containers of the run's
// project.
func (h *containerHold) state(t *testing.T) (payment, user, notification container.Container) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d := container.Docker{Project: h.project}
	p, err := d.Find(ctx, "payment")
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.Find(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Find(ctx, "notification")
	if err != nil {
		t.Fatal(err)
	}
	return p, u, n
}

// held reports whether payment and notification are paused and user on
// no network.
func (h *containerHold) held(t *testing.T) bool {
	t.Helper()
	p, u, n := h.state(t)
	return p.Status == "paused" && len(u.Networks) == 0 && n.Status == "paused"
}

// outstanding lists the container faults the journal still lists as on.
func (h *containerHold) outstanding(t *testing.T) []container.Entry {
	t.Helper()
	j, err := container.OpenJournal(h.journal + ".containers")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	out, err := j.Outstanding()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestContainerFaultsOnInterrupt sends SIGINT to `fallacies run` on the
// compose topology while the payment and notification containers are
// paused and the user container disconnected: the run removes all three (the journal records each
// removal once docker has unpaused and reconnected), then takes its
// project down, and exits 130.
func TestContainerFaultsOnInterrupt(t *testing.T) {
	cli := needDocker(t)
	h := startContainerHold(t, cli)
	if err := h.c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := h.c.wait(t, 3*time.Minute); code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\nstderr:\n%s", code, h.c.stderr)
	}
	if !strings.Contains(h.c.stderr.String(), "every fault applied was removed") {
		t.Errorf("stderr does not say the faults were removed:\n%s", h.c.stderr)
	}
	if out := h.outstanding(t); len(out) != 0 {
		t.Errorf("the container journal still lists %d fault(s) as on: %+v", len(out), out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if c, err := (container.Docker{Project: h.project}).Find(ctx, "payment"); !errors.Is(err, container.ErrNoContainer) {
		t.Errorf("payment of %s after the run: %+v, %v; want the project taken down", h.project, c, err)
	}
	readReport(t, reportDir(t, h.reports))
}

// TestContainerFaultsAfterSIGKILL kills `fallacies run` on the compose
// topology while the payment and notification containers are paused and
// the user container disconnected: nothing runs on the way out, so all
// stay so, and
// `fallacies reset --journal` of the run's report folder must unpause and
// reconnect them, until an order placed through the stack succeeds.
func TestContainerFaultsAfterSIGKILL(t *testing.T) {
	cli := needDocker(t)
	h := startContainerHold(t, cli)
	c, journal, project := h.c, h.journal, h.project
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 30*time.Second); code != -1 {
		t.Errorf("exit %d after SIGKILL, want -1 (killed)", code)
	}
	if !h.held(t) {
		p, u, n := h.state(t)
		t.Fatalf("after SIGKILL payment is %s, notification %s and user on %v: nothing left for reset to do, the test proves nothing", p.Status, n.Status, u.Networks)
	}

	code, stdout, stderr := runChild(t, "reset", "--journal", journal)
	if code != exitOK || !strings.Contains(stdout, "removed 3 container fault(s)") {
		t.Fatalf("reset --journal: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	p, u, n := h.state(t)
	if p.Status != "running" || n.Status != "running" {
		t.Errorf("after reset payment is %s and notification %s, want both running", p.Status, n.Status)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(u.Networks)), func(a []string) bool { return slices.Contains(a, "user") }) {
		t.Errorf("user after reset is on %v, want back on its network under its service name", u.Networks)
	}
	// Connected means an order goes through user and payment again.
	ep, err := topology.ComposeEndpoints(t.Context(), project)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "an order to go through the reset stack", nil, func() bool {
		code, _, _ := runChild(t, "place-order", "--order", ep.Services["order"], "--timeout", "2s")
		return code == exitOK
	})
	if code, stdout, _ := runChild(t, "reset", "--journal", journal); code != exitOK || !strings.Contains(stdout, "removed 0 container fault(s)") {
		t.Errorf("second reset: exit %d, stdout %q; want nothing left to remove", code, stdout)
	}
}
