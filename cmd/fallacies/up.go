package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
	"github.com/fallacies/fallacies/tracing"
)

func cmdUp(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "up", "[flags]", "start the system under test and keep it up until Ctrl-C")
	kind := fs.String("topology", topology.KindEmbedded, "embedded or processes")
	api := fs.String("toxiproxy-api", "127.0.0.1:8474", "address of the Toxiproxy HTTP API (Toxiproxy's own default, so toxiproxy-cli works with no flags)")
	natsPort := fs.Int("nats-port", 0, "nats-server client port (0: random)")
	endpointsFile := fs.String("endpoints-file", "", "also write the endpoints as JSON to this `FILE` (for fallacies run --target)")
	otlp := fs.String("otlp-endpoint", "", "export every service's spans over OTLP/gRPC to this endpoint, a URL or host:port, e.g. http://127.0.0.1:4317 (default: the OTEL_EXPORTER_OTLP_ENDPOINT variable; none: no tracing)")
	jaegerUI := fs.String("jaeger-ui", os.Getenv("FALLACIES_JAEGER_UI"), "Jaeger UI base URL to print, e.g. http://127.0.0.1:16686 (env FALLACIES_JAEGER_UI)")
	allowRemote := fs.Bool("allow-remote", false, "allow a --toxiproxy-api or --console-addr bind address or an OTLP endpoint that is not loopback (the API then also answers requests addressed to that address; other host names and cross-site requests are still refused with 403)")
	cons := addConsoleFlags(fs, "also serve the live web console (see docs/console.md) and print its address")
	reports := fs.String("reports", "reports", "folder for the reports of experiments run from the console, and its fault journal (console.journal) when there is no --endpoints-file")
	var knobs knobFlags
	fs.Var(&knobs, "set", "set a knob, `NAME=VALUE`, e.g. --set order.user.timeout=100ms (repeatable; fallacies knobs lists them)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("up", pos); err != nil {
		return err
	}
	if err := checkOutFile("endpoints-file", *endpointsFile); err != nil {
		return err
	}
	if err := oneOf("topology", *kind, topology.KindEmbedded, topology.KindProcesses); err != nil {
		return err
	}
	if err := checkAddr("--toxiproxy-api", *api, true); err != nil {
		return err
	}
	if *otlp != "" {
		if err := checkAddr("--otlp-endpoint", *otlp, false); err != nil {
			return err
		}
	}
	if err := cons.check(*allowRemote); err != nil {
		return err
	}
	sys, err := knobs.system()
	if err != nil {
		return err
	}
	var capture *tracing.Capture
	if *cons.on {
		capture = tracing.NewCapture(0) // the console takes its spans every second
	}
	tr, err := newTracing(e, tracingFlags{otlp: *otlp, jaegerUI: *jaegerUI, capture: capture})
	if err != nil {
		return err
	}
	defer tr.shutdown()
	if *kind == topology.KindProcesses {
		if err := tr.receive(); err != nil {
			return testbedErr(err)
		}
	}
	// The admin API binds to loopback and spans go to loopback unless asked
	// otherwise; checked before anything starts.
	if err := checkLoopback(nonEmpty(*api, tr.endpoint), *allowRemote); err != nil {
		return err
	}

	start := time.Now()
	topo, err := topology.Start(ctx, *kind, topology.Options{
		System: sys, ToxiproxyAPI: *api, NATSPort: *natsPort, Tracing: tr.serveOptions, OTLPEndpoint: tr.otlpEndpoint(),
	})
	if err != nil {
		return testbedErr(err)
	}
	ready := time.Since(start)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := topo.Stop(ctx); err != nil {
			fmt.Fprintf(e.stderr, "stop: %v\n", err)
		}
		fmt.Fprintln(e.stderr, "stopped.")
	}()
	ep := topo.Endpoints()
	ep.JaegerUI = tr.jaegerUI
	if ep.OTLP == "" || ep.OTLP == tr.rcvAddr {
		ep.OTLP = tr.endpoint // where the spans end up; the console's receiver is its own
	}
	fmt.Fprintf(e.stdout, "fallacies is up (%s topology, ready in %v)\n\n", *kind, ready.Round(time.Millisecond))
	printEndpoints(e.stdout, ep)
	fmt.Fprintln(e.stdout)
	tr.describe(e.stdout)
	if *endpointsFile != "" {
		if err := topology.WriteEndpoints(*endpointsFile, ep); err != nil {
			return testbedErr(err)
		}
		fmt.Fprintf(e.stdout, "endpoints written to %s\n", *endpointsFile)
	}
	if *cons.on {
		journal := filepath.Join(*reports, "console.journal")
		if *endpointsFile != "" {
			journal = journalFor(*endpointsFile)
		}
		rc, err := startConsole(ctx, topo, ep, capture, *cons.addr, journal, *reports)
		if err != nil {
			return testbedErr(err)
		}
		defer func() {
			if err := rc.stop(); err != nil {
				fmt.Fprintf(e.stderr, "console: %v (fallacies reset --journal %s removes what is left)\n", err, rc.journal)
			}
		}()
		fmt.Fprintf(e.stdout, "console: %s (faults journaled in %s; fallacies reset --journal %s undoes them after a crash)\n", rc.url, rc.journal, rc.journal)
	}
	printTry(e.stdout, selfPath(), *endpointsFile, ep, sys.Security.MTLS)
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "\nstopping…")
	return nil
}

func printEndpoints(w io.Writer, ep topology.Endpoints) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tADDRESS\tNOTE")
	fmt.Fprintf(tw, "toxiproxy API\t%s\tHTTP; toxiproxy-cli and clients work against it\n", ep.ToxiproxyAPI)
	fmt.Fprintf(tw, "nats\t%s\tnats-server with JetStream (stream ORDERS)\n", ep.NATS)
	for _, s := range topology.Services {
		fmt.Fprintf(tw, "%s\t%s\tgRPC, health and reflection on\n", s, ep.Services[s])
	}
	fmt.Fprintf(tw, "user (http)\t%s\tGET /users/{id}?view=basic|full\n", ep.UserHTTP)
	notes := map[string]string{
		faults.ProxyUser: "order → user (gRPC)", faults.ProxyUserHTTP: "order → user (HTTP)",
		faults.ProxyPayment: "order → payment", faults.ProxyNATSOrder: "order → NATS",
		faults.ProxyNATSNotification: "notification → NATS", faults.ProxyNATSLedger: "ledger → NATS",
	}
	for _, name := range slices.Sorted(maps.Keys(ep.Proxies)) {
		fmt.Fprintf(tw, "proxy %s\t%s\t%s\n", name, ep.Proxies[name], notes[name])
	}
	tw.Flush()
}

// printTry prints commands that work when pasted into another terminal
// in the same folder: this binary by the path it was started with, the
// tools of make tools in bin/, and the ports the system really uses.
func printTry(w io.Writer, self, endpointsFile string, ep topology.Endpoints, mtls bool) {
	api := ep.ToxiproxyAPI
	target := "--order " + ep.Services["order"]
	if endpointsFile != "" {
		target = "--target " + endpointsFile
	}
	fmt.Fprintf(w, "\nTry, in another terminal in this folder (make tools installs bin/toxiproxy-cli and bin/grpcurl):\n")
	fmt.Fprintf(w, "  %s place-order %s -n 5\n", self, target)
	fmt.Fprintf(w, "  bin/toxiproxy-cli --host %s list\n", api)
	fmt.Fprintf(w, "  bin/toxiproxy-cli --host %s toxic add --type latency --attribute latency=300 --toxicName by-hand user\n", api)
	fmt.Fprintf(w, "  %s place-order %s -n 5\n", self, target)
	fmt.Fprintf(w, "  bin/toxiproxy-cli --host %s toxic remove --toxicName by-hand user\n", api)
	if !mtls {
		fmt.Fprintf(w, "  bin/grpcurl -plaintext %s list\n", ep.Services["order"])
	}
	if endpointsFile != "" {
		fmt.Fprintf(w, "  %s run --target %s experiments/latency.yaml\n", self, endpointsFile)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

// selfPath is how to call this binary again from the current folder: the
// path it was started with when it has a folder in it (bin/fallacies),
// else its name, found on PATH.
func selfPath() string {
	p := os.Args[0]
	if filepath.Base(p) != "fallacies" || strings.HasPrefix(p, os.TempDir()) {
		return "bin/fallacies" // go test, go run: the binary make build writes
	}
	return p
}

// knobFlags collects --set name=value flags.
type knobFlags []string

func (k *knobFlags) String() string     { return fmt.Sprint(*k) }
func (k *knobFlags) Set(s string) error { *k = append(*k, s); return nil }

func (k knobFlags) system() (config.System, error) {
	sys := config.Default()
	for _, kv := range k {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return sys, usageErr("--set %q: want name=value, e.g. order.user.timeout=100ms", kv)
		}
		if err := config.Set(&sys, name, value); err != nil {
			return sys, usageErr("--set: %v (see `fallacies knobs`)", err)
		}
	}
	if err := sys.Validate(); err != nil {
		return sys, usageErr("--set: %v", err)
	}
	return sys, nil
}

// nonEmpty returns its non-empty arguments.
func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
