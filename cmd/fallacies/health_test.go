package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/fallacies/fallacies/services/config"
)

// TestHealth checks the containers' health check command against a real
// gRPC health service and a real HTTP server.
func TestHealth(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(ok.Close)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name   string
		before func()
		args   []string
		code   int
		out    string
	}{
		{"serving", nil, []string{"health", lis.Addr().String()}, exitOK, "SERVING"},
		{"not serving", func() { hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING) }, []string{"health", lis.Addr().String()}, exitFailed, "status NOT_SERVING"},
		{"nothing listens", nil, []string{"health", "--timeout", "300ms", closedAddr}, exitFailed, closedAddr},
		{"http ok", nil, []string{"health", "--http", ok.URL + "/version"}, exitOK, "SERVING"},
		{"http error", nil, []string{"health", "--http", ok.URL + "/bad"}, exitFailed, "HTTP 503"},
		{"no address", nil, []string{"health"}, exitUsage, "want one address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(t.Context(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if got := stdout.String() + stderr.String(); !strings.Contains(got, tc.out) {
				t.Errorf("output %q, want it to contain %q", got, tc.out)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v: the timeout must bound it", d)
			}
		})
	}
}

// TestServeSystem checks how `fallacies serve` layers its configuration:
// the base, then $FALLACIES_SYSTEM, then $FALLACIES_SET, then --set.
func TestServeSystem(t *testing.T) {
	custom := config.Default()
	custom.Order.User.Timeout = 250 * time.Millisecond
	custom.Order.User.Retries = 4
	sysJSON, err := json.Marshal(custom)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		sysJSON     string
		set         string
		flags       knobFlags
		wantTimeout time.Duration
		wantRetries int
		wantErr     string
	}{
		{name: "defaults", wantTimeout: config.Default().Order.User.Timeout, wantRetries: config.Default().Order.User.Retries},
		{name: "system json", sysJSON: string(sysJSON), wantTimeout: 250 * time.Millisecond, wantRetries: 4},
		{name: "set list over json", sysJSON: string(sysJSON), set: " order.user.timeout=100ms , order.user.retries=1,", wantTimeout: 100 * time.Millisecond, wantRetries: 1},
		{name: "flags last", set: "order.user.timeout=100ms", flags: knobFlags{"order.user.timeout=70ms"}, wantTimeout: 70 * time.Millisecond},
		{name: "bad json", sysJSON: "{", wantErr: "FALLACIES_SYSTEM"},
		{name: "bad knob", set: "order.nope=1", wantErr: "order.nope"},
		{name: "no value", set: "order.user.timeout", wantErr: "want name=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, err := serveSystem(config.Default(), tc.sysJSON, tc.set, tc.flags)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sys.Order.User.Timeout != tc.wantTimeout || sys.Order.User.Retries != tc.wantRetries {
				t.Errorf("order.user timeout %v retries %d, want %v and %d", sys.Order.User.Timeout, sys.Order.User.Retries, tc.wantTimeout, tc.wantRetries)
			}
		})
	}
}
