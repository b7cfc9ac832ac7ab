package tracing

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Jaeger's JSON model (the format of its query API and of the UI's "JSON
// File" upload).
type (
	jaegerFile struct {
		Data []jaegerTrace `json:"data"`
	}
	jaegerTrace struct {
		TraceID   string                   `json:"traceID"`
		Spans     []jaegerSpan             `json:"spans"`
		Processes map[string]jaegerProcess `json:"processes"`
		Warnings  []string                 `json:"warnings"`
	}
	jaegerSpan struct {
		TraceID       string      `json:"traceID"`
		SpanID        string      `json:"spanID"`
		Flags         int         `json:"flags"`
		OperationName string      `json:"operationName"`
		References    []jaegerRef `json:"references"`
		StartTime     int64       `json:"startTime"` // µs since the epoch
		Duration      int64       `json:"duration"`  // µs
		Tags          []jaegerKV  `json:"tags"`
		Logs          []jaegerLog `json:"logs"`
		ProcessID     string      `json:"processID"`
		Warnings      []string    `json:"warnings"`
	}
	jaegerRef struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jaegerKV struct {
		Key   string `json:"key"`
		Type  string `json:"type"` // string, bool, int64, float64, binary
		Value any    `json:"value"`
	}
	jaegerLog struct {
		Timestamp int64      `json:"timestamp"` // µs since the epoch
		Fields    []jaegerKV `json:"fields"`
	}
	jaegerProcess struct {
		ServiceName string     `json:"serviceName"`
		Tags        []jaegerKV `json:"tags"`
	}
)

// WriteJaegerJSON writes traces in the JSON format Jaeger UI opens ("JSON
// File" in its search page): {"data":[trace...]}. The parent becomes a
// CHILD_OF reference and every link a FOLLOWS_FROM reference (which may
// point into another trace); attributes become string tags, plus
// span.kind, and for failed spans error=true and otel.status_description;
// events become logs whose "event" field is the event name. Each service
// is one process (p1, p2, ... in order of first appearance).
func WriteJaegerJSON(w io.Writer, traces []Trace) error {
	f := jaegerFile{Data: make([]jaegerTrace, 0, len(traces))}
	for _, t := range traces {
		f.Data = append(f.Data, toJaeger(t))
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("write jaeger json: %w", err)
	}
	return nil
}

func toJaeger(t Trace) jaegerTrace {
	jt := jaegerTrace{TraceID: t.ID, Spans: make([]jaegerSpan, 0, len(t.Spans)), Processes: make(map[string]jaegerProcess)}
	procOf := make(map[string]string)
	for _, s := range t.Spans {
		pid, ok := procOf[s.Service]
		if !ok {
			pid = "p" + strconv.Itoa(len(procOf)+1)
			procOf[s.Service] = pid
			jt.Processes[pid] = jaegerProcess{ServiceName: s.Service, Tags: []jaegerKV{}}
		}
		js := jaegerSpan{
			TraceID:       s.TraceID,
			SpanID:        s.SpanID,
			Flags:         1,
			OperationName: s.Name,
			References:    []jaegerRef{},
			StartTime:     s.Start.UnixMicro(),
			Duration:      max(0, s.End.Sub(s.Start).Microseconds()),
			Tags:          []jaegerKV{{Key: "span.kind", Type: "string", Value: s.Kind}},
			Logs:          []jaegerLog{},
			ProcessID:     pid,
		}
		if s.ParentID != "" {
			js.References = append(js.References, jaegerRef{RefType: "CHILD_OF", TraceID: s.TraceID, SpanID: s.ParentID})
		}
		for _, l := range s.Links {
			js.References = append(js.References, jaegerRef{RefType: "FOLLOWS_FROM", TraceID: l.TraceID, SpanID: l.SpanID})
		}
		if s.Error {
			js.Tags = append(js.Tags, jaegerKV{Key: "error", Type: "bool", Value: true})
			if s.StatusMsg != "" {
				js.Tags = append(js.Tags, jaegerKV{Key: "otel.status_description", Type: "string", Value: s.StatusMsg})
			}
		}
		js.Tags = append(js.Tags, stringTags(s.Attrs)...)
		for _, e := range s.Events {
			fields := append([]jaegerKV{{Key: "event", Type: "string", Value: e.Name}}, stringTags(e.Attrs)...)
			js.Logs = append(js.Logs, jaegerLog{Timestamp: e.Time.UnixMicro(), Fields: fields})
		}
		jt.Spans = append(jt.Spans, js)
	}
	return jt
}

// stringTags returns m as string tags sorted by key.
func stringTags(m map[string]string) []jaegerKV {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]jaegerKV, len(keys))
	for i, k := range keys {
		out[i] = jaegerKV{Key: k, Type: "string", Value: m[k]}
	}
	return out
}
