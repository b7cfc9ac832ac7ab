package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/fallacies/fallacies/console"
)

// TestRunReportVerdict: the console of a run shows each experiment's own
// verdict, so an inconclusive one (exit 4) is INCONCLUSIVE on the page,
// not FAILED; an experiment that ended with an error and no report is
// ERROR; only a report that passed with no error is passed.
func TestRunReportVerdict(t *testing.T) {
	c, err := console.New(console.Options{Run: true, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	c.RunReport("inconclusive", "", "INCONCLUSIVE", nil)
	c.RunReport("failed", "", "FAIL", nil)
	c.RunReport("no-report", "", "", errors.New("the testbed failed"))
	c.RunReport("passed", "", "PASS", nil)
	c.RunReport("passed-with-error", "", "PASS", errors.New("write report: disk full"))

	resp, err := http.Get("http://" + lis.Addr().String() + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Run *struct {
			Reports []struct {
				Experiment string `json:"experiment"`
				Passed     bool   `json:"passed"`
				Verdict    string `json:"verdict"`
			} `json:"reports"`
		} `json:"run"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		verdict string
		passed  bool
	}{{"INCONCLUSIVE", false}, {"FAIL", false}, {"ERROR", false}, {"PASS", true}, {"ERROR", false}}
	if st.Run == nil || len(st.Run.Reports) != len(want) {
		t.Fatalf("state's run: %+v, want %d reports", st.Run, len(want))
	}
	for i, w := range want {
		if r := st.Run.Reports[i]; r.Verdict != w.verdict || r.Passed != w.passed {
			t.Errorf("%s: verdict %q passed %v, want %q passed %v", r.Experiment, r.Verdict, r.Passed, w.verdict, w.passed)
		}
	}
}
