package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/topology"
)

// syncBuffer is a bytes.Buffer safe to read while a child writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a fallacies process started by a test.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // of Wait, once done is closed
}

// startChild starts the binary with args; the test's clean-up kills it if
// it is still running.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	return startBinary(t, needBinary(t), args...)
}

// startBinary is startChild for another build of fallacies (crashBinary).
func startBinary(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start fallacies %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// wait waits for the child to exit and returns its exit code (-1 when a
// signal killed it).
func (c *child) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(limit):
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("fallacies %s did not exit within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(c.cmd.Args[1:], " "), limit, c.stdout, c.stderr)
	}
	return c.cmd.ProcessState.ExitCode()
}

// runChild runs the binary to its end.
func runChild(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	c := startChild(t, args...)
	code := c.wait(t, 60*time.Second)
	return code, c.stdout.String(), c.stderr.String()
}

// TestSignals interrupts a `fallacies run --target` child while its fault
// is on: SIGINT and SIGTERM must take the fault off before the process
// exits; after SIGKILL the journal remembers it and `fallacies reset`
// takes it off.
func TestSignals(t *testing.T) {
	needBinary(t)
	tg := startTarget(t)
	api := tg.ep.ToxiproxyAPI
	journal := tg.file + ".journal"

	// startRun starts the long experiment and returns once its fault is on.
	startRun := func(t *testing.T, reports string) *child {
		t.Helper()
		c := startChild(t, "run", "--quiet", "--reports", reports, "--target", tg.file, "testdata/long.yaml")
		waitFor(t, 30*time.Second, "the slow-user toxic", c.done, func() bool { return toxicOn(t, api, "user", "slow-user") })
		return c
	}

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			reports := t.TempDir()
			c := startRun(t, reports)
			if err := c.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			want := 128 + int(sig) // 130, 143: interrupted, not broken (3)
			if code := c.wait(t, 30*time.Second); code != want {
				t.Errorf("exit %d, want %d\nstderr:\n%s", code, want, c.stderr)
			}
			if !strings.Contains(c.stderr.String(), "every fault applied was removed") {
				t.Errorf("stderr does not say the faults were removed:\n%s", c.stderr)
			}
			assertClean(t, api)
			assertJournalClosed(t, journal, 1)
			assertInterrupted(t, readReport(t, reportDir(t, reports)), want)
		})
	}

	t.Run("SIGKILL then reset", func(t *testing.T) {
		c := startRun(t, t.TempDir())
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := c.wait(t, 30*time.Second); code != -1 {
			t.Errorf("exit %d after SIGKILL, want -1 (killed)", code)
		}
		// Nothing ran on the way out: the fault is still on, and the
		// journal lists it.
		if !toxicOn(t, api, "user", "slow-user") {
			t.Fatal("the toxic is gone after SIGKILL: nothing left for reset to do, the test proves nothing")
		}
		j, err := faults.OpenJournal(journal)
		if err != nil {
			t.Fatal(err)
		}
		out, err := j.Outstanding()
		j.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].Fault.Name != "slow-user" || out[0].Fault.Target != "user" {
			t.Fatalf("journal outstanding = %+v, want slow-user on proxy user", out)
		}

		// A toxic someone added by hand is not the journal's: plain reset
		// leaves it, --all removes it.
		addToxic(t, api, "payment", `{"name":"by-hand","type":"latency","stream":"downstream","attributes":{"latency":10}}`)

		code, stdout, stderr := runChild(t, "reset", "--target", tg.file)
		if code != exitOK {
			t.Fatalf("reset: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "removed 1 fault") {
			t.Errorf("reset stdout %q should say it removed 1 fault", stdout)
		}
		if left := toxicNames(proxies(t, api)); !slices.Equal(left, []string{"payment/by-hand"}) {
			t.Errorf("after reset, toxics %v; want only the hand-made payment/by-hand", left)
		}
		assertJournalClosed(t, journal, 1)

		// Reset again: nothing journaled is left, nothing is touched.
		if code, stdout, stderr := runChild(t, "reset", "--target", tg.file); code != exitOK || !strings.Contains(stdout, "removed 0 fault") {
			t.Errorf("second reset: exit %d, stdout %q, stderr %q; want 0 and 0 faults removed", code, stdout, stderr)
		}

		if code, stdout, stderr := runChild(t, "reset", "--target", tg.file, "--all"); code != exitOK {
			t.Fatalf("reset --all: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		assertClean(t, api)
	})

	t.Run("reset --all enables a disabled proxy", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPatch, apiURL(api)+"/proxies/payment", strings.NewReader(`{"enabled":false}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := apiClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if proxies(t, api)["payment"].Enabled {
			t.Fatal("could not disable the payment proxy by hand")
		}
		if code, stdout, stderr := runChild(t, "reset", "--toxiproxy-api", api, "--all"); code != exitOK {
			t.Fatalf("reset --all: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		assertClean(t, api)
	})
}

// TestUp starts `fallacies up` as a child process, places orders through
// it, drives its Toxiproxy with the upstream client, and stops it with
// SIGINT.
func TestUp(t *testing.T) {
	needBinary(t)
	file := t.TempDir() + "/endpoints.json"
	up := startChild(t, "up", "--toxiproxy-api", "127.0.0.1:0", "--endpoints-file", file)
	waitFor(t, 30*time.Second, "the endpoints file", up.done, func() bool {
		_, err := os.Stat(file)
		return err == nil
	})
	ep, err := topology.LoadEndpoints(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Validate(); err != nil {
		t.Fatalf("endpoints file: %v", err)
	}
	if !strings.Contains(up.stdout.String(), "fallacies is up") {
		t.Errorf("up did not say it is up:\n%s", up.stdout)
	}

	placed := regexp.MustCompile(`(?m)PLACED\s+([0-9.]+)ms`)
	placeOrder := func(t *testing.T) time.Duration {
		t.Helper()
		code, stdout, stderr := runChild(t, "place-order", "--target", file)
		if code != exitOK {
			t.Fatalf("place-order: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		m := placed.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("place-order output has no PLACED line:\n%s", stdout)
		}
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ms * float64(time.Millisecond))
	}
	placeOrder(t)

	// The upstream Toxiproxy client sees the documented proxies.
	tc := toxiclient.NewClient(ep.ToxiproxyAPI)
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	ps, err := tc.Proxies()
	if err != nil {
		t.Fatalf("toxiproxy client: %v", err)
	}
	var names []string
	for n := range ps {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"nats-ledger", "nats-notification", "nats-order", "payment", "user", "user-http"}
	if !slices.Equal(names, want) {
		t.Errorf("proxies %v, want %v", names, want)
	}
	for n, p := range ps {
		if ep.Proxies[n] != p.Listen {
			t.Errorf("proxy %s listens on %s, the endpoints file says %s", n, p.Listen, ep.Proxies[n])
		}
	}

	// A latency toxic added with the client shows in the order's latency.
	const delay = 300 * time.Millisecond
	if _, err := ps["user"].AddToxic("test-latency", "latency", "downstream", 1, toxiclient.Attributes{"latency": delay.Milliseconds()}); err != nil {
		t.Fatalf("add latency toxic: %v", err)
	}
	if took := placeOrder(t); took < delay {
		t.Errorf("place-order took %v with %v on the order→user link; want at least that", took, delay)
	}
	if err := ps["user"].RemoveToxic("test-latency"); err != nil {
		t.Fatalf("remove latency toxic: %v", err)
	}

	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := up.wait(t, 30*time.Second); code != exitOK {
		t.Errorf("up: exit %d after SIGINT, want 0\nstderr:\n%s", code, up.stderr)
	}
	if !strings.Contains(up.stderr.String(), "stopped") {
		t.Errorf("up did not say it stopped:\n%s", up.stderr)
	}
	// Its Toxiproxy is gone with it.
	if _, err := apiClient.Get(apiURL(ep.ToxiproxyAPI) + "/version"); err == nil {
		t.Errorf("toxiproxy API %s still answers after up stopped", ep.ToxiproxyAPI)
	}
}

// TestCrash runs a binary whose load workers panic once the fault is on
// (the runner's crash test, set at link time) against a target: a crash of the runner exits 3
// (never 2, which means invalid input) with one line on stderr, the stack
// in crash.txt of the report folder, and the fault removed.
func TestCrash(t *testing.T) {
	bin := crashBinary(t)
	tg := startTarget(t)
	reports := t.TempDir()
	cmd := exec.Command(bin, "run", "--quiet", "--reports", reports, "--target", tg.file, "testdata/long.yaml")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitTestbed {
		t.Fatalf("exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", code, err, exitTestbed, stdout.String(), stderr.String())
	}
	oneLine(t, "stderr of a crash", stderr.String())
	if !strings.Contains(stderr.String(), "panic: crash test") || !strings.Contains(stderr.String(), "crash.txt") {
		t.Errorf("stderr %q should name the panic and the stack's file", stderr.String())
	}
	stack, err := os.ReadFile(filepath.Join(reportDir(t, reports), "crash.txt"))
	if err != nil {
		t.Fatalf("no stack file in the report folder: %v", err)
	}
	if !strings.Contains(string(stack), "goroutine") || !strings.Contains(string(stack), "experiments/load") {
		t.Errorf("crash.txt holds no stack of the load's goroutine:\n%s", stack)
	}
	assertClean(t, tg.ep.ToxiproxyAPI)
}

// crashBinary builds a fallacies binary whose load workers panic once
// every fault of the experiment is on (the runner's crash test, set at
// link time) and returns its path.
func crashBinary(t *testing.T) string {
	t.Helper()
	needBinary(t)
	bin := filepath.Join(t.TempDir(), "fallacies-crash")
	args := []string{"build", "-o", bin, "-ldflags", "-X github.com/fallacies/fallacies/experiments/runner.crashTest=load"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunRefusesExistingFaults runs `fallacies run --target` against a
// real Toxiproxy that already carries a toxic and a disabled proxy: it
// refuses with exit 2 naming both, before any load, unless
// --allow-existing-faults.
func TestRunRefusesExistingFaults(t *testing.T) {
	needBinary(t)
	tg := startTarget(t)
	api := tg.ep.ToxiproxyAPI
	addToxic(t, api, "user", `{"name":"by-hand","type":"latency","stream":"downstream","attributes":{"latency":300}}`)
	req, err := http.NewRequest(http.MethodPost, apiURL(api)+"/proxies/payment", strings.NewReader(`{"enabled":false}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if proxies(t, api)["payment"].Enabled {
		t.Fatal("could not disable the payment proxy by hand")
	}

	reports := t.TempDir()
	code, stdout, stderr := runChild(t, "run", "--quiet", "--reports", reports, "--target", tg.file, "testdata/hold.yaml")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitUsage, stdout, stderr)
	}
	for _, want := range []string{"proxy user: toxics by-hand (latency, downstream)", "proxy payment: disabled", "--allow-existing-faults", "fallacies reset"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if entries, _ := os.ReadDir(reports); len(entries) != 0 {
		t.Errorf("a refused run wrote %d report folders: it started", len(entries))
	}
	if ps := proxies(t, api); ps["payment"].Enabled || len(ps["user"].Toxics) != 1 {
		t.Errorf("the refused run touched the faults it found: %+v", ps)
	}

	// Asked for, the run goes ahead on top of them and leaves them as
	// they were.
	code, stdout, stderr = runChild(t, "run", "--quiet", "--reports", reports, "--allow-existing-faults", "--target", tg.file, "testdata/hold.yaml")
	if code == exitUsage || code == exitTestbed {
		t.Fatalf("with --allow-existing-faults: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if ps := proxies(t, api); ps["payment"].Enabled || !slices.Equal(toxicNames(ps), []string{"user/by-hand"}) {
		t.Errorf("after the run, proxies %+v; want the hand-made toxic and the disabled proxy as they were", ps)
	}
	// The way out the refusal names.
	if code, stdout, stderr := runChild(t, "reset", "--target", tg.file, "--all"); code != exitOK {
		t.Fatalf("reset --all: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	assertClean(t, api)
}

// TestReadOnlyCommandsDoNotTrapSignals checks that a command that starts
// nothing leaves SIGTERM its default meaning: `fallacies health`, stuck on
// a server that accepts and never answers, dies of the signal at once,
// where a run (TestSignals) traps it to remove its faults first.
func TestReadOnlyCommandsDoNotTrapSignals(t *testing.T) {
	needBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	c := startChild(t, "health", "--timeout", "60s", l.Addr().String())
	select {
	case conn := <-accepted: // the child is dialling: it is in the command
		defer conn.Close()
	case <-c.done:
		t.Fatalf("health exited before connecting: %v\nstderr:\n%s", c.err, c.stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("health never connected")
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 10*time.Second); code != -1 {
		t.Errorf("exit %d after SIGTERM, want -1 (killed by the signal, not trapped)\nstderr:\n%s", code, c.stderr)
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("process state %v: want killed by SIGTERM", c.cmd.ProcessState)
	}
}
