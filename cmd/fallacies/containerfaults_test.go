package main

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fallacies/fallacies/faults"
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
	h := startContainerRun(t, cli, needBinary(t))
	h.waitHeld(t)
	return h
}

// startContainerRun starts the run with the binary bin (the crash test's
// build, or the test's own) and returns at once; the test's clean-up takes
// the run's project down if the run left it up.
func startContainerRun(t *testing.T, cli []string, bin string) *containerHold {
	t.Helper()
	h := &containerHold{reports: t.TempDir()}
	h.c = startBinary(t, bin, "run", "--quiet", "--reports", h.reports, "testdata/containerhold.yaml")
	t.Cleanup(func() {
		if h.project == "" {
			h.findJournal(t)
		}
		if h.project == "" {
			return // no container fault journaled: no project known to this test
		}
		// A killed run leaves its project up: take it down.
		args := append(slices.Clone(cli[1:]), "-p", h.project, "-f", filepath.Join("..", "..", "docker-compose.yml"), "down", "-v", "--remove-orphans", "-t", "1")
		if out, err := exec.Command(cli[0], args...).CombinedOutput(); err != nil {
			t.Errorf("compose down %s: %v\n%s", h.project, err, out)
		}
	})
	return h
}

// findJournal reports whether the run has journaled a container fault;
// then it sets the journal's path and the run's project from it.
func (h *containerHold) findJournal(t *testing.T) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(h.reports, "*", "faults.journal"))
	if len(files) != 1 {
		return false
	}
	recs := containerRecords(t, files[0])
	if len(recs) == 0 {
		return false
	}
	h.journal, h.project = files[0], recs[0].At
	return true
}

// containerRecords reads the container faults' records of the journal at
// path.
func containerRecords(t *testing.T, path string) []faults.Record {
	t.Helper()
	recs, err := faults.ReadJournal(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var out []faults.Record
	for _, r := range recs {
		if r.Op == faults.OpApply && r.Injector == container.Name {
			ids[r.ID] = true
		}
		if ids[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// waitHeld waits until payment and notification are paused and user
// disconnected.
func (h *containerHold) waitHeld(t *testing.T) {
	t.Helper()
	waitFor(t, 5*time.Minute, "the container faults to be journaled", h.c.done, func() bool { return h.findJournal(t) })
	waitFor(t, time.Minute, "payment and notification paused and user disconnected", h.c.done, func() bool { return h.held(t) })
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
func (h *containerHold) outstanding(t *testing.T) []faults.Entry {
	t.Helper()
	j, err := faults.OpenJournal(h.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	out, err := j.OutstandingOf(container.Name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestContainerFaultsOnEveryWayOut stops `fallacies run` on the compose
// topology while the payment and notification containers are paused and
// the user container disconnected, by SIGINT, by SIGTERM and by a panic of
// a load worker (a build whose workers panic once every fault is on): on
// each way out the run removes all three faults (the journal records each
// removal once docker has unpaused and reconnected), then takes its
// project down, as its teardown does, and exits 130, 143 or 3, the panic
// with its stack in crash.txt of the report folder.
func TestContainerFaultsOnEveryWayOut(t *testing.T) {
	cli := needDocker(t)
	for _, way := range []struct {
		name string
		sig  syscall.Signal // 0: the crash test's panic
		code int
	}{
		{"SIGINT", syscall.SIGINT, 130},
		{"SIGTERM", syscall.SIGTERM, 143},
		{"panic", 0, exitTestbed},
	} {
		t.Run(way.name, func(t *testing.T) {
			var h *containerHold
			if way.sig == 0 {
				// The panic comes once all three faults are on; the
				// journal and the report show they were.
				h = startContainerRun(t, cli, crashBinary(t))
			} else {
				h = startContainerHold(t, cli)
				if err := h.c.cmd.Process.Signal(way.sig); err != nil {
					t.Fatal(err)
				}
			}
			if code := h.c.wait(t, 5*time.Minute); code != way.code {
				t.Errorf("exit %d after %s, want %d\nstderr:\n%s", code, way.name, way.code, h.c.stderr)
			}
			if !h.findJournal(t) {
				t.Fatalf("no container fault journaled in %s: the run never held its faults\nstderr:\n%s", h.reports, h.c.stderr)
			}
			applied, removed := map[string]bool{}, map[string]bool{}
			for _, r := range containerRecords(t, h.journal) {
				switch r.Op {
				case "apply":
					applied[r.ID] = true
				case "removed":
					removed[r.ID] = true
				}
			}
			if len(applied) != 3 || !maps.Equal(applied, removed) {
				t.Errorf("container journal: applied %v, removed %v; want all three faults applied and removed", slices.Sorted(maps.Keys(applied)), slices.Sorted(maps.Keys(removed)))
			}
			if out := h.outstanding(t); len(out) != 0 {
				t.Errorf("the container journal still lists %d fault(s) as on: %+v", len(out), out)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if c, err := (container.Docker{Project: h.project}).Find(ctx, "payment"); !errors.Is(err, container.ErrNoContainer) {
				t.Errorf("payment of %s after the run: %+v, %v; want the project taken down", h.project, c, err)
			}
			dir := reportDir(t, h.reports)
			if way.sig == 0 {
				if !strings.Contains(h.c.stderr.String(), "panic: crash test") {
					t.Errorf("stderr does not name the panic:\n%s", h.c.stderr)
				}
				if _, err := os.Stat(filepath.Join(dir, "crash.txt")); err != nil {
					t.Errorf("no stack in the report folder: %v", err)
				}
			} else if !strings.Contains(h.c.stderr.String(), "every fault applied was removed") {
				t.Errorf("stderr does not say the faults were removed:\n%s", h.c.stderr)
			}
			rep := readReport(t, dir)
			if rep.Passed || len(rep.Variants) != 1 || len(rep.Variants[0].Faults) != 3 {
				t.Errorf("report after %s: passed=%v variants=%+v; want failed with all three faults", way.name, rep.Passed, rep.Variants)
			}
		})
	}
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
