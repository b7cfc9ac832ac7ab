package docs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README marks the blocks this test runs with an HTML comment on the
// line before the fence:
//
//	<!-- readme-test: up -->   the command that starts the system (make up-embedded)
//	<!-- readme-test: run -->  commands run as written, top to bottom, in a second terminal
const (
	markUp  = "<!-- readme-test: up -->"
	markRun = "<!-- readme-test: run -->"
	// documentedAPI is the Toxiproxy API address the README's commands use;
	// the test's system listens elsewhere and the address is replaced.
	documentedAPI = "127.0.0.1:8474"
)

// documentedExit is a command's comment stating its exit code: "# exit 1: why".
var documentedExit = regexp.MustCompile(`#\s*exit (\d+)\b`)

// readmeBlocks returns the shell blocks of README.md that follow mark.
func readmeBlocks(t *testing.T, readme, mark string) [][]string {
	t.Helper()
	var blocks [][]string
	rest := readme
	for {
		i := strings.Index(rest, mark)
		if i < 0 {
			return blocks
		}
		rest = strings.TrimLeft(rest[i+len(mark):], "\n")
		if !strings.HasPrefix(rest, "```sh\n") {
			t.Fatalf("README.md: %s is not followed by a ```sh block", mark)
		}
		body, after, ok := strings.Cut(strings.TrimPrefix(rest, "```sh\n"), "\n```")
		if !ok {
			t.Fatalf("README.md: unterminated block after %s", mark)
		}
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
		rest = after
	}
}

// syncBuffer is a bytes.Buffer safe to read while a child writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// buildTools puts bin/fallacies, bin/toxiproxy-cli and bin/grpcurl into
// dir/bin: the binary built from this tree, the tools at the versions
// make tools pins (the repository's bin/ copies when make tools ran).
func buildTools(t *testing.T, dir string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "fallacies"), "./cmd/fallacies")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fallacies: %v\n%s", err, out)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	pin := func(re string, src []byte) string {
		m := regexp.MustCompile(re).FindSubmatch(src)
		if m == nil {
			t.Fatalf("no version pinned: %s", re)
		}
		return string(m[1])
	}
	tools := []struct{ name, pkg, version, installed string }{
		{"toxiproxy-cli", "github.com/Shopify/toxiproxy/v2/cmd/cli", pin(`(?m)^\s*github.com/Shopify/toxiproxy/v2 (v\S+)`, gomod), "cli"},
		{"grpcurl", "github.com/fullstorydev/grpcurl/cmd/grpcurl", pin(`(?m)^GRPCURL_VERSION\s*:=\s*(\S+)`, makefile), "grpcurl"},
	}
	for _, tool := range tools {
		dst := filepath.Join(bin, tool.name)
		if made, err := filepath.Abs(filepath.Join(root, "bin", tool.name)); err == nil {
			if _, err := os.Stat(made); err == nil {
				if err := os.Symlink(made, dst); err != nil {
					t.Fatal(err)
				}
				continue
			}
		}
		gobin := filepath.Join(dir, "gobin")
		install := exec.Command("go", "install", tool.pkg+"@"+tool.version)
		install.Env = append(os.Environ(), "GOBIN="+gobin)
		if out, err := install.CombinedOutput(); err != nil {
			t.Skipf("%s is not in bin/ and cannot be installed (make tools needs the Go module proxy): %v\n%s", tool.name, err, out)
		}
		if err := os.Rename(filepath.Join(gobin, tool.installed), dst); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadmeByHandFlow runs the README's by-hand flow as written against a
// real fallacies up: the system block's command, then every command of the
// run blocks, top to bottom, with the Toxiproxy port replaced by the one
// the system really got; then every command up's "Try" block printed. It
// fails on the first command that exits non-zero, and when the flow leaves
// a toxic behind.
func TestReadmeByHandFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs an experiment (about a minute)")
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	ups := readmeBlocks(t, readme, markUp)
	if len(ups) != 1 || len(ups[0]) != 1 || !strings.HasPrefix(ups[0][0], "make up-embedded") {
		t.Fatalf("README.md: want one %s block with `make up-embedded`, got %q", markUp, ups)
	}
	// The flags it passes, with every documented port made free.
	var upFlags []string
	if m := regexp.MustCompile(`UP_FLAGS="([^"]*)"`).FindStringSubmatch(ups[0][0]); m != nil {
		upFlags = strings.Fields(m[1])
	}
	for i, f := range upFlags {
		if strings.HasPrefix(f, "127.0.0.1:") {
			upFlags[i] = "127.0.0.1:" + freePort(t)
		}
	}
	runs := readmeBlocks(t, readme, markRun)
	if len(runs) == 0 {
		t.Fatalf("README.md has no %s block", markRun)
	}
	// What make up-embedded runs is what this test starts.
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^up-embedded:.*\n\t(.*)$`).FindSubmatch(makefile)
	if recipe == nil || !strings.Contains(string(recipe[1]), "up --endpoints-file endpoints.json") || !strings.Contains(string(recipe[1]), "$(UP_FLAGS)") {
		t.Fatalf("Makefile: make up-embedded no longer runs `fallacies up --endpoints-file endpoints.json … $(UP_FLAGS)`: %q", recipe)
	}

	dir := t.TempDir()
	buildTools(t, dir)
	experiments, err := filepath.Abs(filepath.Join(root, "experiments"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(experiments, filepath.Join(dir, "experiments")); err != nil {
		t.Fatal(err)
	}

	// The system, as make up-embedded starts it, with the README's
	// UP_FLAGS and its Toxiproxy API on a free port.
	args := append([]string{"up", "--endpoints-file", "endpoints.json", "--toxiproxy-api", "127.0.0.1:0"}, upFlags...)
	up := exec.Command(filepath.Join(dir, "bin", "fallacies"), args...)
	up.Dir = dir
	var upOut, upErr syncBuffer
	up.Stdout, up.Stderr = &upOut, &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { up.Wait(); close(exited) }()
	t.Cleanup(func() {
		up.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			up.Process.Kill()
			<-exited
		}
	})
	endpoints := filepath.Join(dir, "endpoints.json")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(upOut.String(), "Press Ctrl-C") {
		select {
		case <-exited:
			t.Fatalf("fallacies up exited:\n%s\n%s", upOut.String(), upErr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fallacies up not ready after 2m:\n%s\n%s", upOut.String(), upErr.String())
		}
	}
	var ep map[string]string
	if b, err := os.ReadFile(endpoints); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	api := strings.TrimPrefix(ep["toxiproxy_api"], "http://")
	if _, _, err := net.SplitHostPort(api); err != nil {
		t.Fatalf("endpoints.json: toxiproxy_api %q: %v", ep["toxiproxy_api"], err)
	}

	// sh runs one documented command; it must exit 0, or with the code its
	// comment documents ("# exit 1: …"), and then fail only as documented.
	sh := func(t *testing.T, line string) string {
		t.Helper()
		want := 0
		if m := documentedExit.FindStringSubmatch(line); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if code != want {
			t.Fatalf("the documented command exited %d, want %d: %s\n%v\n%s", code, want, line, err, out)
		}
		if want == 1 && strings.Contains(line, "only the trace hypothes") {
			for _, l := range strings.Split(string(out), "\n") {
				if f := strings.Fields(l); len(f) > 0 && f[0] == "FAIL" && !strings.Contains(l, "trace.") {
					t.Errorf("%s: a hypothesis that is not about traces failed, the README says only the trace one does:\n%s", line, l)
				}
			}
		}
		return string(out)
	}
	_, curlErr := exec.LookPath("curl")
	for _, block := range runs {
		if strings.HasPrefix(block[0], "curl") && curlErr != nil {
			t.Logf("curl is not installed: the curl block is not run")
			continue
		}
		for _, line := range block {
			sh(t, strings.ReplaceAll(line, documentedAPI, api))
		}
	}
	// The flow ends where it promises: no toxic left on any proxy.
	assertNoToxics(t, ep["toxiproxy_api"])

	// up's Try block: every command works when pasted (the experiment ran above).
	_, try, ok := strings.Cut(upOut.String(), "\nTry")
	if !ok {
		t.Fatalf("fallacies up printed no Try block:\n%s", upOut.String())
	}
	try, _, _ = strings.Cut(try, "\n\n")
	n := 0
	for _, line := range strings.Split(try, "\n")[1:] {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, " run ") {
			continue
		}
		sh(t, line)
		n++
	}
	if n < 4 {
		t.Errorf("up's Try block has %d commands, want at least 4:\n%s", n, try)
	}
	assertNoToxics(t, ep["toxiproxy_api"])
}

// assertNoToxics fails when a proxy of the Toxiproxy at apiURL has a toxic.
func assertNoToxics(t *testing.T, apiURL string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, apiURL+"/proxies", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("toxiproxy API: %v", err)
	}
	defer resp.Body.Close()
	var proxies map[string]struct {
		Toxics []struct{ Name string } `json:"toxics"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
		t.Fatalf("toxiproxy API: %v", err)
	}
	for name, p := range proxies {
		for _, tx := range p.Toxics {
			t.Errorf("proxy %s still has toxic %s after the flow", name, tx.Name)
		}
	}
	if len(proxies) == 0 {
		t.Errorf("toxiproxy at %s lists no proxy", apiURL)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
