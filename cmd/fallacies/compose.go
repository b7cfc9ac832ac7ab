package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fallacies/fallacies/topology"
)

// cmdComposeWait is the second half of `make up`: after `docker compose up
// -d` (v1 has no --wait) it waits for every health check, prints the
// endpoints and writes them for `fallacies run --target`.
func cmdComposeWait(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "compose-wait", "[flags]", "wait for a compose stack to be healthy and print its endpoints (used by make up)")
	project := fs.String("project", "fallacies", "compose project name (docker compose -p)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	endpointsFile := fs.String("endpoints-file", "", "also write the endpoints as JSON to this `FILE` (for fallacies run --target)")
	jaegerUI := fs.String("jaeger-ui", "", "Jaeger UI URL to print (the jaeger profile publishes http://127.0.0.1:16686)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("compose-wait", pos); err != nil {
		return err
	}
	if *project == "" {
		return usageErr("--project: want the compose project name, e.g. fallacies")
	}
	if err := checkOutFile("endpoints-file", *endpointsFile); err != nil {
		return err
	}
	start := time.Now()
	if err := topology.WaitComposeHealthy(ctx, *project, *timeout); err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return testbedErr(err)
	}
	ep, err := topology.ComposeEndpoints(ctx, *project)
	if err != nil {
		return testbedErr(err)
	}
	if *jaegerUI != "" {
		ep.JaegerUI = *jaegerUI
	}
	fmt.Fprintf(e.stdout, "fallacies is up (compose project %s, healthy after %v more)\n\n", *project, time.Since(start).Round(time.Millisecond))
	printEndpoints(e.stdout, ep)
	fmt.Fprintln(e.stdout, "\nThe proxies listen inside the compose network (toxiproxy:<port>); the Toxiproxy API lists them.")
	if ep.JaegerUI != "" {
		fmt.Fprintf(e.stdout, "jaeger UI: %s\n", ep.JaegerUI)
	} else {
		fmt.Fprintln(e.stdout, "traces: off (make up JAEGER=1 starts Jaeger where its image can be pulled)")
	}
	if *endpointsFile != "" {
		if err := topology.WriteEndpoints(*endpointsFile, ep); err != nil {
			return testbedErr(err)
		}
		fmt.Fprintf(e.stdout, "endpoints written to %s (fallacies run --target %s FILE)\n", *endpointsFile, *endpointsFile)
	}
	fmt.Fprintf(e.stdout, "\nTry (make tools installs bin/toxiproxy-cli):\n  %s place-order --order %s -n 5\n  bin/toxiproxy-cli --host %s list\n  make down\n", selfPath(), ep.Services["order"], ep.ToxiproxyAPI)
	return nil
}
