package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Bounds of the tracing-cost measurement.
const (
	traceRound  = time.Second // one saturation round of one configuration
	tracePairs  = 3           // untraced/traced round pairs per repetition
	traceClient = chainClients
)

// tracingCost measures what recording every span costs the full chain:
// an untraced and a traced embedded topology up side by side, saturated in
// alternating one-second rounds (so that other load on the machine hits
// both alike), every round CPU-profiled so that its CPU time is charged to
// the components of the chain.
func (b *bench) tracingCost(ctx context.Context) ([]*Section, error) {
	off, err := startChain(ctx, "off", "toff", 0)
	if err != nil {
		return nil, err
	}
	defer off.stop()
	on, err := startChain(ctx, "on", "ton", 1)
	if err != nil {
		return nil, err
	}
	defer on.stop()
	systems := []*chainSystem{off, on}

	type tally struct {
		orders            int64
		elapsed, cpu      time.Duration
		mallocs, bytes    uint64
		spans             int
		byComp            map[string]float64 // µs of CPU
		rate, cpuPerOrder sample
	}
	tallies := []*tally{{byComp: map[string]float64{}}, {byComp: map[string]float64{}}}
	var ratio, cpuRatio sample
	for rep := range b.cfg.Reps {
		repOrders, repElapsed, repCPU := [2]int64{}, [2]time.Duration{}, [2]time.Duration{}
		for pair := range tracePairs {
			for k := range systems {
				i := (k + pair + rep) % 2 // alternate which goes first
				cs, t := systems[i], tallies[i]
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				prof, err := startCPUProfile()
				if err != nil {
					return nil, err
				}
				l, cpu, err := cs.saturateFor(ctx, fmt.Sprintf("r%dp%d", rep, pair), traceRound)
				shares, perr := prof.stop(b.profilePath(fmt.Sprintf("cpu-%s-r%dp%d.pb.gz", cs.name, rep, pair)))
				if err != nil {
					return nil, fmt.Errorf("saturate %s: %w", cs.name, err)
				}
				if perr != nil {
					return nil, perr
				}
				runtime.ReadMemStats(&m1)
				if cs.capture != nil {
					t.spans += cs.capture.Len()
					cs.capture.Reset()
				}
				t.orders += l.calls
				t.elapsed += l.elapsed
				t.cpu += cpu
				t.mallocs += m1.Mallocs - m0.Mallocs
				t.bytes += m1.TotalAlloc - m0.TotalAlloc
				for c, s := range shares {
					t.byComp[c] += s * us(cpu)
				}
				repOrders[i] += l.calls
				repElapsed[i] += l.elapsed
				repCPU[i] += cpu
			}
		}
		var rate, perOrder [2]float64
		for i := range systems {
			rate[i] = float64(repOrders[i]) / repElapsed[i].Seconds()
			perOrder[i] = us(repCPU[i]) / float64(repOrders[i])
			tallies[i].rate = append(tallies[i].rate, rate[i])
			tallies[i].cpuPerOrder = append(tallies[i].cpuPerOrder, perOrder[i])
		}
		ratio, cpuRatio = append(ratio, rate[1]/rate[0]), append(cpuRatio, perOrder[1]/perOrder[0])
		b.logf("trace rep %d/%d: untraced %.0f orders/s %.0f CPU µs/order, traced %.0f orders/s %.0f CPU µs/order (%.2f)",
			rep+1, b.cfg.Reps, rate[0], perOrder[0], rate[1], perOrder[1], rate[1]/rate[0])
	}

	cost := &Section{
		Title: "7. Tracing cost",
		Intro: fmt.Sprintf("Two embedded topologies up side by side, one untraced and one traced the way an experiment run traces (every span recorded into the in-process capture), "+
			"saturated by %d closed-loop clients in alternating %v rounds, %d pairs per repetition, so that other load on the machine hits both alike. "+
			"Each repetition's figure sums its rounds; allocations are this process's (both topologies share it).",
			traceClient, traceRound, tracePairs),
		Header: []string{"tracing", "saturation orders/s", "CPU µs/order", "allocations/order", "KB allocated/order", "spans/order"},
	}
	for i, name := range []string{"off", "on"} {
		t := tallies[i]
		n := float64(t.orders)
		spans := "–"
		if i == 1 {
			spans = fmt.Sprintf("%.2f", float64(t.spans)/n)
		}
		cost.row(name, t.rate.format(0), t.cpuPerOrder.format(0), fmt.Sprintf("%.0f", float64(t.mallocs)/n), fmt.Sprintf("%.1f", float64(t.bytes)/n/1024), spans)
	}
	cost.row("on ÷ off", ratio.format(2), cpuRatio.format(2), "", "", "")
	cost.target("traced ÷ untraced saturation ≥ 0.80, interleaved on one machine", fmt.Sprintf("%s (traced %s orders/s)", ratio.format(2), tallies[1].rate.format(0)), ratio.median() >= 0.8)

	parts := &Section{
		Title: "8. Full chain CPU per order by component",
		Intro: "From the CPU profiles of the rounds of section 7: every sample is charged to the component of the frame nearest its leaf that belongs to one " +
			"(OpenTelemetry and this testbed's tracing package; Toxiproxy; each service's own package, with the shared service plumbing charged to the service that called it; " +
			"the NATS server and the NATS client library; the benchmark's clients; the garbage collector's background workers); what remains (gRPC and HTTP/2 transport goroutines, syscalls, the scheduler) is shown as not attributed. " +
			"µs/order is the component's share of the samples times the process CPU time per order.",
		Header: []string{"component", "untraced µs/order", "traced µs/order", "traced − untraced µs/order"},
	}
	var total [2]float64
	for _, c := range componentOrder {
		v := [2]float64{tallies[0].byComp[c] / float64(tallies[0].orders), tallies[1].byComp[c] / float64(tallies[1].orders)}
		total[0], total[1] = total[0]+v[0], total[1]+v[1]
		parts.row(c, fmt.Sprintf("%.0f", v[0]), fmt.Sprintf("%.0f", v[1]), fmt.Sprintf("%+.0f", v[1]-v[0]))
	}
	parts.row("total", fmt.Sprintf("%.0f", total[0]), fmt.Sprintf("%.0f", total[1]), fmt.Sprintf("%+.0f", total[1]-total[0]))
	return []*Section{cost, parts}, nil
}
