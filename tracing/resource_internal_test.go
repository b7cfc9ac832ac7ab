package tracing

import (
	"testing"
)

func TestNewResource(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
	tests := []struct {
		service, wantName string
	}{
		{service: "payment", wantName: "payment"},
		{service: "", wantName: "unknown_service:"},
	}
	for _, tc := range tests {
		res, err := newResource(t.Context(), tc.service)
		if err != nil {
			t.Fatal(err)
		}
		set := res.Set()
		name, _ := set.Value(AttrServiceName)
		if got := name.AsString(); got != tc.wantName && !(tc.service == "" && len(got) > len(tc.wantName) && got[:len(tc.wantName)] == tc.wantName) {
			t.Errorf("service.name %q, want %q", got, tc.wantName)
		}
		if ns, _ := set.Value(AttrServiceNamespace); ns.AsString() != Namespace {
			t.Errorf("service.namespace %q, want %q", ns.AsString(), Namespace)
		}
		if env, _ := set.Value("deployment.environment"); env.AsString() != "test" {
			t.Errorf("OTEL_RESOURCE_ATTRIBUTES not honoured: %v", res)
		}
		if sdk, _ := set.Value("telemetry.sdk.name"); sdk.AsString() != "opentelemetry" {
			t.Errorf("telemetry.sdk.name %q", sdk.AsString())
		}
	}
}
