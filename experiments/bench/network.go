package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/toxiproxy"
)

// Proxy names of the bench's own Toxiproxy.
const (
	proxyGRPC  = "bench-grpc"
	proxyBytes = "bench-bytes"
	proxyEcho  = "bench-echo"
)

// rig is the trivial endpoint every network figure is measured against:
// a gRPC server answering the standard health check (with reflection, so
// that ghz needs no .proto file), a TCP server that sends the number of
// bytes asked for and closes, a TCP echo server, and an embedded Toxiproxy
// with a proxy to each.
type rig struct {
	grpcAddr  string // the gRPC server itself
	proxyAddr string // bench-grpc's listen address
	bytesAddr string // bench-bytes's listen address
	echoAddr  string // bench-echo's listen address
	inj       *toxiproxy.Injector
	tp        *toxiproxy.Server
	direct    healthpb.HealthClient
	proxied   healthpb.HealthClient
	closers   []func()
}

// startRig starts the rig; stop it with close.
func startRig(ctx context.Context) (r *rig, err error) {
	r = &rig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer()) // answers SERVING for ""
	reflection.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	r.closers = append(r.closers, srv.Stop)
	r.grpcAddr = lis.Addr().String()

	bytesLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go serveConns(bytesLis, sendBytes)
	r.closers = append(r.closers, func() { _ = bytesLis.Close() })

	echoLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go serveConns(echoLis, echoBack)
	r.closers = append(r.closers, func() { _ = echoLis.Close() })

	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tp, err := toxiproxy.Start(ctx, api, nil)
	if err != nil {
		return nil, fmt.Errorf("start toxiproxy: %w", err)
	}
	r.tp = tp
	r.closers = append(r.closers, func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(c)
	})
	if r.proxyAddr, err = tp.AddProxy(proxyGRPC, r.grpcAddr); err != nil {
		return nil, err
	}
	if r.bytesAddr, err = tp.AddProxy(proxyBytes, bytesLis.Addr().String()); err != nil {
		return nil, err
	}
	if r.echoAddr, err = tp.AddProxy(proxyEcho, echoLis.Addr().String()); err != nil {
		return nil, err
	}
	r.inj = toxiproxy.NewInjector("http://"+api.Addr().String(), nil)

	for _, c := range []struct {
		addr string
		dst  *healthpb.HealthClient
	}{{r.grpcAddr, &r.direct}, {r.proxyAddr, &r.proxied}} {
		conn, err := grpc.NewClient("passthrough:///"+c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, func() { _ = conn.Close() })
		*c.dst = healthpb.NewHealthClient(conn)
		if err := check(ctx, *c.dst); err != nil {
			return nil, fmt.Errorf("first call to %s: %w", c.addr, err)
		}
	}
	return r, nil
}

func (r *rig) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// check makes one health check call: the trivial unary call.
func check(ctx context.Context, c healthpb.HealthClient) error {
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// serveConns accepts connections on lis until it is closed and runs handle
// on each in its own goroutine, closing the connection after.
func serveConns(lis net.Listener, handle func(net.Conn)) {
	for {
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			handle(conn)
		}()
	}
}

// sendBytes reads a size (8 bytes, big-endian) from conn and sends that
// many bytes (at most 1 GB).
func sendBytes(conn net.Conn) {
	var hdr [8]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return
	}
	_, _ = io.CopyN(conn, zeros{}, int64(min(binary.BigEndian.Uint64(hdr[:]), 1<<30)))
}

// zeros reads as an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// proxyOverhead compares the trivial call direct and through one proxy.
func (b *bench) proxyOverhead(ctx context.Context) (*Section, error) {
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	const round = 2 * time.Second
	s := &Section{
		Title: "1. Per-hop proxy overhead",
		Intro: fmt.Sprintf("A gRPC unary call (the standard health check) over loopback, direct and through one proxy of the embedded Toxiproxy, closed loop on one connection for %v per path and repetition, the paths alternating.", round),
		Header: []string{"concurrency", "direct p50 µs", "proxied p50 µs", "added p50 µs", "direct p99 µs", "proxied p99 µs",
			"direct calls/s", "proxied calls/s", "proxied/direct throughput"},
	}
	var floor50, floor99 sample
	for range b.cfg.Reps {
		l, err := tcpRoundTrip(ctx, 20_000)
		if err != nil {
			return nil, err
		}
		floor50, floor99 = append(floor50, us(l.p50())), append(floor99, us(l.p99()))
	}
	s.note("The floor here and now: a bare loopback TCP round trip (1 byte, in process) took %s µs p50, %s µs p99. An earlier measurement on a quieter machine found 5 µs; read absolute figures against this one.",
		floor50.format(1), floor99.format(1))
	for _, c := range []int{1, 32} {
		var dp50, pp50, added, dp99, pp99, dtp, ptp, ratio sample
		for rep := range b.cfg.Reps {
			var res [2]loop
			for i, client := range []healthpb.HealthClient{r.direct, r.proxied} {
				call := func(ctx context.Context) error { return check(ctx, client) }
				if err := warmUp(ctx, c, call); err != nil {
					return nil, err
				}
				if res[i], err = closedLoop(ctx, c, round, 0, call); err != nil {
					return nil, err
				}
			}
			d, p := res[0], res[1]
			dp50, pp50 = append(dp50, us(d.p50())), append(pp50, us(p.p50()))
			added = append(added, us(p.p50()-d.p50()))
			dp99, pp99 = append(dp99, us(d.p99())), append(pp99, us(p.p99()))
			dtp, ptp = append(dtp, d.perSecond()), append(ptp, p.perSecond())
			ratio = append(ratio, p.perSecond()/d.perSecond())
			b.logf("proxy c=%d rep %d/%d: direct p50 %.1f µs, proxied p50 %.1f µs, %.0f vs %.0f calls/s",
				c, rep+1, b.cfg.Reps, us(d.p50()), us(p.p50()), d.perSecond(), p.perSecond())
		}
		s.row(fmt.Sprint(c), dp50.format(1), pp50.format(1), added.format(1), dp99.format(1), pp99.format(1),
			dtp.format(0), ptp.format(0), ratio.format(2))
		if c == 1 {
			s.target("proxy hop adds ≤ 15 µs p50 at concurrency 1", fmt.Sprintf("%s µs (direct p50 %s µs; TCP floor %s µs)", added.format(1), dp50.format(1), floor50.format(1)), added.median() <= 15)
		}
	}
	return s, nil
}

// injectionAccuracy measures what latency and bandwidth toxics add
// against what they were asked to.
func (b *bench) injectionAccuracy(ctx context.Context) (*Section, error) {
	rates := []int64{50, 500}
	const transfer = 4 * time.Second // each bandwidth measurement lasts about this long
	r, err := startRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.close()
	s := &Section{
		Title: "2. Injection accuracy",
		Intro: "Latency: a toxic on the downstream (every response chunk is delayed) of bench-grpc (the trivial gRPC call) or bench-echo (one byte to a TCP echo server and back), one call at a time; added pX = pX with the toxic − p50 without it, within the repetition. " +
			"Bandwidth: a toxic on bench-bytes's downstream; one connection receives a fixed payload sized for about 4 s at the requested rate; throughput = bytes ÷ time from connect to end of stream (1 KB = 1000 bytes, as Toxiproxy counts).",
		Header: []string{"toxic", "requested", "measured p50", "measured p99", "error of p50"},
	}
	type latCase struct {
		path            string // proxyGRPC or proxyEcho
		latency, jitter int64
	}
	var cases []latCase
	for _, l := range []int64{10, 50, 300} {
		cases = append(cases, latCase{proxyGRPC, l, 0}, latCase{proxyGRPC, l, l / 5}, latCase{proxyEcho, l, l / 5})
	}
	grpcCall := func(ctx context.Context) error { return check(ctx, r.proxied) }
	added50 := make([]sample, len(cases))
	added99 := make([]sample, len(cases))
	for rep := range b.cfg.Reps {
		ec, err := dialTCP(ctx, r.echoAddr)
		if err != nil {
			return nil, err
		}
		calls := map[string]func(context.Context) error{
			proxyGRPC: grpcCall,
			proxyEcho: func(context.Context) error { return echo(ec) },
		}
		base := map[string]time.Duration{}
		for path, call := range calls {
			l, err := closedLoop(ctx, 1, time.Second, 0, call)
			if err != nil {
				ec.Close()
				return nil, err
			}
			base[path] = l.p50()
		}
		for i, lc := range cases {
			d := max(2*time.Second, 30*time.Duration(lc.latency)*time.Millisecond)
			f := faults.Fault{Name: "bench-latency", Kind: faults.Latency, Target: lc.path, Direction: faults.Downstream,
				Attrs: map[string]int64{"latency": lc.latency, "jitter": lc.jitter}}
			res, err := withFault(ctx, r.inj, f, func() (loop, error) { return closedLoop(ctx, 1, d, 0, calls[lc.path]) })
			if err != nil {
				ec.Close()
				return nil, err
			}
			added50[i] = append(added50[i], ms(res.p50()-base[lc.path]))
			added99[i] = append(added99[i], ms(res.p99()-base[lc.path]))
			b.logf("latency %d±%d ms on %s rep %d/%d: added p50 %.2f ms, p99 %.2f ms", lc.latency, lc.jitter, lc.path, rep+1, b.cfg.Reps,
				ms(res.p50()-base[lc.path]), ms(res.p99()-base[lc.path]))
		}
		ec.Close()
	}
	for i, lc := range cases {
		req := fmt.Sprintf("+%d ms", lc.latency)
		if lc.jitter > 0 {
			req = fmt.Sprintf("+%d ms ± %d ms", lc.latency, lc.jitter)
		}
		name := "latency, gRPC call"
		if lc.path == proxyEcho {
			name = "latency, TCP echo"
		}
		errMs := added50[i].median() - float64(lc.latency)
		errPct := 100 * errMs / float64(lc.latency)
		s.row(name, req, "+"+added50[i].format(2)+" ms", "+"+added99[i].format(2)+" ms", fmt.Sprintf("%+.1f%%", errPct))
		s.target(fmt.Sprintf("%s %s: added p50 within 2%% or 1 ms", name, req), fmt.Sprintf("%+.2f ms (%+.1f%%)", errMs, errPct),
			abs(errMs) <= 1 || abs(errPct) <= 2)
	}
	s.note("Jitter on a gRPC call: Toxiproxy draws the jitter for every chunk it relays and relays a connection's chunks in order, and grpc-go writes a unary response as three chunks (headers, message, trailers), so a call waits for the largest of three draws: the median added latency is about latency + 0.59 × jitter, not latency. The TCP echo rows (one chunk each way) show the toxic itself is accurate. This is how Toxiproxy and grpc-go behave (upstream), and docs/experiments.md says so where jitter is described.")

	for _, rate := range rates {
		size := rate * 1000 * int64(transfer/time.Second)
		var got sample
		for rep := range b.cfg.Reps {
			f := faults.Fault{Name: "bench-bandwidth", Kind: faults.Bandwidth, Target: proxyBytes, Direction: faults.Downstream,
				Attrs: map[string]int64{"rate": rate}}
			kbps, err := withFault(ctx, r.inj, f, func() (float64, error) { return receive(ctx, r.bytesAddr, size) })
			if err != nil {
				return nil, err
			}
			got = append(got, kbps)
			b.logf("bandwidth %d KB/s rep %d/%d: %.1f KB/s", rate, rep+1, b.cfg.Reps, kbps)
		}
		errPct := 100 * (got.median() - float64(rate)) / float64(rate)
		s.row("bandwidth", fmt.Sprintf("%d KB/s", rate), got.format(1)+" KB/s", "", fmt.Sprintf("%+.1f%%", errPct))
		s.target(fmt.Sprintf("bandwidth %d KB/s: within 3%%", rate), fmt.Sprintf("%+.1f%%", errPct), abs(errPct) <= 3)
	}
	return s, nil
}

// withFault applies f, runs measure, and removes f on every way out.
func withFault[T any](ctx context.Context, inj faults.Injector, f faults.Fault, measure func() (T, error)) (T, error) {
	var zero T
	a, err := inj.Apply(ctx, f)
	if err != nil {
		return zero, fmt.Errorf("apply %s: %w", f, err)
	}
	v, err := measure()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rerr := inj.Remove(rctx, a); rerr != nil {
		return zero, errors.Join(err, fmt.Errorf("remove %s: %w", f, rerr))
	}
	return v, err
}

// receive connects to addr, reads until the server closes, and returns
// the throughput in KB/s (1000 bytes); fewer than want bytes is an error.
func receive(ctx context.Context, addr string, want int64) (float64, error) {
	start := time.Now()
	conn, err := dialTCP(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Write(binary.BigEndian.AppendUint64(nil, uint64(want))); err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, conn)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if n != want {
		return 0, fmt.Errorf("received %d bytes from %s, want %d", n, addr, want)
	}
	return float64(n) / 1000 / elapsed.Seconds(), nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
