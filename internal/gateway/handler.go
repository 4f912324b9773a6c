package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/callctx"
	"github.com/nubo-dev/nubo/internal/edgeheader"
	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/urlpath"
)

// exchange is one request through the gateway, from the pool.
type exchange struct {
	g  *Gateway
	c  *compiled
	w  http.ResponseWriter
	r  *http.Request
	rw statusWriter

	start time.Time
	stage *stage
	route *route
	rs    *routeStage
	rel   string   // the path within the stage
	vals  []string // the route's parameters, in template order

	auth        *authResult
	authOutcome string
	cache       string
	throttled   string
	reason      string // why the gateway answered an error, for the log

	// body is the request body once read (validation, transforms and
	// function integrations need it whole).
	body     []byte
	bodyRead bool
	buf      bytes.Buffer
	// ans is the backend's answer, kept here to save an allocation.
	ans answer

	// traceparent of the request's span, when a Tracer is set.
	traceID    [16]byte
	spanID     [8]byte
	parentSpan [8]byte
	sampled    bool
}

var exchangePool = sync.Pool{New: func() any { return &exchange{vals: make([]string, 0, 4)} }}

// maxPooledBuffer keeps very large bodies' buffers out of the pool.
const maxPooledBuffer = 1 << 20

func (x *exchange) reset() {
	vals := x.vals[:0]
	buf := x.buf
	buf.Reset()
	*x = exchange{vals: vals}
	if buf.Cap() <= maxPooledBuffer {
		x.buf = buf
	}
}

// statusWriter records the status and size of what was written.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Static error answers, as AWS API Gateway words them.
var (
	msgBadRequest     = []byte(`{"message":"Bad Request"}`)
	msgNotFound       = []byte(`{"message":"Not Found"}`)
	msgNoMethod       = []byte(`{"message":"Method Not Allowed"}`)
	msgUnauthorized   = []byte(`{"message":"Unauthorized"}`)
	msgForbidden      = []byte(`{"message":"Forbidden"}`)
	msgTooMany        = []byte(`{"message":"Too Many Requests"}`)
	msgUnavailable    = []byte(`{"message":"Service Unavailable"}`)
	msgTimeout        = []byte(`{"message":"Endpoint request timed out"}`)
	msgBadGateway     = []byte(`{"message":"Bad Gateway"}`)
	msgInternal       = []byte(`{"message":"Internal server error"}`)
	msgCORSRefused    = []byte(`{"message":"CORS preflight refused"}`)
	jsonContentType   = []string{"application/json"}
	cacheHitVals      = []string{"hit"}
	cacheMissVals     = []string{"miss"}
	cacheBypassVals   = []string{"bypass"}
	headerCache       = "Nubo-Cache"
	wwwAuthBearer     = []string{`Bearer realm="nubo"`}
	wwwAuthBearerBad  = []string{`Bearer realm="nubo", error="invalid_token"`}
	allowHeaderMethod = "Allow"
)

// ServeHTTP serves one request; see the package documentation for the
// steps.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchangePool.Get().(*exchange)
	x.g, x.c, x.r = g, g.cur.Load(), r
	x.rw = statusWriter{ResponseWriter: w}
	x.w = &x.rw
	x.start = g.now()
	x.serve()
	x.finish()
	x.reset()
	exchangePool.Put(x)
}

func (x *exchange) serve() {
	r := x.r
	// Identity headers come only from the route's authorizer, whichever
	// way the client spells them.
	edgeheader.StripIdentity(r.Header)
	if x.g.cfg.Tracer != nil {
		x.startSpan()
	}
	// Matched and forwarded is the normal form of the path, the same the
	// ingress and the mesh use: "/static/%2e%2e/private" is
	// "/private", and never reaches a /static/{proxy+} route.
	if err := urlpath.CleanURL(r.URL); err != nil {
		x.reason = "path " + strconv.Quote(r.URL.EscapedPath()) + ": " + err.Error()
		x.writeStatic(http.StatusBadRequest, msgBadRequest)
		return
	}
	x.stage, x.rel = x.c.stageOf(r.URL.Path)
	if x.stage == nil {
		x.reason = "no stage " + firstSegment(r.URL.Path)
		x.writeStatic(http.StatusNotFound, msgNotFound)
		return
	}
	n, vals := x.c.root.match(x.rel, x.vals[:0])
	x.vals = vals
	if n == nil {
		x.reason = "no route"
		x.writeStatic(http.StatusNotFound, msgNotFound)
		return
	}
	if isPreflight(r) && x.preflight(n) {
		return
	}
	rt := n.lookup(r.Method)
	if rt == nil {
		x.w.Header().Set(allowHeaderMethod, n.allow)
		x.reason = "method not allowed"
		x.writeStatic(http.StatusMethodNotAllowed, msgNoMethod)
		return
	}
	x.route, x.rs = rt, rt.perStage[x.stage.index]
	if rt.cors != nil {
		rt.cors.actual(x.w.Header(), r.Header.Get("Origin"))
	}
	now := x.start
	if b := x.stage.throttle; b != nil && !x.take(b, now, "stage", x.rs.obs.throttleStage) {
		return
	}
	if rt.auth != nil && !x.authorize() {
		return
	}
	if b := x.rs.throttle; b != nil && !x.take(b, now, "route", x.rs.obs.throttleRoute) {
		return
	}
	if x.rs.keyThrottle != nil && x.auth != nil {
		if b := x.rs.keyThrottle[x.auth.keyName]; b != nil && !x.take(b, now, "key", x.rs.obs.throttleKey) {
			return
		}
	}
	if !x.checkRequest() {
		return
	}
	x.forward()
}

// preflight answers a CORS preflight at n; false leaves the request to an
// OPTIONS route of its own.
func (x *exchange) preflight(n *node) bool {
	rt := n.lookup(x.r.Header.Get("Access-Control-Request-Method"))
	if rt == nil || rt.cors == nil {
		if own := n.lookup(http.MethodOptions); own != nil && own.cors == nil {
			return false
		}
		// Some route here has CORS, or none does: either way the
		// requested method is not allowed cross-origin.
		for _, other := range n.routes {
			if other.cors != nil {
				rt = other
				break
			}
		}
		if rt == nil || rt.cors == nil {
			x.reason = "CORS preflight for a route without cors"
			x.writeStatic(http.StatusForbidden, msgCORSRefused)
			return true
		}
		x.route, x.rs = rt, rt.perStage[x.stage.index]
		x.reason = "CORS preflight: method " + x.r.Header.Get("Access-Control-Request-Method") + " is not routed here"
		x.writeStatic(http.StatusForbidden, msgCORSRefused)
		return true
	}
	x.route, x.rs = rt, rt.perStage[x.stage.index]
	status, reason := rt.cors.preflight(x.w, x.r)
	if status != http.StatusNoContent {
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"} {
			x.w.Header().Del(h)
		}
		x.reason = "CORS preflight refused: " + reason
		x.writeStatic(status, msgCORSRefused)
		return true
	}
	x.w.WriteHeader(status)
	return true
}

// take takes a token from b, or answers 429.
func (x *exchange) take(b *bucket, now time.Time, scope string, c interface{ Inc() }) bool {
	ok, wait := b.take(now)
	if ok {
		return true
	}
	c.Inc()
	x.throttled = scope
	x.reason = scope + " throttle"
	x.w.Header().Set("Retry-After", retryAfterHeader(wait))
	x.writeStatic(http.StatusTooManyRequests, msgTooMany)
	return false
}

// authorize runs the route's authorizer, or answers 401, 403 or 503.
func (x *exchange) authorize() bool {
	rt := x.route
	res, err := rt.auth.authorize(x.r.Context(), x)
	if err == nil {
		x.auth = res
		x.authOutcome = "allowed"
		rt.authObs.count(x.authOutcome)
		applyAuth(x.r.Header, rt.authVals, res)
		return true
	}
	x.authOutcome = outcome(err)
	rt.authObs.count(x.authOutcome)
	var ae *authError
	status := http.StatusInternalServerError
	if errors.As(err, &ae) {
		status = ae.status
	}
	x.reason = "authorizer " + rt.authName + ": " + err.Error()
	x.g.log.LogAttrs(x.r.Context(), slog.LevelInfo, "gateway: request refused",
		slog.String("authorizer", rt.authName), slog.Int("status", status),
		slog.String("route", rt.path), slog.String("stage", x.stage.name), slog.String("reason", err.Error()))
	switch status {
	case http.StatusUnauthorized:
		if _, isJWT := rt.auth.(*jwtAuthorizer); isJWT {
			if ae.missing {
				x.w.Header()["Www-Authenticate"] = wwwAuthBearer
			} else {
				x.w.Header()["Www-Authenticate"] = wwwAuthBearerBad
			}
		}
		x.writeStatic(status, msgUnauthorized)
	case http.StatusForbidden:
		x.writeStatic(status, msgForbidden)
	case http.StatusServiceUnavailable:
		x.writeStatic(status, msgUnavailable)
	default:
		x.writeStatic(status, msgInternal)
	}
	return false
}

// writeStatic answers with a fixed JSON body.
func (x *exchange) writeStatic(status int, body []byte) {
	h := x.w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead {
		_, _ = x.w.Write(body)
	}
}

// writeError answers with {"message": msg} and more fields.
func (x *exchange) writeError(status int, msg string, extra map[string]any) {
	doc := map[string]any{"message": msg}
	for k, v := range extra {
		doc[k] = v
	}
	writeJSON(x.w, x.r, status, doc)
}

// finish counts, logs and reports the request.
func (x *exchange) finish() {
	end := x.g.now()
	status := x.rw.status
	if status == 0 {
		status = http.StatusOK
	}
	ms := float64(end.Sub(x.start)) / float64(time.Millisecond)
	stageName, routePath := "", ""
	if x.stage != nil {
		stageName = x.stage.name
	}
	if x.rs != nil {
		routePath = x.route.path
		x.rs.obs.observe(x.r.Method, status, ms)
	} else {
		x.g.met.unmatchedObs(stageName).observe(x.r.Method, status, ms)
	}
	if x.g.access.Enabled(x.r.Context(), slog.LevelInfo) {
		x.accessLog(stageName, routePath, status, ms)
	}
	if t := x.g.cfg.Tracer; t != nil && x.sampled {
		x.exportSpan(t, end, stageName, routePath, status)
	}
}

func (x *exchange) accessLog(stageName, routePath string, status int, ms float64) {
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("method", x.r.Method),
		slog.String("path", x.r.URL.Path),
		slog.String("stage", stageName),
		slog.String("route", routePath),
		slog.Int("status", status),
		slog.Float64("duration_ms", ms),
		slog.Int64("bytes", x.rw.written),
		slog.String("remote", x.r.RemoteAddr),
	)
	if x.route != nil && x.route.authName != "" {
		attrs = append(attrs, slog.String("authorizer", x.route.authName), slog.String("auth", x.authOutcome))
		if x.auth != nil && x.auth.principal != "" {
			attrs = append(attrs, slog.String("principal", x.auth.principal))
		}
	}
	if x.cache != "" {
		attrs = append(attrs, slog.String("cache", x.cache))
	}
	if x.throttled != "" {
		attrs = append(attrs, slog.String("throttled", x.throttled))
	}
	if x.reason != "" {
		attrs = append(attrs, slog.String("reason", x.reason))
	}
	if x.traceID != [16]byte{} {
		attrs = append(attrs, slog.String("trace_id", (&Span{TraceID: x.traceID}).TraceIDString()))
	}
	x.g.access.LogAttrs(x.r.Context(), slog.LevelInfo, "gateway: access", attrs...)
}

// startSpan reads the client's trace context and gives the backend this
// request's span as its parent.
func (x *exchange) startSpan() {
	tc, ok := tracecontext.Parse(x.r.Header.Get("Traceparent"))
	if !ok {
		tc = tracecontext.Context{TraceID: tracecontext.NewTraceID(), Flags: 1}
		if smp, ok := x.g.cfg.Tracer.(Sampler); ok && !smp.Sample(tc.TraceID) {
			tc.Flags = 0
		}
	}
	x.sampled = tc.Sampled()
	x.traceID, x.parentSpan, x.spanID = tc.TraceID, tc.SpanID, tracecontext.NewSpanID()
	x.r.Header.Set("Traceparent", tracecontext.Format(tc.TraceID, x.spanID, tc.Flags))
}

func (x *exchange) exportSpan(t Tracer, end time.Time, stageName, routePath string, status int) {
	s := Span{TraceID: x.traceID, SpanID: x.spanID, Parent: x.parentSpan, Start: x.start, End: end,
		Stage: stageName, Route: routePath, Method: x.r.Method, Path: x.r.URL.Path, Status: status,
		AuthResult: x.authOutcome, Cache: x.cache}
	s.Name = x.r.Method
	if routePath != "" {
		s.Name += " " + routePath
	}
	if x.route != nil {
		s.Authorizer = x.route.authName
		s.Integration = x.rs.integ.kind()
	}
	t.ExportSpan(s)
}

func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// requestContext bounds a backend call by the integration's timeout; the
// caller cancels it when the call is over. A callctx rather than
// context.WithTimeout: the upstream client puts its deadline on the
// connection, and neither a timer nor a watch is made unless something
// asks for Done (about eight allocations and two timer operations fewer a
// request).
func (x *exchange) requestContext(timeout time.Duration) *callctx.Context {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return callctx.WithTimeout(x.r.Context(), timeout)
}
