// Package hopspans records the hops the mesh and the gateway report as
// tracing spans.
package hopspans

import (
	"net/http"
	"strconv"

	"github.com/nubo-dev/nubo/internal/gateway"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// The mesh and the gateway report their hops through interfaces of their
// own (they propagate trace context themselves); these adapters record
// them as spans with OpenTelemetry's HTTP attribute names, and let the
// tracer decide about the traces they start.

// MeshTracer records the mesh's hops as CLIENT spans of the caller, with
// OpenTelemetry's HTTP attribute names.
func MeshTracer(t *tracing.Tracer) mesh.Tracer { return meshSpans{t} }

type meshSpans struct{ t *tracing.Tracer }

func (m meshSpans) Sample(id [16]byte) bool { return m.t.Sample(id) }

func (m meshSpans) ExportSpan(s mesh.Span) {
	sp := tracing.Span{TraceID: s.TraceID, SpanID: s.SpanID, Parent: s.Parent, Name: s.Name,
		Kind: tracing.KindClient, Service: s.Source, Start: s.Start.UnixNano(), End: s.End.UnixNano(),
		Attrs: make([]tracing.Attr, 0, 8)}
	sp.Attrs = append(sp.Attrs,
		tracing.String("http.request.method", s.Method),
		tracing.String("url.path", s.Path),
		tracing.String("server.address", s.Destination),
		tracing.Int("http.response.status_code", int64(s.Status)),
		tracing.String("nubo.mesh.response_flags", s.Flags))
	if s.Upstream != "" {
		sp.Attrs = append(sp.Attrs, tracing.String("network.peer.address", s.Upstream))
	}
	// A client span fails on 4xx as well (OpenTelemetry's HTTP
	// conventions): a policy denial is a 403 the mesh answered.
	if s.Status >= 400 || s.Status == 0 {
		sp.Status = tracing.StatusError
		sp.StatusMessage = "HTTP " + strconv.Itoa(s.Status) + " (" + s.Flags + ")"
	}
	if s.Denied != "" {
		sp.StatusMessage = "RBAC: access denied by " + s.Denied
		sp.Attrs = append(sp.Attrs, tracing.String("nubo.mesh.denied_by", s.Denied), tracing.String("error.type", "policy_denied"))
	}
	retries := 0
	for _, e := range s.Events {
		if e.Name == "retry" {
			retries++
		}
		ev := tracing.Event{Time: e.Time.UnixNano(), Name: e.Name, Attrs: make([]tracing.Attr, 0, 4)}
		ev.Attrs = append(ev.Attrs, tracing.String("network.peer.address", e.Replica), tracing.Int("nubo.mesh.attempt", int64(e.Attempt)))
		if e.Status != 0 {
			ev.Attrs = append(ev.Attrs, tracing.Int("http.response.status_code", int64(e.Status)))
		}
		if e.Reason != "" {
			ev.Attrs = append(ev.Attrs, tracing.String("error.type", e.Reason))
		}
		sp.Events = append(sp.Events, ev)
	}
	if retries > 0 {
		sp.Attrs = append(sp.Attrs, tracing.Int("http.request.resend_count", int64(retries)))
	}
	m.t.Record(sp)
}

// GatewayTracer records the gateway's requests as SERVER spans of the
// gateway.
func GatewayTracer(t *tracing.Tracer) gateway.Tracer { return gatewaySpans{t} }

type gatewaySpans struct{ t *tracing.Tracer }

func (g gatewaySpans) Sample(id [16]byte) bool { return g.t.Sample(id) }

func (g gatewaySpans) ExportSpan(s gateway.Span) {
	sp := tracing.Span{TraceID: s.TraceID, SpanID: s.SpanID, Parent: s.Parent, Name: s.Name,
		Kind: tracing.KindServer, Service: "gateway", Start: s.Start.UnixNano(), End: s.End.UnixNano(),
		Attrs: make([]tracing.Attr, 0, 10)}
	sp.Attrs = append(sp.Attrs,
		tracing.String("http.request.method", s.Method),
		tracing.String("url.path", s.Path),
		tracing.Int("http.response.status_code", int64(s.Status)))
	for _, a := range [...]struct{ k, v string }{
		{"http.route", s.Route}, {"nubo.gateway.stage", s.Stage}, {"nubo.gateway.authorizer", s.Authorizer},
		{"nubo.gateway.auth_result", s.AuthResult}, {"nubo.gateway.cache", s.Cache}, {"nubo.gateway.integration", s.Integration},
	} {
		if a.v != "" {
			sp.Attrs = append(sp.Attrs, tracing.String(a.k, a.v))
		}
	}
	if s.Status == http.StatusTooManyRequests {
		sp.Attrs = append(sp.Attrs, tracing.Bool("nubo.gateway.throttled", true))
	}
	// A server span fails on 5xx only.
	if s.Status >= 500 {
		sp.Status = tracing.StatusError
	}
	g.t.Record(sp)
}
