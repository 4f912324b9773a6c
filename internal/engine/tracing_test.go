package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// jaegerTraces is the query API's answer, decoded as a Jaeger client
// reads it.
type jaegerTraces struct {
	Data   []tracing.JaegerTrace `json:"data"`
	Errors []struct {
		Msg string `json:"msg"`
	} `json:"errors"`
}

func getTraces(t *testing.T, e *testEngine, query string) jaegerTraces {
	t.Helper()
	resp, err := http.Get("http://" + e.admin.Addr() + "/jaeger/api/" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out jaegerTraces
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

func tag(s tracing.JaegerSpan, key string) any {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

// TestTraceAcrossEveryHop sends one request through the ingress, the
// gateway, two services (through the mesh), a publish to the bus, a rule
// that matches it and delivers it into a queue, and the function the
// queue's trigger invokes, none of them with tracing code but for passing
// traceparent on, and finds one trace with a span per hop, each parented
// by the one before, with OpenTelemetry's attribute names; a second rule
// whose transform fails dead-letters the event, an error span under its
// rule's span. The services got the OTLP environment.
func TestTraceAcrossEveryHop(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: tr
services:
  front:
    run: HOPBIN
    port: 8080
    env: {NEXT: "${services.back.url}/work"}
    health:
      readiness: {exec: {command: [sh, -c, 'test "$OTEL_SERVICE_NAME" = front && test -n "$OTEL_EXPORTER_OTLP_ENDPOINT" && test -n "$OTEL_RESOURCE_ATTRIBUTES"']}, period: 100ms}
  back:
    run: HOPBIN
    port: 8080
    env: {PUBLISH: /v1/events}
queues:
  jobs: {}
rules:
  work: {filter: {exact: {type: hop.done}}, target: "queue:jobs"}
  broken: {filter: {exact: {type: hop.done}}, transform: 'error("no transform today")', target: "queue:jobs"}
functions:
  worker:
    run: FUNCTION
    triggers: [{queue: jobs}]
gateway:
  routes:
    - {path: /order, methods: [GET], integration: {type: service, service: front, path: /order}}
ingress:
  - name: public
    paths: [{path: /, to: gateway}]
observability:
  tracing: {baggage: {team: shop}}
local: {gateway: "127.0.0.1:0", ingress: {http: "127.0.0.1:0"}}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	ingress, _ := e.mesh.m.IngressAddrs()
	nubotest.WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + ingress + "/order?id=o-1")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	})
	var tr tracing.JaegerTrace
	nubotest.WaitFor(t, 60*time.Second, func() error {
		got := getTraces(t, e, "traces?service=worker&limit=5")
		if len(got.Data) == 0 {
			return fmt.Errorf("no trace of the function yet")
		}
		tr = got.Data[0]
		// The gateway's, two mesh hops, the publish, the rule, its
		// delivery, the receive, the invocation and the broken rule's
		// two; earlier tries may have failed after some hops, in their
		// own traces.
		if len(tr.Spans) < 10 {
			return fmt.Errorf("%d spans so far", len(tr.Spans))
		}
		return nil
	})
	byID := map[string]tracing.JaegerSpan{}
	var root tracing.JaegerSpan
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
		if len(s.References) == 0 {
			root = s
		}
	}
	service := func(s tracing.JaegerSpan) string { return tr.Processes[s.ProcessID].ServiceName }
	if service(root) != "gateway" || root.OperationName != "GET /order" || tag(root, "http.route") != "/order" {
		t.Fatalf("root span %+v of %s, want the gateway's", root, service(root))
	}
	// Walk from the function's span up to the root.
	var chain []string
	var fn tracing.JaegerSpan
	for _, s := range tr.Spans {
		if service(s) == "worker" {
			fn = s
		}
	}
	for s := fn; ; {
		chain = append([]string{service(s) + ":" + tag(s, "span.kind").(string)}, chain...)
		if len(s.References) == 0 {
			break
		}
		p, ok := byID[s.References[0].SpanID]
		if !ok || s.References[0].RefType != "CHILD_OF" {
			t.Fatalf("span %s %q has a parent %+v not in the trace: a broken trace", s.SpanID, s.OperationName, s.References)
		}
		s = p
	}
	want := "gateway:server gateway:client front:client events:producer events:consumer events:producer events:consumer worker:server"
	st := e.Status()
	if st.Traces == nil || st.Traces.Spans < 5 || st.Traces.DiskBytes == 0 || st.Addresses["otlp"] == "" {
		t.Errorf("status: traces %+v, addresses %v", st.Traces, st.Addresses)
	}
	if got := strings.Join(chain, " "); got != want {
		t.Errorf("hops %s, want %s", got, want)
	}
	if tag(fn, "faas.invoked_name") != "worker" || tag(fn, "faas.trigger") != "pubsub" || tag(fn, "faas.coldstart") == nil {
		t.Errorf("function span tags %+v", fn.Tags)
	}
	deadLettered := false
	for _, s := range tr.Spans {
		if service(s) == "front" {
			if tag(s, "server.address") != "back" || tag(s, "http.request.method") != "GET" || tag(s, "http.response.status_code") != float64(200) {
				t.Errorf("mesh span tags %+v", s.Tags)
			}
		}
		switch s.OperationName {
		case "publish bus":
			if tag(s, "messaging.system") != "nats" || tag(s, "messaging.operation.type") != "send" {
				t.Errorf("publish span tags %+v", s.Tags)
			}
		case "process rule work":
			if tag(s, "nubo.events.rule") != "work" || tag(s, "messaging.operation.type") != "process" {
				t.Errorf("rule span tags %+v", s.Tags)
			}
		case "deliver queue:jobs":
			if tag(s, "messaging.destination.name") != "jobs" || tag(s, "span.kind") != "producer" {
				t.Errorf("delivery span tags %+v", s.Tags)
			}
		case "receive jobs":
			if tag(s, "messaging.operation.type") != "receive" {
				t.Errorf("receive span tags %+v", s.Tags)
			}
		case "dead-letter rule broken":
			p := byID[s.References[0].SpanID]
			if p.OperationName != "process rule broken" || tag(s, "error") != true ||
				!strings.Contains(fmt.Sprint(tag(s, "otel.status_description")), "no transform today") {
				t.Errorf("dead-letter span %+v under %q", s.Tags, p.OperationName)
			}
			deadLettered = true
		}
		if tag(s, "team") != "shop" {
			t.Errorf("span %q lacks the baggage: %+v", s.OperationName, s.Tags)
		}
	}
	if !deadLettered {
		t.Errorf("no dead-letter span in the trace")
	}
	// The trace's log records are served beside it.
	resp, err := http.Get("http://" + e.admin.Addr() + "/admin/v1/traces/" + tr.TraceID + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	var tl apitype.TraceLogs
	if err := json.NewDecoder(resp.Body).Decode(&tl); err != nil || resp.StatusCode != 200 || tl.TraceID != tr.TraceID || tl.Logs == nil {
		t.Errorf("the trace's logs: %d %+v %v", resp.StatusCode, tl, err)
	}
	resp.Body.Close()
}

// TestSamplingKeepsWholeTraces sends 2,000 requests that start traces
// through the ingress into a service that calls another through the mesh,
// with tracing.sampleRate 0.1: about a tenth are kept (within 4 standard
// deviations of the binomial), and every kept trace has both hops.
func TestSamplingKeepsWholeTraces(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: smp
services:
  front: {run: HOPBIN, port: 8080, env: {NEXT: "${services.back.url}/"}}
  back: {run: HOPBIN, port: 8080}
ingress:
  - name: public
    paths: [{path: /, to: "service:front", port: 8080}]
observability:
  tracing: {sampleRate: 0.1}
local: {ingress: {http: "127.0.0.1:0"}}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	ingress, _ := e.mesh.m.IngressAddrs()
	const n = 2000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for i := range n {
		resp, err := client.Get("http://" + ingress + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	var got jaegerTraces
	nubotest.WaitFor(t, 30*time.Second, func() error {
		got = getTraces(t, e, "traces?service=ingress&limit=1500")
		st := e.tracing.t.Store().Stats()
		if st.Spans != 2*len(got.Data) {
			return fmt.Errorf("%d spans for %d traces: not all stored yet", st.Spans, len(got.Data))
		}
		return nil
	})
	mean, sd := n*0.1, math.Sqrt(n*0.1*0.9)
	if k := float64(len(got.Data)); math.Abs(k-mean) > 4*sd {
		t.Errorf("%v of %d traces kept at rate 0.1, want %v ± %.0f", k, n, mean, 4*sd)
	}
	for _, tr := range got.Data {
		if len(tr.Spans) != 2 {
			t.Fatalf("trace %s has %d spans, want the ingress's and front's hops", tr.TraceID, len(tr.Spans))
		}
	}
	if d := e.tracing.t.Dropped(); d != 0 {
		t.Errorf("%d spans dropped", d)
	}
}

// TestDeadExportEndpoint exports to an address where nothing listens:
// every request through the mesh still succeeds and its span is stored,
// and what cannot be sent shows as failed in the status, not as waiting
// requests.
func TestDeadExportEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: dead
services:
  front: {run: HOPBIN, port: 8080}
ingress:
  - name: public
    paths: [{path: /, to: "service:front", port: 8080}]
observability:
  tracing: {export: {otlp: "http://`+dead+`"}}
local: {ingress: {http: "127.0.0.1:0"}}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	ingress, _ := e.mesh.m.IngressAddrs()
	const n = 200
	for i := range n {
		resp, err := http.Get("http://" + ingress + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		st := e.Status().Traces
		if st == nil || st.Export == nil {
			return fmt.Errorf("no export status: %+v", st)
		}
		if st.Spans < n || st.Export.Failed+st.Export.Dropped < n {
			return fmt.Errorf("spans %d, export %+v", st.Spans, *st.Export)
		}
		if st.Export.Sent != 0 {
			t.Errorf("sent %d spans to an address where nothing listens", st.Export.Sent)
		}
		return nil
	})
}
