package mesh

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/edgeheader"
)

// callerHandler serves one loopback listener of a calling workload: its
// HTTP_PROXY listener (target empty), or the listener of one target for
// NUBO_SERVICE_<NAME>_URL. The listener is the caller's identity.
type callerHandler struct {
	m      *Mesh
	caller string
	target string
}

// tunnelKey marks, in a connection's context, an HTTP connection that came
// through a CONNECT tunnel to a mesh target; its value is the target.
type tunnelKey struct{}

func (h *callerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if why := refusePeer(r.Context(), h.caller); why != "" {
		h.m.logger().Warn("mesh: a workload used another's proxy listener", "listener", h.caller, "reason", why)
		writeText(w, http.StatusForbidden, why)
		return
	}
	if r.Method == http.MethodConnect {
		h.m.connect(w, r, h.caller)
		return
	}
	c := h.m.cur.Load()
	// A workload's request carries no identity of a client but its own,
	// which is the listener: only callers that authenticate clients
	// themselves (the gateway) may pass identity headers on.
	if !slices.Contains(c.cfg.IdentityCallers, h.caller) {
		edgeheader.StripIdentity(r.Header)
	}
	if h.target != "" {
		t := c.hosts[lowerASCII(h.target)]
		if t == nil {
			writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("no service %q: it is no longer in the spec", h.target))
			return
		}
		if c.egressDenied(w, h.caller, t.name, "") {
			return
		}
		// As in Kubernetes, the callee sees the name it was called by.
		r.Host = t.host
		if cleanPath(w, r) {
			h.m.serveService(w, r, c, h.caller, t.pick())
		}
		return
	}
	host := r.Host
	// HTTP/1.1 names the target in an absolute URL; HTTP/2 always in
	// :authority, so an HTTP/2 request to the proxy names its target.
	if r.URL.Host == "" && r.ProtoMajor == 1 {
		tgt, ok := r.Context().Value(tunnelKey{}).(string)
		if !ok {
			writeText(w, http.StatusBadRequest, fmt.Sprintf(
				"this is the mesh proxy of %s: set it as HTTP_PROXY and call http://SERVICE/..., or use NUBO_SERVICE_<NAME>_URL", h.caller))
			return
		}
		if r.Host == "" {
			r.Host = tgt
		}
		host = tgt
	}
	t, port, badPort := c.lookup(host)
	meshName := ""
	if t != nil {
		meshName = t.name
	}
	if c.egressDenied(w, h.caller, meshName, host) {
		return
	}
	switch {
	case t == nil:
		// Outside the mesh the path is the other end's business: an
		// API may well want its %2F (GitLab's project paths do).
		h.m.egress(w, r, c, h.caller)
	case badPort:
		writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("service %q has no port %d: callers use port %d", t.name, port, t.ports[0]))
	case cleanPath(w, r):
		h.m.serveService(w, r, c, h.caller, t.pick())
	}
}

// result is what became of a request, for metrics and the span.
type result struct {
	status   int
	flags    string // Envoy response flags, "" for none
	grpc     string // grpc-status of the response
	upstream string // replica address
	abort    bool   // the response broke after its headers: abort it
	denied   string // the policy that denied the request
	events   []SpanEvent
}

func joinFlags(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// serveService runs a request to one destination service through fault
// injection, authorization and forwarding, and records it.
func (m *Mesh) serveService(w http.ResponseWriter, r *http.Request, c *compiled, caller string, svc *service) {
	start := time.Now()
	proto := protoOf(r)
	span := m.startSpan(r, caller, svc.name, svc.spanName, start)
	res := m.handle(w, r, c, caller, svc, proto)
	end := time.Now()
	m.tel.observe(cellKey{
		reporter: reporterSource, proto: proto, code: uint16(res.status),
		src: caller, srcNS: peerNamespace(c, caller), dst: svc.name, dstNS: c.ns,
		flags: res.flags, grpc: res.grpc, security: unknown,
	}, msSince(start, end))
	m.endSpan(span, &res, end)
	if res.abort {
		// The status line is out: only breaking the connection (or the
		// HTTP/2 stream) tells the client the response is incomplete.
		panic(http.ErrAbortHandler)
	}
}

func msSince(start, end time.Time) float64 { return float64(end.Sub(start)) / 1e6 }

func protoOf(r *http.Request) uint8 {
	if ct := r.Header["Content-Type"]; len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc") {
		return protoGRPC
	}
	return protoHTTP
}

func (m *Mesh) handle(w http.ResponseWriter, r *http.Request, c *compiled, caller string, svc *service, proto uint8) result {
	var flags string
	// Fault injection comes first, as Envoy's fault filter precedes the
	// router: an aborted request is never retried, and a delay does not
	// count against the route timeout.
	if f := &svc.fault; f.delayPct > 0 || f.abortPct > 0 {
		if f.delayPct > 0 && chance(f.delayPct) {
			if !sleepCtx(r.Context(), f.delay) {
				return result{status: 0, flags: "DI,DC"}
			}
			flags = "DI"
		}
		if f.abortPct > 0 && chance(f.abortPct) {
			writeText(w, f.abortStatus, "fault filter abort")
			return result{status: f.abortStatus, flags: joinFlags(flags, "FI")}
		}
	}
	if !svc.authz.empty() {
		src := peer{principal: caller, namespace: peerNamespace(c, caller)}
		d := svc.authz.check(src, r)
		if d.audited != "" {
			m.logger().Info("mesh: audit", "policy", d.audited, "source", caller, "destination", svc.name,
				"method", r.Method, "path", r.URL.Path, "allowed", d.allowed || !c.enforce)
		}
		if !d.allowed {
			if c.enforce {
				writeText(w, http.StatusForbidden, "RBAC: access denied")
				m.tel.observe(cellKey{
					reporter: reporterDestination, proto: proto, code: http.StatusForbidden,
					src: caller, srcNS: peerNamespace(c, caller), dst: svc.name, dstNS: c.ns, security: c.peerSecurity,
				}, 0)
				return result{status: http.StatusForbidden, flags: flags, denied: denyingPolicy(d)}
			}
			m.logger().Warn("mesh: request would be denied (enforcement: audit)", "policy", denyingPolicy(d),
				"source", caller, "destination", svc.name, "method", r.Method, "path", r.URL.Path)
		}
	}
	res := m.forward(w, r, c, caller, svc, proto)
	res.flags = joinFlags(flags, res.flags)
	return res
}

func denyingPolicy(d decision) string {
	if d.policy != "" {
		return d.policy
	}
	return "(no allow policy matched)"
}

// sleepCtx waits d, or until ctx is done (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeText answers with a plain-text body, as Envoy's local replies.
func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(msg))}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// egress forwards a plain-HTTP request for a host outside the mesh
// directly, as Istio's PassthroughCluster does.
func (m *Mesh) egress(w http.ResponseWriter, r *http.Request, c *compiled, caller string) {
	start := time.Now()
	proto := protoOf(r)
	res := m.forwardDirect(w, r)
	m.tel.observe(cellKey{
		reporter: reporterSource, proto: proto, external: true, code: uint16(res.status),
		src: caller, srcNS: c.ns, dst: r.Host, flags: res.flags, grpc: res.grpc, security: unknown,
	}, msSince(start, time.Now()))
	if res.abort {
		panic(http.ErrAbortHandler)
	}
}
