package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/topology"
)

// Environment variables `fallacies serve` reads, so that a container can be
// configured without a file (see docker-compose.yml).
const (
	// envSystem holds a whole config.System as JSON (what the compose
	// topology passes: a variant's exact configuration).
	envSystem = "FALLACIES_SYSTEM"
	// envSet holds knobs as comma-separated name=value pairs, applied after
	// envSystem and before --set flags, e.g.
	// FALLACIES_SET=order.user.timeout=100ms,order.user.retries=2.
	envSet = "FALLACIES_SET"
)

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "SERVICE [--config FILE] [flags]", "run one service, or toxiproxy (used by the processes and compose topologies)")
	cfgPath := fs.String("config", "", "JSON service configuration (topology.ServeConfig) written by the processes topology; toxiproxy: its proxy list (JSON, as toxiproxy-server -config), e.g. docker/toxiproxy.json")
	listen := fs.String("listen", "", "gRPC listen address, e.g. 0.0.0.0:7001 (overrides the config file's); toxiproxy: its HTTP API's, e.g. 0.0.0.0:8474")
	httpListen := fs.String("http-listen", "", "user only: JSON-over-HTTP listen address")
	httpHosts := fs.String("http-hosts", "", "user and toxiproxy: comma-separated host names the HTTP API answers to besides loopback and its own address, e.g. toxiproxy (any other Host header is refused with 403)")
	userAddr := fs.String("user-addr", "", "order only: address of user (a proxy)")
	paymentAddr := fs.String("payment-addr", "", "order only: address of payment (a proxy)")
	userHTTPAddr := fs.String("user-http-addr", "", "order only: address of user's JSON-over-HTTP API (a proxy), used with order.user_transport=http")
	natsURL := fs.String("nats-url", "", "order, notification, ledger: NATS URL (a proxy), e.g. nats://toxiproxy:24222")
	var links knobFlags
	fs.Var(&links, "link", "a link the service dials, `PROXY=ADDR`, e.g. --link user=toxiproxy:17002 or --link nats-order=nats://toxiproxy:14221 (repeatable; what --user-addr and the others set, for any link)")
	var knobs knobFlags
	fs.Var(&knobs, "set", "set a knob, `NAME=VALUE`, e.g. --set order.user.timeout=100ms (repeatable; applied after $"+envSystem+" and $"+envSet+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*cfgPath == "" && *listen == "") {
		return usageErr("want SERVICE and --config FILE or --listen ADDR, e.g. fallacies serve user --listen 0.0.0.0:7002 (or --config user.json)")
	}
	if pos[0] == "toxiproxy" {
		for _, f := range []struct{ flag, val string }{{"--http-listen", *httpListen}, {"--user-addr", *userAddr}, {"--payment-addr", *paymentAddr}, {"--user-http-addr", *userHTTPAddr}, {"--nats-url", *natsURL}, {"--link", strings.Join(links, ",")}} {
			if f.val != "" {
				return usageErr("%s: not a flag of serve toxiproxy (it takes --listen, --config and --http-hosts)", f.flag)
			}
		}
		if len(knobs) > 0 {
			return usageErr("--set: toxiproxy has no knobs")
		}
		return serveToxiproxy(ctx, e, *listen, *cfgPath, splitHosts(*httpHosts))
	}
	for _, a := range []struct {
		flag, val string
		bind      bool
	}{{"--listen", *listen, true}, {"--http-listen", *httpListen, true}, {"--user-addr", *userAddr, false}, {"--payment-addr", *paymentAddr, false}, {"--nats-url", *natsURL, false}} {
		if a.val != "" {
			if err := checkAddr(a.flag, a.val, a.bind); err != nil {
				return err
			}
		}
	}
	c := topology.ServeConfig{System: config.Default()}
	if *cfgPath != "" {
		b, err := faults.ReadRegularFile(*cfgPath, 1<<20, "a service configuration")
		if err != nil {
			return usageErr("--config: %v", err)
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return usageErr("%s: %v", *cfgPath, err)
		}
	}
	c.Service = pos[0]
	for _, o := range []struct {
		dst *string
		val string
	}{{&c.Listen, *listen}, {&c.HTTPListen, *httpListen}} {
		if o.val != "" {
			*o.dst = o.val
		}
	}
	set := []struct{ link, val string }{{faults.ProxyUser, *userAddr}, {faults.ProxyPayment, *paymentAddr}, {faults.ProxyUserHTTP, *userHTTPAddr}, {topology.NATSLink(c.Service), *natsURL}}
	for _, kv := range links {
		name, addr, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(faults.Proxies(), name) {
			return usageErr("--link %q: want PROXY=ADDR with PROXY one of %s, e.g. user=toxiproxy:17002", kv, strings.Join(faults.Proxies(), ", "))
		}
		if err := checkAddr("--link "+name, addr, false); err != nil {
			return err
		}
		set = append(set, struct{ link, val string }{name, addr})
	}
	for _, l := range set {
		if l.val != "" && l.link != "" {
			if c.Links == nil {
				c.Links = map[string]string{}
			}
			c.Links[l.link] = l.val
		}
	}
	c.HTTPHosts = append(c.HTTPHosts, splitHosts(*httpHosts)...)
	if c.System, err = serveSystem(c.System, os.Getenv(envSystem), os.Getenv(envSet), knobs); err != nil {
		return err
	}
	tr, err := newTracing(e, tracingFlags{fromEnv: true, service: c.Service})
	if err != nil {
		return testbedErr(err)
	}
	defer tr.shutdown()
	so := tr.serveOptions(c.Service)
	so.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("service", c.Service)
	return testbedErr(topology.ServeOne(ctx, c, so, e.stdout))
}

// splitHosts splits the value of --http-hosts: comma-separated names,
// blanks dropped.
func splitHosts(list string) []string {
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// serveToxiproxy runs the Toxiproxy server of the compose topology: the
// proxies of the configuration file at cfgPath, its HTTP API on listen
// behind internal/httpguard (upstream's toxiproxy-server would answer a
// cross-site request or a rebound host name), answering to hosts besides
// its addresses; until ctx ends.
func serveToxiproxy(ctx context.Context, e *env, listen, cfgPath string, hosts []string) error {
	if listen == "" || cfgPath == "" {
		return usageErr("serve toxiproxy wants --listen ADDR and --config FILE, e.g. fallacies serve toxiproxy --listen 0.0.0.0:8474 --config docker/toxiproxy.json --http-hosts toxiproxy")
	}
	if err := checkAddr("--listen", listen, true); err != nil {
		return err
	}
	proxies, err := faults.ReadRegularFile(cfgPath, 1<<20, "a Toxiproxy proxy list")
	if err != nil {
		return usageErr("--config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("service", "toxiproxy")
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return testbedErr(fmt.Errorf("listen on --listen %s: %w", listen, err))
	}
	tp, err := toxiproxy.Start(ctx, lis, log, hosts...)
	if err != nil {
		return testbedErr(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("toxiproxy_shutdown", "err", err)
		}
	}()
	n, err := tp.LoadProxies(bytes.NewReader(proxies))
	if err != nil {
		return usageErr("%s: %v", cfgPath, err)
	}
	fmt.Fprintf(e.stdout, "toxiproxy: %d proxies from %s; API on %s (host names besides loopback and its address: %s)\n", n, cfgPath, tp.URL(), strings.Join(hosts, ","))
	<-ctx.Done()
	return nil
}

// serveSystem layers the configuration of a served service: base (the
// defaults or the config file's), then the JSON system of $FALLACIES_SYSTEM,
// then the knobs of $FALLACIES_SET, then --set flags.
func serveSystem(base config.System, sysJSON, setList string, flags knobFlags) (config.System, error) {
	sys := base
	if strings.TrimSpace(sysJSON) != "" {
		sys = config.System{}
		if err := json.Unmarshal([]byte(sysJSON), &sys); err != nil {
			return sys, usageErr("$%s: not a JSON system configuration: %v", envSystem, err)
		}
	}
	var all []string
	for _, kv := range strings.Split(setList, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			all = append(all, kv)
		}
	}
	all = append(all, flags...)
	for _, kv := range all {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return sys, usageErr("knob %q: want name=value, e.g. order.user.timeout=100ms", kv)
		}
		if err := config.Set(&sys, strings.TrimSpace(name), value); err != nil {
			return sys, usageErr("knob: %v (see `fallacies knobs`)", err)
		}
	}
	if err := sys.Validate(); err != nil {
		return sys, usageErr("%v", fmt.Errorf("invalid system configuration: %w", err))
	}
	return sys, nil
}
