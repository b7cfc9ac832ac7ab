package runner

import (
	"encoding/json"
	"testing"

	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/experiments/report/schematest"
)

// packetLossRun is a shortened packet-loss.yaml: its naive variant on one
// payment connection (every call on one HTTP/2 connection, no deadline),
// bursty loss for 6 s of 14 s. The hypotheses are the catalogue's; the
// test reads report.json itself.
const packetLossRun = `
name: packet-loss-e2e
fallacy: network-is-reliable
description: 5% packet loss in bursts on order→payment, one connection, no deadline
load: { rate: 20/s, duration: 14s, timeout: 10s }
variants:
  naive: {}
faults:
  - { name: lossy, at: 4s, for: 6s, target: payment, kind: packet-loss, probability: 5%, correlation: 95%, direction: both }
hypotheses:
  - { when: always, check: "fault.lossy.dropped > 0 and fault.lossy.retransmits > 0", name: the fault bit }
  - { when: during, check: "order.latency.p99 >= before.order.latency.p99 + 200ms", name: the p99 pays a retransmission timeout }
  - { when: always, check: "events.lost == 0" }
`

// TestPacketLossEndToEnd runs packetLossRun on the embedded topology: the
// segment interposed on the payment link carries real TCP. The report
// counts the packets it dropped, the TCP retransmissions and timeouts that
// repaired them, and the p99 of the fault's phase is at least one
// retransmission timeout (200 ms) above the steady state's, while the
// median moves by less.
func TestPacketLossEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 14-second variant")
	}
	res, err := Run(t.Context(), mustParse(t, packetLossRun), Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(schematest.ValidateDir(t, res.Dir), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 1 || len(rep.Variants[0].Faults) != 1 {
		t.Fatalf("error=%q variants=%+v", rep.Error, rep.Variants)
	}
	v := rep.Variants[0]
	c := v.Faults[0].Counters
	t.Logf("counters of the lossy fault: %v", c)
	// A stall of one retransmission timeout is measured against the
	// steady state: on a machine where the median order already takes
	// longer than that timer (the race detector on a loaded machine: p50
	// of seconds in a run), nothing can be timed.
	if p50 := v.Phases["before"].LatencyMs.P50; p50 > 100 {
		t.Skipf("the steady state's median order took %.0f ms, more than half a retransmission timeout: this machine is too slow to time a stall", p50)
	}
	if c["packets"] < 300 || c["dropped"] == 0 || c["retransmits"] == 0 || c["rto_timeouts"] == 0 {
		t.Errorf("counters %v: want hundreds of packets, some dropped, retransmitted, and a retransmission timeout", c)
	}
	if rate := float64(c["dropped"]) / float64(c["packets"]); rate > 0.1 {
		t.Errorf("dropped %d of %d packets (%.2f%%), want about 2%%", c["dropped"], c["packets"], 100*rate)
	}
	// The metric family reads the same counters.
	if got := v.Metrics["always.fault.lossy.rto_timeouts"]; got != float64(c["rto_timeouts"]) {
		t.Errorf("metric fault.lossy.rto_timeouts = %v, counters say %d", got, c["rto_timeouts"])
	}
	before, during := v.Phases["before"].LatencyMs, v.Phases["during"].LatencyMs
	t.Logf("p50 %.1f → %.1f ms, p99 %.1f → %.1f ms", before.P50, during.P50, before.P99, during.P99)
	if during.P99 < before.P99+200 {
		t.Errorf("p99 %.1f ms before, %.1f ms during the loss: want at least one retransmission timeout (200 ms) more", before.P99, during.P99)
	}
	if during.P99-before.P99 <= during.P50-before.P50 {
		t.Errorf("the median moved as much as the tail (p50 %.1f → %.1f, p99 %.1f → %.1f): want the tail to pay", before.P50, during.P50, before.P99, during.P99)
	}
	if !rep.Passed {
		for _, h := range v.Hypotheses {
			t.Logf("%s passed=%v: %s", h.Name, h.Passed, h.Observed)
		}
		t.Error("the hypotheses did not hold")
	}
}

// mtuBlackholeRun is a shortened mtu-blackhole.yaml.
const mtuBlackholeRun = `
name: mtu-blackhole-e2e
fallacy: network-is-homogeneous
description: a 1400-byte path MTU black hole on order→user, full and basic views
load: { rate: 20/s, duration: 10s, timeout: 2s }
variants:
  naive:     { user.history_bytes: 8192, order.user_view: full }
  resilient: { user.history_bytes: 8192, order.user_view: basic }
faults:
  - { name: small-mtu, at: 3s, for: 4s, target: user, kind: mtu-blackhole, mtu: 1400, direction: downstream }
hypotheses:
  - { when: always, check: "events.lost == 0" }
`

// TestMTUBlackholeEndToEnd runs mtuBlackholeRun: with full profiles (8 KB
// of history, full-sized segments) the segment drops the large packets
// and lets the rest through, TCP retransmits them at the same size, and
// every order of the fault's phase times out; with the basic view no
// packet is above the MTU, none is dropped, and nothing fails.
func TestMTUBlackholeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 10-second variants")
	}
	res, err := Run(t.Context(), mustParse(t, mtuBlackholeRun), Options{ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(schematest.ValidateDir(t, res.Dir), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 2 {
		t.Fatalf("error=%q variants=%+v", rep.Error, rep.Variants)
	}
	for _, v := range rep.Variants {
		if len(v.Faults) != 1 {
			t.Fatalf("%s: faults %+v", v.Name, v.Faults)
		}
		c, during := v.Faults[0].Counters, v.Phases["during"]
		t.Logf("%s: counters %v, during: %d requests, success %.1f%%, errors %v", v.Name, c, during.Requests, 100*during.SuccessRate, during.Errors)
		switch v.Name {
		case "naive":
			if c["dropped"] == 0 || c["retransmits"] == 0 || c["dropped"]*2 >= c["packets"] {
				t.Errorf("naive counters %v: want large packets dropped and retransmitted, most packets through", c)
			}
			if during.SuccessRate > 0.5 || during.Errors["DEADLINE_EXCEEDED"] == 0 {
				t.Errorf("naive during: success %.2f, errors %v; want full profiles to hang until the deadline", during.SuccessRate, during.Errors)
			}
		case "resilient":
			if c["packets"] == 0 || c["dropped"] != 0 {
				t.Errorf("resilient counters %v: want packets, none above the MTU", c)
			}
			if during.SuccessRate < 0.99 {
				t.Errorf("resilient during: success %.2f; want the basic view through", during.SuccessRate)
			}
		}
	}
}
