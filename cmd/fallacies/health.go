package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// cmdHealth is the health check of the containers: their images are built
// FROM scratch and have no shell or curl, so docker-compose.yml runs
// `/fallacies health ADDR` (gRPC) or `/fallacies health --http URL`.
func cmdHealth(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "health", "[--http] ADDR|URL", "check a gRPC service (exit 0 when SERVING) or, with --http, an HTTP endpoint (exit 0 on 2xx)")
	httpMode := fs.Bool("http", false, "GET the URL and succeed on a 2xx answer instead of a gRPC health check")
	service := fs.String("service", "", "gRPC health service name to check (\"\": the whole server)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	allowRemote := fs.Bool("allow-remote", false, "allow an address that is not loopback")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("want one address, e.g. fallacies health 127.0.0.1:7001 or fallacies health --http http://127.0.0.1:8474/version")
	}
	if *httpMode && !strings.HasPrefix(pos[0], "http://") && !strings.HasPrefix(pos[0], "https://") {
		return usageErr("--http %q: want an http:// or https:// URL, e.g. http://127.0.0.1:8474/version", pos[0])
	}
	if err := checkAddr("address", pos[0], false); err != nil {
		return err
	}
	// The same guard as every command that dials: loopback only, unless
	// asked; checked before anything is dialled.
	if err := checkLoopback(pos, *allowRemote); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *httpMode {
		err = checkHTTP(ctx, pos[0])
	} else {
		err = checkGRPC(ctx, pos[0], *service)
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	fmt.Fprintln(e.stdout, "SERVING")
	return nil
}

func checkGRPC(ctx context.Context, addr, service string) error {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("health check %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("health check %s: %w", addr, err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check %s: status %s", addr, st)
	}
	return nil
}

func checkHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health check %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}
