package tracing_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/tracing"
)

// Mirrors of Jaeger's JSON model (jaeger/model/json), decoded strictly.
type (
	jFile struct {
		Data []jTrace `json:"data"`
	}
	jTrace struct {
		TraceID   string              `json:"traceID"`
		Spans     []jSpan             `json:"spans"`
		Processes map[string]jProcess `json:"processes"`
		Warnings  []string            `json:"warnings"`
	}
	jSpan struct {
		TraceID       string   `json:"traceID"`
		SpanID        string   `json:"spanID"`
		Flags         uint32   `json:"flags"`
		OperationName string   `json:"operationName"`
		References    []jRef   `json:"references"`
		StartTime     uint64   `json:"startTime"`
		Duration      uint64   `json:"duration"`
		Tags          []jKV    `json:"tags"`
		Logs          []jLog   `json:"logs"`
		ProcessID     string   `json:"processID"`
		Warnings      []string `json:"warnings"`
	}
	jRef struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jKV struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	jLog struct {
		Timestamp uint64 `json:"timestamp"`
		Fields    []jKV  `json:"fields"`
	}
	jProcess struct {
		ServiceName string `json:"serviceName"`
		Tags        []jKV  `json:"tags"`
	}
)

func tag(kvs []jKV, key string) (jKV, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv, true
		}
	}
	return jKV{}, false
}

func TestWriteJaegerJSON(t *testing.T) {
	spans := orderTrace("o1", 100, 1, "payment")
	for i := range spans {
		spans[i].TraceID = "0af7651916cd43dd8448eb211c80319c"
		if spans[i].SpanID == "o1ps" {
			spans[i].StatusMsg = "card declined"
			spans[i].Attrs = map[string]string{"rpc.grpc.status_code": "13", "order.id": "o-1"}
			spans[i].Events = []tracing.Event{{Name: "retry", Time: spans[i].Start.Add(1500), Attrs: map[string]string{"fallacies.attempt": "2"}}}
		}
	}
	consumer := sp{id: "n1", tr: "n1", svc: "notification", kind: tracing.KindConsumer, name: "orders.created process",
		start: 95, end: 120, links: []tracing.Link{{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "o1pub"}}}.span()
	traces := tracing.Group(append(spans, consumer))

	var buf bytes.Buffer
	if err := tracing.WriteJaegerJSON(&buf, traces); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	var f jFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decode as Jaeger JSON: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), `"warnings":null`) {
		t.Error(`no "warnings":null`)
	}
	if len(f.Data) != 2 {
		t.Fatalf("%d traces, want 2", len(f.Data))
	}
	order := f.Data[0]
	if order.TraceID != "0af7651916cd43dd8448eb211c80319c" || len(order.Spans) != len(spans) {
		t.Fatalf("order trace %s with %d spans", order.TraceID, len(order.Spans))
	}
	services := map[string]bool{}
	for _, p := range order.Processes {
		services[p.ServiceName] = true
	}
	if len(order.Processes) != 3 || !services["order"] || !services["user"] || !services["payment"] {
		t.Errorf("processes %+v, want order, user, payment", order.Processes)
	}
	byID := map[string]jSpan{}
	for _, s := range order.Spans {
		byID[s.SpanID] = s
		if _, ok := order.Processes[s.ProcessID]; !ok {
			t.Errorf("span %s names unknown process %q", s.SpanID, s.ProcessID)
		}
		if s.Flags != 1 || s.TraceID != order.TraceID {
			t.Errorf("span %s flags %d trace %s", s.SpanID, s.Flags, s.TraceID)
		}
	}
	root := byID["o1r"]
	if len(root.References) != 0 || root.OperationName != tracing.PlaceOrderSpan || root.Duration != 100_000 {
		t.Errorf("root %+v: want no references, PlaceOrder, 100000 µs", root)
	}
	if want := uint64(t0.UnixMicro()); root.StartTime != want {
		t.Errorf("root startTime %d, want %d", root.StartTime, want)
	}
	ps := byID["o1ps"]
	if order.Processes[ps.ProcessID].ServiceName != "payment" {
		t.Errorf("payment server span in process %q", order.Processes[ps.ProcessID].ServiceName)
	}
	if len(ps.References) != 1 || ps.References[0] != (jRef{RefType: "CHILD_OF", TraceID: order.TraceID, SpanID: "o1pc"}) {
		t.Errorf("references %+v, want CHILD_OF o1pc", ps.References)
	}
	wantTags := map[string]jKV{
		"span.kind":               {Key: "span.kind", Type: "string", Value: "server"},
		"error":                   {Key: "error", Type: "bool", Value: true},
		"otel.status_description": {Key: "otel.status_description", Type: "string", Value: "card declined"},
		"order.id":                {Key: "order.id", Type: "string", Value: "o-1"},
		"rpc.grpc.status_code":    {Key: "rpc.grpc.status_code", Type: "string", Value: "13"},
	}
	for key, want := range wantTags {
		if got, ok := tag(ps.Tags, key); !ok || got != want {
			t.Errorf("tag %s = %+v, want %+v", key, got, want)
		}
	}
	if len(ps.Logs) != 1 {
		t.Fatalf("logs %+v, want one", ps.Logs)
	}
	if ev, _ := tag(ps.Logs[0].Fields, "event"); ev.Value != "retry" || ps.Logs[0].Timestamp != ps.StartTime+1 {
		t.Errorf("log %+v, want event retry 1 µs after the start", ps.Logs[0])
	}
	if _, ok := tag(byID["o1us0"].Tags, "error"); ok {
		t.Error("a successful span has an error tag")
	}

	consumerJ := f.Data[1].Spans[0]
	if len(consumerJ.References) != 1 || consumerJ.References[0] != (jRef{RefType: "FOLLOWS_FROM", TraceID: order.TraceID, SpanID: "o1pub"}) {
		t.Errorf("consumer references %+v, want FOLLOWS_FROM the producer", consumerJ.References)
	}
	if k, _ := tag(consumerJ.Tags, "span.kind"); k.Value != "consumer" {
		t.Errorf("consumer span.kind %v", k.Value)
	}

	buf.Reset()
	if err := tracing.WriteJaegerJSON(&buf, nil); err != nil || strings.TrimSpace(buf.String()) != `{"data":[]}` {
		t.Errorf("no traces: %q, %v", buf.String(), err)
	}
}
