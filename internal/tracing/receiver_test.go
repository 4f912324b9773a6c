package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// rig is a tracer with its store, the receiver and the query API on
// loopback, as the engine mounts them.
type rig struct {
	t        *Tracer
	otlp     *httptest.Server
	query    *httptest.Server
	mu       sync.Mutex
	logLines []apitype.LogLine
}

func newRig(t *testing.T, maxBody int64) *rig {
	t.Helper()
	st, err := OpenStore(StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: NewTracer(nil)}
	r.t.SetStore(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.t.Run(ctx); close(done) }()
	rc := &Receiver{Spans: r.t.Receive, MaxBody: maxBody, Logs: func(ld plog.Logs) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.logLines = append(r.logLines, LogLines(ld)...)
		return 0, nil
	}}
	r.otlp = httptest.NewServer(rc.Handler())
	mux := http.NewServeMux()
	mux.Handle("/jaeger/api/", QueryHandler(r.t, "/jaeger"))
	r.query = httptest.NewServer(mux)
	t.Cleanup(func() {
		r.otlp.Close()
		r.query.Close()
		cancel()
		<-done
		st.Close()
	})
	return r
}

func (r *rig) get(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get(r.query.URL + "/jaeger/api/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode
}

type tracesAnswer struct {
	Data   []JaegerTrace `json:"data"`
	Total  int           `json:"total"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// TestOpenTelemetrySDKSendsSpansAndLogs runs a program instrumented with the
// OpenTelemetry Go SDK, configured only by the environment nubo gives
// every workload, and finds its trace through the query API with the
// requests Grafana's Jaeger data source makes, with its attributes, status,
// events and resource; its log record arrives with the trace's ID.
func TestOpenTelemetrySDKSendsSpansAndLogs(t *testing.T) {
	r := newRig(t, 0)
	bin := filepath.Join(t.TempDir(), "otelsender")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/otelsender").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+r.otlp.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=orders", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop,deployment.environment.name=local")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("otelsender: %v", err)
	}
	traceID := strings.TrimSpace(string(out))

	var services struct{ Data []string }
	r.get(t, "services", &services)
	if len(services.Data) != 1 || services.Data[0] != "orders" {
		t.Errorf("services %v", services.Data)
	}
	var ops struct{ Data []string }
	r.get(t, "services/orders/operations", &ops)
	if strings.Join(ops.Data, ",") != "SELECT orders,checkout" {
		t.Errorf("operations %v", ops.Data)
	}
	// Grafana's Jaeger search: service, operation, tags as logfmt turned
	// JSON, durations, start and end in microseconds, limit.
	now := time.Now()
	q := url.Values{"service": {"orders"}, "operation": {"SELECT orders"}, "tags": {`{"db.system.name":"postgresql","error":"true"}`},
		"minDuration": {"10ms"}, "maxDuration": {"10s"}, "limit": {"20"},
		"start": {fmt.Sprint(now.Add(-time.Hour).UnixMicro())}, "end": {fmt.Sprint(now.Add(time.Minute).UnixMicro())}}
	var found tracesAnswer
	if code := r.get(t, "traces?"+q.Encode(), &found); code != 200 || len(found.Data) != 1 || found.Data[0].TraceID != traceID {
		t.Fatalf("search: %d %+v, want trace %s", code, found, traceID)
	}
	var byID tracesAnswer
	r.get(t, "traces/"+traceID, &byID)
	if len(byID.Data) != 1 || len(byID.Data[0].Spans) != 2 {
		t.Fatalf("trace by id: %+v", byID)
	}
	tr := byID.Data[0]
	var root, child JaegerSpan
	for _, s := range tr.Spans {
		if s.OperationName == "checkout" {
			root = s
		} else {
			child = s
		}
	}
	if len(child.References) != 1 || child.References[0].SpanID != root.SpanID || child.References[0].RefType != "CHILD_OF" {
		t.Errorf("child references %+v, root %s", child.References, root.SpanID)
	}
	tags := func(s JaegerSpan) map[string]JaegerKeyValue {
		m := map[string]JaegerKeyValue{}
		for _, kv := range s.Tags {
			m[kv.Key] = kv
		}
		return m
	}
	rt, ct := tags(root), tags(child)
	if kv := rt["http.response.status_code"]; kv.Type != "int64" || kv.Value != float64(201) {
		t.Errorf("int attribute %+v", kv)
	}
	if rt["span.kind"].Value != "server" || ct["span.kind"].Value != "client" || rt["order.id"].Value != "o-42" {
		t.Errorf("root tags %+v", rt)
	}
	if ct["error"].Value != true || ct["otel.status_description"].Value != "deadlock detected" || ct["db.cached"].Type != "bool" {
		t.Errorf("child tags %+v", ct)
	}
	if child.Duration < 20000 || child.StartTime < now.Add(-time.Minute).UnixMicro() {
		t.Errorf("child times: start %d µs, duration %d µs", child.StartTime, child.Duration)
	}
	if len(child.Logs) != 1 || child.Logs[0].Fields[0].Value != "retry" {
		t.Errorf("child logs %+v", child.Logs)
	}
	p := tr.Processes[root.ProcessID]
	res := map[string]any{}
	for _, kv := range p.Tags {
		res[kv.Key] = kv.Value
	}
	if p.ServiceName != "orders" || res["service.namespace"] != "shop" || res["telemetry.sdk.language"] != "go" {
		t.Errorf("process %+v", p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.logLines) != 1 || r.logLines[0].TraceID != traceID || r.logLines[0].Level != "error" ||
		r.logLines[0].Service != "orders" || r.logLines[0].Fields["order.id"] != "o-42" {
		t.Errorf("log records %+v", r.logLines)
	}
}

func post(t *testing.T, url, ct, enc string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestReceiverAnswersAsTheCollector checks the OTLP/HTTP status codes and
// the partial-success answer.
func TestReceiverAnswersAsTheCollector(t *testing.T) {
	r := newRig(t, 4096)
	u := r.otlp.URL + "/v1/traces"
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	good := ss.Spans().AppendEmpty()
	good.SetTraceID(pcommon.TraceID{1})
	good.SetSpanID(pcommon.SpanID{1})
	good.SetName("good")
	ss.Spans().AppendEmpty().SetName("no ids")
	pb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	js, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()

	resp, body := post(t, u, "application/x-protobuf", "", pb)
	ans := ptraceotlp.NewExportResponse()
	if resp.StatusCode != 200 || ans.UnmarshalProto(body) != nil || ans.PartialSuccess().RejectedSpans() != 1 || ans.PartialSuccess().ErrorMessage() == "" {
		t.Errorf("protobuf: %d, rejected %d", resp.StatusCode, ans.PartialSuccess().RejectedSpans())
	}
	resp, body = post(t, u, "application/json", "gzip", gzipped(js))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"rejectedSpans":"1"`) {
		t.Errorf("gzip JSON: %d %s", resp.StatusCode, body)
	}
	if got, _ := r.t.Store().Trace(TraceID{1}); len(got) != 2 || got[0].Service != unknownService {
		t.Errorf("stored %+v", got)
	}
	for _, c := range []struct {
		name, ct, enc string
		body          []byte
		want          int
	}{
		{"content type", "text/plain", "", pb, http.StatusUnsupportedMediaType},
		{"bad protobuf", "application/x-protobuf", "", []byte("\xff\xff\xff"), http.StatusBadRequest},
		{"bad JSON", "application/json", "", []byte("{"), http.StatusBadRequest},
		{"bad gzip", "application/json", "gzip", []byte("not gzip"), http.StatusBadRequest},
		{"encoding", "application/json", "br", js, http.StatusBadRequest},
		{"too large", "application/json", "", bytes.Repeat([]byte(" "), 5000), http.StatusRequestEntityTooLarge},
		// 1 MiB of zeros is a 1 KiB gzip body: the bound holds after
		// decompression too.
		{"gzip bomb", "application/json", "gzip", gzipped(make([]byte, 1<<20)), http.StatusRequestEntityTooLarge},
	} {
		resp, body := post(t, u, c.ct, c.enc, c.body)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// TestQueryAPIErrors checks the answers to bad queries and unknown traces
// in Jaeger's error shape.
func TestQueryAPIErrors(t *testing.T) {
	r := newRig(t, 0)
	var a tracesAnswer
	if code := r.get(t, "traces/0123456789abcdef0123456789abcdef", &a); code != 404 || len(a.Errors) != 1 || a.Errors[0].Code != 404 {
		t.Errorf("unknown trace: %d %+v", code, a)
	}
	for _, q := range []string{"traces/xyz", "traces?minDuration=fast", "traces?tags=notjson", "traces?start=yesterday", "traces?limit=-1",
		"traces?minDuration=2s&maxDuration=1s"} {
		if code := r.get(t, q, &a); code != 400 || len(a.Errors) == 0 || a.Errors[0].Msg == "" {
			t.Errorf("%s: %d %+v", q, code, a)
		}
	}
}
