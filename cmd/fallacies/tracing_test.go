package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTracingDescribe checks where `up` says the traces go, for each way
// of configuring it, and that the same endpoint goes to child processes.
func TestTracingDescribe(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		flags        tracingFlags
		wantEndpoint string
		wantLines    []string
		wantErr      bool
	}{
		{
			name:      "off",
			wantLines: []string{"traces: off (set OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint"},
		},
		{
			name:         "flag and Jaeger UI flag",
			flags:        tracingFlags{otlp: "127.0.0.1:4317", jaegerUI: "http://127.0.0.1:16686/"},
			wantEndpoint: "127.0.0.1:4317",
			wantLines: []string{
				"traces: every service exports OTLP/gRPC to 127.0.0.1:4317 (from --otlp-endpoint)",
				"jaeger UI: http://127.0.0.1:16686/ (a trace: http://127.0.0.1:16686/trace/<trace id>)",
			},
		},
		{
			name:         "environment",
			env:          map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "FALLACIES_JAEGER_UI": "http://127.0.0.1:16686"},
			wantEndpoint: "http://127.0.0.1:4317",
			wantLines: []string{
				"traces: every service exports OTLP/gRPC to http://127.0.0.1:4317 (from the OTEL_EXPORTER_OTLP_* variables)",
				"jaeger UI: http://127.0.0.1:16686 (a trace: http://127.0.0.1:16686/trace/<trace id>)",
			},
		},
		{
			name:         "the flag wins over the environment",
			env:          map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9999"},
			flags:        tracingFlags{otlp: "http://127.0.0.1:4317"},
			wantEndpoint: "http://127.0.0.1:4317",
			wantLines:    []string{"jaeger UI: not set (--jaeger-ui or FALLACIES_JAEGER_UI"},
		},
		{
			name:         "a child reads the environment only",
			env:          map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
			flags:        tracingFlags{fromEnv: true, otlp: "127.0.0.1:9999"},
			wantEndpoint: "http://127.0.0.1:4317",
		},
		{name: "not an endpoint", flags: tracingFlags{otlp: "jaeger"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "FALLACIES_JAEGER_UI"} {
				t.Setenv(k, tc.env[k])
			}
			var stderr bytes.Buffer
			tr, err := newTracing(&env{stdout: &bytes.Buffer{}, stderr: &stderr}, tc.flags)
			if (err != nil) != tc.wantErr {
				t.Fatalf("newTracing: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			defer tr.shutdown()
			if got := tr.otlpEndpoint(); got != tc.wantEndpoint {
				t.Errorf("otlpEndpoint = %q, want %q", got, tc.wantEndpoint)
			}
			so := tr.serveOptions("order")
			if (so.TracerProvider != nil) != (tc.wantEndpoint != "") {
				t.Errorf("serveOptions: tracer provider %v, want one iff an endpoint is set (%q); stderr %q", so.TracerProvider, tc.wantEndpoint, stderr.String())
			}
			var out bytes.Buffer
			tr.describe(&out)
			for _, line := range tc.wantLines {
				if !strings.Contains(out.String(), line) {
					t.Errorf("describe wrote\n%s\nwant a line with %q", out.String(), line)
				}
			}
		})
	}
}
