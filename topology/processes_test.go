package topology_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/fallacies/fallacies/internal/testenv"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/topology/proctest"
)

// startProcesses starts the processes topology with a freshly built
// fallacies binary. It returns the topology and a stop function that the
// test may call itself; the cleanup calls it too (Stop is idempotent).
func startProcesses(t *testing.T) (*topology.Processes, func() error) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bin := fallaciesBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	top, err := topology.StartProcesses(ctx, topology.Options{System: system(t), Binary: bin})
	if err != nil {
		t.Fatalf("start processes topology: %v", err)
	}
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return top.Stop(ctx)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop processes topology: %v", err)
		}
	})
	return top, stop
}

// pids returns the process id of every service, failing the test on a
// missing one.
func pids(t *testing.T, top *topology.Processes) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, s := range topology.Services {
		pid := top.PID(s)
		if pid <= 0 {
			t.Fatalf("no process id for %s", s)
		}
		out[s] = pid
	}
	return out
}

// assertGone fails the test for every process that still exists.
func assertGone(t *testing.T, what string, pids map[string]int) {
	t.Helper()
	for s, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: process %d of %s still exists (kill -0: %v)", what, pid, s, err)
		}
	}
}

// TestProcessesHundredOrders is the acceptance test of the processes
// topology: 100 orders, each charged and delivered once, and no child
// process left after Stop.
func TestProcessesHundredOrders(t *testing.T) {
	top, stop := startProcesses(t)
	ep := top.Endpoints()
	if err := ep.Validate(); err != nil {
		t.Fatalf("endpoints: %v", err)
	}
	running := pids(t, top)
	for s, pid := range running {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("process %d of %s is not running: %v", pid, s, err)
		}
	}
	cl := dialAll(t, ep)
	ids := orderIDs(t, "o", 100)
	mustPlace(t, cl.order, ids)
	assertAllAccounted(t, cl, ids)

	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, "after Stop", running)
}

// TestProcessesFaults kills, restarts, pauses and resumes real service
// processes and checks what order's clients see.
func TestProcessesFaults(t *testing.T) {
	top, stop := startProcesses(t)
	ep := top.Endpoints()
	cl := dialAll(t, ep)
	mustPlace(t, cl.order, orderIDs(t, "warm", 1))
	ctx := t.Context()

	t.Run("kill user, then restart", func(t *testing.T) {
		old := top.PID("user")
		if err := top.Kill(ctx, "user"); err != nil {
			t.Fatalf("kill user: %v", err)
		}
		assertGone(t, "after Kill", map[string]int{"user": old})
		_, err := placeOrder(ctx, cl.order, orderIDs(t, "killed", 1)[0], 2*time.Second)
		wantCode(t, "PlaceOrder with user killed", err, codes.Unavailable)

		oldAddr := top.Endpoints().Services["user"]
		// Endpoints may be read from any goroutine while a restart
		// repoints the proxies (run with -race).
		stopReading := make(chan struct{})
		var readers sync.WaitGroup
		var seen []string
		readers.Go(func() {
			for {
				select {
				case <-stopReading:
					return
				default:
				}
				e := top.Endpoints()
				if a := e.Services["user"] + " " + e.UserHTTP; len(seen) == 0 || seen[len(seen)-1] != a {
					seen = append(seen, a)
				}
			}
		})
		err = top.Restart(ctx, "user")
		close(stopReading)
		readers.Wait()
		if err != nil {
			t.Fatalf("restart user: %v", err)
		}
		t.Logf("user addresses seen during the restart: %q", seen)
		if addr := top.Endpoints().Services["user"]; addr == "" || addr == oldAddr {
			t.Errorf("user listens on %q after the restart, %q before: want the new address", addr, oldAddr)
		}
		if pid := top.PID("user"); pid == old || pid <= 0 {
			t.Errorf("user after restart has process id %d, before %d: want a new process", pid, old)
		}
		// order's connection to the user proxy reconnects with backoff;
		// the proxy now points at the new process.
		n := 0
		testenv.EventuallyNil(t, 20*time.Second, "an order through the restarted user", func() error {
			n++
			_, err := placeOrder(ctx, cl.order, orderID(t, "restarted", n), 2*time.Second)
			return err
		})
	})

	t.Run("pause payment, then resume", func(t *testing.T) {
		if err := top.Pause(ctx, "payment"); err != nil {
			t.Fatalf("pause payment: %v", err)
		}
		// Pause returns once the process is stopped, not when the signal
		// is sent: a request taken meanwhile would be answered.
		if p, ok := proctest.Get(top.PID("payment")); !ok || !p.Stopped() {
			t.Fatalf("payment right after Pause returned: state %c, want T (stopped)", p.State)
		}
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				top.Resume(context.Background(), "payment")
			}
		})
		// A paused payment never answers: a call that comes back at all,
		// with DEADLINE_EXCEEDED, was ended by its 300 ms deadline.
		for _, id := range orderIDs(t, "paused", 2) {
			_, err := placeOrder(ctx, cl.order, id, 300*time.Millisecond)
			wantCode(t, "PlaceOrder with payment paused", err, codes.DeadlineExceeded)
		}
		if err := top.Resume(ctx, "payment"); err != nil {
			t.Fatalf("resume payment: %v", err)
		}
		if p, ok := proctest.Get(top.PID("payment")); !ok || p.Stopped() {
			t.Fatalf("payment right after Resume returned: state %c, want it running", p.State)
		}
		resumed = true
		n := 0
		testenv.EventuallyNil(t, 10*time.Second, "an order after the resume", func() error {
			n++
			_, err := placeOrder(ctx, cl.order, orderID(t, "resumed", n), 300*time.Millisecond)
			return err
		})
		if n > 3 {
			t.Errorf("%d orders until one succeeded after resume, want the first or nearly", n)
		}
	})

	running := pids(t, top)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, "after Stop", running)
}

// TestProcessesFailedStart points the processes topology at a binary that
// does not exist: the start fails with an error naming it, and what was
// started (nats-server, Toxiproxy) is stopped.
func TestProcessesFailedStart(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	bin := filepath.Join(t.TempDir(), "no-such-fallacies")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	top, panicked, err := startProcessesRecover(ctx, topology.Options{System: system(t), Binary: bin})
	if panicked != nil {
		t.Fatalf("a failed start panicked instead of returning its error: %v", panicked)
	}
	if err == nil {
		top.Stop(context.Background())
		t.Fatal("start with a missing binary succeeded")
	}
	if top != nil {
		t.Errorf("start failed but returned a topology")
	}
	if !strings.Contains(err.Error(), bin) {
		t.Errorf("error %q does not name the binary %s", err, bin)
	}
	goleak.VerifyNone(t, ignore)
}

func startProcessesRecover(ctx context.Context, o topology.Options) (top *topology.Processes, panicked any, err error) {
	defer func() { panicked = recover() }()
	top, err = topology.StartProcesses(ctx, o)
	return top, nil, err
}
