package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fallacies/fallacies/experiments/report"
)

// sseEvent is one Server-Sent Event of the console.
type sseEvent struct {
	name string
	data []byte
}

// runConsoleState is what these tests read of the console's state.
type runConsoleState struct {
	Faults []struct {
		Name, Target, Text string
	} `json:"faults"`
	Windows []struct {
		Name   string    `json:"name"`
		Target string    `json:"target"`
		End    time.Time `json:"end"`
	} `json:"windows"`
	Run *struct {
		Experiment string  `json:"experiment"`
		Variant    string  `json:"variant"`
		Phase      string  `json:"phase"`
		LeftS      float64 `json:"left_s"`
		Ended      bool    `json:"ended"`
		Reports    []struct {
			Experiment string `json:"experiment"`
			Passed     bool   `json:"passed"`
			Verdict    string `json:"verdict"`
			Dir        string `json:"dir"`
			URL        string `json:"url"`
		} `json:"reports"`
	} `json:"run"`
	Load struct {
		Series []struct {
			N int `json:"n"`
		} `json:"series"`
	} `json:"load"`
	Locked string `json:"locked"`
}

// events streams GET url/api/events into a channel, closed when the
// stream ends.
func events(t *testing.T, ctx context.Context, url string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatalf("GET %sapi/events: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %sapi/events: %s", url, resp.Status)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = []byte(strings.TrimPrefix(line, "data: "))
			case line == "" && ev.name != "":
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch
}

// post sends a JSON POST and returns the status and the error message.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := apiClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var msg struct{ Error string }
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &msg)
	return resp.StatusCode, msg.Error
}

// verdictCode is the exit code of a run whose one experiment's verdict
// the page shows (report.Report.Verdict).
func verdictCode(verdict string) int {
	switch verdict {
	case "PASS":
		return exitOK
	case "INCONCLUSIVE":
		return report.ExitCodeInconclusive
	case "ERROR":
		return exitTestbed
	}
	return exitFailed
}

// startRunWithConsole starts `fallacies run --console` on the short
// experiment of testdata/console.yaml and returns it with its console's
// address.
func startRunWithConsole(t *testing.T, reports string, extra ...string) (*child, string) {
	t.Helper()
	args := append([]string{"run", "--console", "--quiet", "--reports", reports}, extra...)
	run := startChild(t, append(args, "testdata/console.yaml")...)
	consoleLine := regexp.MustCompile(`console: (http://127\.0\.0\.1:\d+/) \(the page of this run`)
	var url string
	waitFor(t, 60*time.Second, "the console's address", run.done, func() bool {
		if m := consoleLine.FindStringSubmatch(run.stderr.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return run, url
}

// TestRunConsole runs a short experiment with --console and follows its
// page's event stream: the run's experiment and phases, its fault
// appearing on the user link and going, the load's seconds; a fault or a
// load posted during the run is refused with 409 and the reason; the last
// event is "ended" with the report's folder, and then the console is gone
// with the run.
func TestRunConsole(t *testing.T) {
	reports := t.TempDir()
	run, url := startRunWithConsole(t, reports)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stream := events(t, ctx, url)

	phases := map[string]bool{}
	var faultOn, faultOff, refused bool
	var last runConsoleState
	var ended *runConsoleState
	for ev := range stream {
		var st runConsoleState
		if err := json.Unmarshal(ev.data, &st); err != nil {
			t.Fatalf("event %s: %v: %s", ev.name, err, ev.data)
		}
		if ended != nil {
			t.Errorf("event %q after \"ended\": want ended to be the last", ev.name)
		}
		if st.Run == nil {
			t.Fatalf("event %s without run: %s", ev.name, ev.data)
		}
		last = st
		if ev.name == "ended" {
			ended = &st
			continue
		}
		phases[st.Run.Phase] = true
		for _, f := range st.Faults {
			if f.Name == "slow-user" && f.Target == "user" && strings.Contains(f.Text, "latency") {
				faultOn = true
			}
		}
		if faultOn && len(st.Faults) == 0 {
			for _, w := range st.Windows {
				faultOff = faultOff || (w.Name == "slow-user" && w.Target == "user" && !w.End.IsZero())
			}
		}
		if !refused && st.Run.Experiment == "cli-console" && !st.Run.Ended {
			refused = true
			for _, p := range []struct{ path, body string }{
				{"api/faults", `{"kind": "latency", "target": "user", "attrs": {"latency": 1000}}`},
				{"api/load", `{"rate": 100}`},
				{"api/experiment", `{"name": "latency"}`},
			} {
				code, msg := post(t, url+p.path, p.body)
				if code != http.StatusConflict || !strings.Contains(msg, "experiment cli-console is running") || !strings.Contains(msg, "only watches") {
					t.Errorf("POST /%s during the run: %d %q, want 409 saying the run only watches", p.path, code, msg)
				}
			}
			if st.Locked == "" {
				t.Errorf("state during the run: locked is empty, want the reason the page's controls are disabled")
			}
		}
	}
	for _, p := range []string{"before", "during", "after"} {
		if !phases[p] {
			t.Errorf("phase %s never in the stream (saw %v)", p, phases)
		}
	}
	if !faultOn || !faultOff {
		t.Errorf("fault slow-user on the user link: seen on %v, seen off with its window closed %v", faultOn, faultOff)
	}
	if !refused {
		t.Error("no state of the run in progress to post against")
	}
	if ended == nil {
		t.Fatalf("the stream ended without an \"ended\" event; last state %+v\nstderr:\n%s", last, run.stderr)
	}
	if !ended.Run.Ended || len(ended.Run.Reports) != 1 || ended.Run.Reports[0].Experiment != "cli-console" {
		t.Fatalf("ended: %+v, want the run ended with the report of cli-console", ended.Run)
	}
	if _, err := os.Stat(filepath.Join(ended.Run.Reports[0].Dir, "report.json")); err != nil {
		t.Errorf("ended names report folder %s: %v", ended.Run.Reports[0].Dir, err)
	}
	if len(last.Load.Series) < 3 {
		t.Errorf("%d seconds of the run's load on the chart, want at least 3", len(last.Load.Series))
	}
	// The console stops with the run: nothing answers there any more.
	// (The verdict is the machine's: under -race and a loaded machine the
	// steady state may not hold; the exit code says the same as the page.)
	if code, want := run.wait(t, 60*time.Second), verdictCode(ended.Run.Reports[0].Verdict); code != want {
		t.Errorf("run --console: exit %d, want %d as the page's verdict (%s)\nstdout:\n%s\nstderr:\n%s", code, want, ended.Run.Reports[0].Verdict, run.stdout, run.stderr)
	}
	if resp, err := apiClient.Get(url + "api/state"); err == nil {
		resp.Body.Close()
		t.Errorf("GET %sapi/state after the run: %s, want the console gone", url, resp.Status)
	}
}

// TestRunConsoleHold: with --console-hold the console stays up after the
// run, says it ended, serves the run's report, still refuses changes, and
// Ctrl-C stops it with the run's own exit code.
func TestRunConsoleHold(t *testing.T) {
	reports := t.TempDir()
	run, url := startRunWithConsole(t, reports, "--console-hold", "5m")
	waitFor(t, 2*time.Minute, "the console holding after the run", run.done, func() bool {
		return strings.Contains(run.stderr.String(), "console: the run has ended; its page stays up at "+url)
	})
	resp, err := apiClient.Get(url + "api/state")
	if err != nil {
		t.Fatal(err)
	}
	var st runConsoleState
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Run == nil || !st.Run.Ended || len(st.Run.Reports) != 1 || st.Run.Reports[0].URL == "" {
		t.Fatalf("state while held: %+v, want the run ended with its report's URL", st.Run)
	}
	resp, err = apiClient.Get(strings.TrimSuffix(url, "/") + st.Run.Reports[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "cli-console") {
		t.Errorf("GET %s: %s, %d bytes, want the run's report.html", st.Run.Reports[0].URL, resp.Status, len(page))
	}
	if code, msg := post(t, url+"api/faults", `{"kind": "latency", "target": "user"}`); code != http.StatusConflict || !strings.Contains(msg, "has ended") {
		t.Errorf("POST /api/faults after the run: %d %q, want 409 saying the run has ended", code, msg)
	}
	if err := run.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, want := run.wait(t, 30*time.Second), verdictCode(st.Run.Reports[0].Verdict); code != want {
		t.Errorf("Ctrl-C while the console holds: exit %d, want the run's own %d\nstderr:\n%s", code, want, run.stderr)
	}
}
