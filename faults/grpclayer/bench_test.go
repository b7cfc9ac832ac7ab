package grpclayer_test

// The figures of BENCHMARKS.md for the gRPC layer (go test -run '^$' -bench
// . ./faults/grpclayer): the layer's cost with no fault active against the
// same server without it, the share of calls a probability faults, and the
// added median of grpc-delay with jitter. Nothing here asserts a time.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fallacies/fallacies/faults/grpclayer"
	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
)

// direct returns a client of the payment server behind the layer, dialed
// without the layer.
func direct(b *testing.B, layer *grpclayer.Layer) paymentv1.PaymentServiceClient {
	conn, err := grpc.NewClient("passthrough:///"+layer.Upstream(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return paymentv1.NewPaymentServiceClient(conn)
}

// listCharges is the call measured: ListCharges of an empty ledger, so the
// server's work is small and the same on both paths.
func listCharges(c paymentv1.PaymentServiceClient) error {
	_, err := c.ListCharges(context.Background(), &paymentv1.ListChargesRequest{PageSize: 1})
	return err
}

// BenchmarkLayerCost measures the median latency at concurrency 1 and the
// throughput at concurrency 32, direct and through the layer with no rule,
// in the same run, and reports the added median and the throughput ratio.
func BenchmarkLayerCost(b *testing.B) {
	_, layer, via := setup(b)
	dir := direct(b, layer)
	const n = 4000
	median := func(c paymentv1.PaymentServiceClient) time.Duration {
		ds := make([]time.Duration, n)
		for i := range n {
			start := time.Now()
			if err := listCharges(c); err != nil {
				b.Fatal(err)
			}
			ds[i] = time.Since(start)
		}
		slices.Sort(ds)
		return ds[n/2]
	}
	throughput := func(c paymentv1.PaymentServiceClient) float64 {
		var done atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 32 {
			wg.Go(func() {
				for range n / 8 {
					if err := listCharges(c); err != nil {
						b.Error(err)
						return
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(done.Load()) / time.Since(start).Seconds()
	}
	for range b.N {
		// Interleaved, so both paths see the same load of the machine.
		median(dir)
		median(via)
		dMed, vMed := median(dir), median(via)
		dThr, vThr := throughput(dir), throughput(via)
		b.ReportMetric(float64(dMed.Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(vMed.Microseconds()), "layer-p50-µs")
		b.ReportMetric(float64((vMed - dMed).Microseconds()), "added-p50-µs")
		b.ReportMetric(dThr, "direct-calls/s")
		b.ReportMetric(vThr, "layer-calls/s")
		b.ReportMetric(vThr/dThr, "throughput-ratio")
	}
}

// BenchmarkErrorShare sends 10,000 calls through a grpc-error rule of
// probability 0.1 and reports the share faulted, and 2,000 logical
// requests through attempts 2, each retried until it succeeds, reporting
// how many did not take exactly 3 attempts.
func BenchmarkErrorShare(b *testing.B) {
	for range b.N {
		_, layer, c := setup(b, grpclayer.Rule{Name: "p10", Kind: grpclayer.Error, Method: charge, Probability: 0.1, Code: codes.Unavailable})
		for i := range 10_000 {
			c.Charge(context.Background(), req(fmt.Sprintf("share-%d", i)))
		}
		got := layer.Counters()["p10"]
		b.ReportMetric(100*float64(got.Faulted)/float64(got.Calls), "%faulted(want-10)")

		_, _, c2 := setup(b, grpclayer.Rule{Name: "two", Kind: grpclayer.Error, Method: charge, Attempts: 2, Code: codes.Unavailable})
		wrong := 0
		for i := range 2000 {
			tries := 0
			for tries < 10 {
				tries++
				if _, err := c2.Charge(context.Background(), req(fmt.Sprintf("att-%d", i))); err == nil {
					break
				}
			}
			if tries != 3 {
				wrong++
			}
		}
		b.ReportMetric(float64(wrong), "requests-not-3-attempts")
	}
}

// BenchmarkDelayMedian holds 400 calls with grpc-delay 50ms ± 20ms and
// reports the added median against the same calls without the rule.
func BenchmarkDelayMedian(b *testing.B) {
	for range b.N {
		_, layer, c := setup(b, grpclayer.Rule{Name: "d", Kind: grpclayer.Delay, Method: "payment.v1.PaymentService/ListCharges",
			Latency: 50 * time.Millisecond, Jitter: 20 * time.Millisecond})
		dir := direct(b, layer)
		var added []time.Duration
		for range 400 {
			s := time.Now()
			listCharges(dir)
			base := time.Since(s)
			s = time.Now()
			listCharges(c)
			added = append(added, time.Since(s)-base)
		}
		slices.Sort(added)
		b.ReportMetric(float64(added[len(added)/2].Microseconds())/1000, "added-median-ms(want-50)")
	}
}
