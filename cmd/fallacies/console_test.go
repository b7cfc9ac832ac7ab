package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/topology"
)

// screenshotsEnv names the folder TestConsoleInBrowser writes the
// screenshots of docs/console.md to, when set (make console-screenshots).
const screenshotsEnv = "FALLACIES_CONSOLE_SCREENSHOTS"

// browser returns the path of a Chromium to drive, or skips the test.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH: apt-get install chromium (.ci/run installs it) to run the console's browser test")
	return ""
}

// TestConsoleInBrowser starts `fallacies up --console`, drives its page in
// headless Chromium: starts a load and adds 300 ms of latency on the user
// link by clicking, and checks the fault on the Toxiproxy API and on the
// graph, the p50 shown rising above 300 ms, its removal bringing it back,
// and a page of another site unable to add a fault; then Ctrl-C on up
// leaves no fault in the journal.
func TestConsoleInBrowser(t *testing.T) {
	needBinary(t)
	chrome := browser(t)
	dir := t.TempDir()
	epFile := filepath.Join(dir, "endpoints.json")
	up := startChild(t, "up", "--console", "--toxiproxy-api", "127.0.0.1:0", "--endpoints-file", epFile, "--reports", filepath.Join(dir, "reports"))
	consoleLine := regexp.MustCompile(`console: (http://127\.0\.0\.1:\d+/)`)
	var url string
	waitFor(t, 60*time.Second, "the console's address", up.done, func() bool {
		m := consoleLine.FindStringSubmatch(up.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	ep, err := topology.LoadEndpoints(epFile)
	if err != nil {
		t.Fatal(err)
	}
	api := ep.ToxiproxyAPI

	// The first load of the page: what a browser fetches before any event.
	var size int
	for _, p := range []string{"", "style.css", "app.js", "api/topology", "api/kinds"} {
		resp, err := apiClient.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		size += int(n)
	}
	t.Logf("first page load: %d bytes", size)
	if size > 300<<10 {
		t.Errorf("first page load is %d bytes, want under 300 KB", size)
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1300))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first action starts the browser, which lives as long as the
	// context of that call: no timeout on it; each later step has one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("browser: %s: %v\nup stderr:\n%s", what, err, up.stderr)
		}
	}
	evaluate := func(expr string) any {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("browser: evaluate %s: %v", expr, err)
		}
		return v
	}
	// eventually polls a JavaScript condition every 100 ms.
	eventually := func(limit time.Duration, what, cond string) {
		t.Helper()
		start := time.Now()
		for evaluate(cond) != true {
			if time.Since(start) > limit {
				t.Fatalf("the page: %s: not within %v", what, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	run("open the console", chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(`#kind option[value="latency"]`)))
	eventually(10*time.Second, "connected", `document.getElementById("conn").textContent === "live"`)
	run("start a load of 20 orders/s",
		chromedp.SetValue(chromedp.ID("load-rate"), "20"), chromedp.Click(chromedp.ID("load-start")))
	eventually(30*time.Second, "the load's p50 shown under 100 ms", `(v => v !== "" && Number(v) < 100)(document.getElementById("p50").dataset.ms)`)

	// 300 ms of latency on the user link, by clicking the link on the graph.
	run("click the user link on the graph", chromedp.Click(chromedp.CSS(`#graph g.link[data-link="user"] rect.proxy`)))
	eventually(5*time.Second, "latency on the user proxy chosen", `document.getElementById("target").value === "user" && document.getElementById("kind").value === "latency"`)
	run("set 300 ms", chromedp.SetValue(chromedp.ID("attr-latency"), "300"))
	run("add the fault", chromedp.Click(chromedp.ID("add-fault")))
	clicked := time.Now()
	waitFor(t, 10*time.Second, "the fault's toxics on the Toxiproxy API", up.done, func() bool {
		return len(proxies(t, api)["user"].Toxics) == 2
	})
	eventually(5*time.Second, "the fault drawn on the user link",
		`[...document.querySelectorAll('#graph g.link[data-link="user"] text.fault')].some(e => e.textContent.includes("console-latency-user"))`)
	t.Logf("fault drawn on the graph %v after the click", time.Since(clicked).Round(time.Millisecond))
	eventually(20*time.Second, "the p50 shown above 300 ms", `Number(document.getElementById("p50").dataset.ms) > 300`)
	t.Logf("p50 shown above 300 ms %v after the click", time.Since(clicked).Round(time.Millisecond))
	if shots := os.Getenv(screenshotsEnv); shots != "" {
		screenshots(t, ctx, shots, run, eventually)
	}

	// Removing it brings the p50 back.
	run("remove the fault", chromedp.Click(chromedp.CSS(`#faults li[data-name="console-latency-user"] button.remove`)))
	waitFor(t, 10*time.Second, "the toxics off the Toxiproxy API", up.done, func() bool {
		return len(proxies(t, api)["user"].Toxics) == 0
	})
	eventually(20*time.Second, "the p50 shown back under 100 ms", `Number(document.getElementById("p50").dataset.ms) < 100`)
	if n := evaluate(`document.querySelectorAll('#graph text.fault').length`); n != 0.0 {
		t.Errorf("%v faults still drawn on the graph after the removal", n)
	}

	// A page of another site cannot add a fault: its request is refused
	// before the console reads it.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><script>
fetch(%q, {method: "POST", mode: "no-cors", body: JSON.stringify({kind: "latency", target: "user", attrs: {latency: 5000}})})
  .finally(() => { document.title = "sent"; });
</script>`, url+"api/faults")
	}))
	defer evil.Close()
	run("a page of another site posts a fault", chromedp.Navigate(evil.URL))
	eventually(10*time.Second, "the other site's request sent", `document.title === "sent"`)
	if got := proxies(t, api)["user"].Toxics; len(got) != 0 {
		t.Errorf("a page of another site added a fault: %v", got)
	}
	req, _ := http.NewRequest("POST", url+"api/faults", strings.NewReader(`{"kind": "latency", "target": "user"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", evil.URL)
	if resp, err := apiClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with Origin %s: %d %s, want 403", evil.URL, resp.StatusCode, body)
		}
	}
	cancel() // the browser goes

	// Ctrl-C on up removes what the console put on.
	req, _ = http.NewRequest("POST", url+"api/faults", strings.NewReader(`{"kind": "partition", "target": "payment"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("partition through the API: %s", resp.Status)
	}
	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := up.wait(t, 30*time.Second); code != exitOK {
		t.Errorf("up after Ctrl-C: exit %d, want 0\nstderr:\n%s", code, up.stderr)
	}
	j, err := faults.OpenJournal(journalFor(epFile))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if out, err := j.Outstanding(); err != nil || len(out) != 0 {
		t.Errorf("journal after Ctrl-C: %d outstanding (%v), want none", len(out), err)
	}
}

// screenshots writes the pictures of docs/console.md: the page with the
// latency on, and the waterfall of a slow trace.
func screenshots(t *testing.T, ctx context.Context, dir string, run func(string, ...chromedp.Action[chromedp.Void]), eventually func(time.Duration, string, string)) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Some seconds of chart with the fault on, and a trace it slowed.
	eventually(30*time.Second, "a window of the fault on the chart", `document.querySelectorAll("#chart rect.win").length > 0`)
	time.Sleep(8 * time.Second) // pictures, not assertions: let the chart fill
	shot := func(what string, a chromedp.Action[[]byte]) []byte {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		b, err := chromedp.Run(sctx, a)
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
		return b
	}
	write(t, filepath.Join(dir, "latency.png"), shot("screenshot the page", chromedp.FullScreenshot(100)))
	run("open the slowest trace", chromedp.Click(chromedp.CSS(`#slowest li[data-trace]`)),
		chromedp.WaitVisible(chromedp.CSS(`#waterfall svg`)))
	write(t, filepath.Join(dir, "waterfall.png"), shot("screenshot the waterfall", chromedp.Screenshot(chromedp.ID("traces"))))
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(data))
}
