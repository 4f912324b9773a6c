package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nubo-dev/nubo/internal/callctx"
	"github.com/nubo-dev/nubo/internal/edgeheader"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/nubo-dev/nubo/internal/urlpath"
)

// integration is a route's backend in one stage.
type integration interface {
	kind() string
	// call sends x to the backend. With buffered, the answer's body is
	// read whole (transforms, status mapping and the cache need it);
	// otherwise it may be a stream.
	call(x *exchange, buffered bool) *answer
}

// answer is a backend's answer, or the gateway's own failure to get one.
type answer struct {
	status int
	header http.Header
	body   []byte
	// stream, when set, is the body still to be copied (length bytes, -1
	// when unknown); release ends the call once it is.
	stream io.ReadCloser
	length int64
	call   *callctx.Context // ended once the stream is
	start  time.Time
	// failed says the backend failed (an error status, or no answer);
	// errMsg is its error message, which statusCodes match.
	failed bool
	errMsg string
}

// release ends a streamed call.
func (a *answer) release(x *exchange) {
	a.stream.Close()
	a.call.Cancel()
	x.rs.obs.backend.Observe(msSince(x.g.now(), a.start))
}

// failure is the gateway's answer when it got none from the backend.
func failure(status int, body []byte, errMsg string) *answer {
	return &answer{status: status, header: http.Header{"Content-Type": jsonContentType}, body: body, failed: true, errMsg: errMsg}
}

func (g *Gateway) compileIntegration(c *compiled, rt *route, in *spec.Integration, lookup func(string) (string, error)) (integration, error) {
	interp := func(field, s string) (string, error) {
		v, err := spec.Interpolate(s, lookup)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return v, nil
	}
	timeout := in.Timeout.Duration
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	switch in.Type {
	case "mock":
		body, err := interp("body", in.Body)
		if err != nil {
			return nil, err
		}
		status := in.Status
		if status == 0 {
			status = http.StatusOK
		}
		if status < 100 || status > 599 {
			return nil, fmt.Errorf("status %d is not an HTTP status", status)
		}
		m := &mockIntegration{status: status, body: []byte(body), header: http.Header{}}
		for _, k := range sortedKeys(in.Headers) {
			v, err := interp("headers."+k, in.Headers[k])
			if err != nil {
				return nil, err
			}
			m.header.Set(k, v)
		}
		m.header.Set("Content-Length", strconv.Itoa(len(m.body)))
		if status >= 400 {
			m.errMsg = errorMessage(strconv.Itoa(status)+" "+http.StatusText(status), m.body)
		}
		return m, nil
	case "service":
		name, err := interp("service", in.Service)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, errors.New("a service integration needs service")
		}
		path, err := interp("path", in.Path)
		if err != nil {
			return nil, err
		}
		if err := checkBackendPath(path, rt.params); err != nil {
			return nil, err
		}
		return &proxyIntegration{typ: "service", service: name, path: path, timeout: timeout}, nil
	case "http":
		raw, err := interp("url", in.URL)
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("url %q: want http(s)://HOST/PATH", raw)
		}
		path := u.Path
		if path == "" {
			path = "/"
		}
		if err := checkBackendPath(path, rt.params); err != nil {
			return nil, err
		}
		p := &proxyIntegration{typ: "http", path: path, query: u.RawQuery, timeout: timeout}
		// A host that is a service or mesh route of the spec (http://orders/x)
		// goes through the mesh, as it would from a service's process.
		if host := u.Hostname(); u.Scheme == "http" && !strings.Contains(host, ".") && c.app != nil &&
			(c.app.Services[host] != nil || c.app.Mesh.Routes[host] != nil) {
			p.service = host
		} else {
			p.base = &url.URL{Scheme: u.Scheme, Host: u.Host, User: u.User}
		}
		return p, nil
	case "function":
		name, err := interp("function", in.Function)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, errors.New("a function integration needs function")
		}
		return &functionIntegration{function: name, timeout: timeout}, nil
	}
	return nil, fmt.Errorf("type %q: want service, function, http or mock", in.Type)
}

// checkBackendPath checks that a backend path names only the route's
// parameters.
func checkBackendPath(path string, params []string) error {
	for rest := path; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("path %q: unclosed {", path)
		}
		name := strings.TrimSuffix(rest[i+1:i+j], "+")
		found := false
		for _, p := range params {
			found = found || p == name
		}
		if !found {
			return fmt.Errorf("path %q: {%s} is not a parameter of the route", path, name)
		}
		rest = rest[i+j+1:]
	}
}

// mockIntegration answers by itself.
type mockIntegration struct {
	status int
	header http.Header
	body   []byte
	errMsg string
}

func (m *mockIntegration) kind() string { return "mock" }

func (m *mockIntegration) call(x *exchange, _ bool) *answer {
	x.ans = answer{status: m.status, header: m.header, body: m.body, failed: m.status >= 400, errMsg: m.errMsg}
	return &x.ans
}

// proxyIntegration forwards to a service through the mesh (service set)
// or to a URL (base set).
type proxyIntegration struct {
	typ     string
	service string
	base    *url.URL
	// path is the backend path, with {param}s; "" keeps the request's path
	// within its stage.
	path    string
	query   string
	timeout time.Duration
}

func (p *proxyIntegration) kind() string { return p.typ }

// removeHopHeaders drops hop-by-hop headers (RFC 9110 7.6.1), which are
// never forwarded, and those Connection names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	// One pass over the names rather than a lookup per hop-by-hop header.
	for k := range h {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			delete(h, k)
		}
	}
}

// headerTaker is a service transport that may edit the request's header
// map rather than copy it (the mesh's in-process Transport).
type headerTaker interface {
	RoundTripTakingHeader(*http.Request) (*http.Response, error)
}

func (p *proxyIntegration) call(x *exchange, buffered bool) *answer {
	base := p.base
	if p.service != "" {
		var err error
		if base, err = x.c.serviceBase(x.g, p.service); err != nil {
			x.reason = err.Error()
			return failure(http.StatusBadGateway, msgBadGateway, err.Error())
		}
	}
	r := x.r
	u := *base
	u.Path, u.RawPath = x.backendPath(p.path)
	// The request's path is clean, so no parameter's value is a dot
	// segment; this keeps it so should a template or a value ever bring
	// one (a backend would resolve it and leave the route's prefix).
	if urlpath.HasDotSegment(u.Path) {
		x.reason = fmt.Sprintf("backend path %q has a dot segment", u.Path)
		return failure(http.StatusBadRequest, msgBadRequest, x.reason)
	}
	switch {
	case p.query == "":
		u.RawQuery = r.URL.RawQuery
	case r.URL.RawQuery == "":
		u.RawQuery = p.query
	default:
		u.RawQuery = p.query + "&" + r.URL.RawQuery
	}
	ctx := x.requestContext(p.timeout)
	out := r.WithContext(ctx)
	out.URL = &u
	out.Host = ""
	out.RequestURI = ""
	out.Close = false
	out.Header = r.Header
	removeHopHeaders(out.Header)
	addForwarded(out.Header, r)
	switch {
	case x.bodyRead && len(x.body) == 0:
		// NoBody, not an empty reader: transports send NoBody as no
		// body at all, and the gateway's upstream client takes it.
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
	case x.bodyRead:
		out.Body = io.NopCloser(bytes.NewReader(x.body))
		out.ContentLength = int64(len(x.body))
		out.GetBody = nil
	case r.ContentLength == 0:
		out.Body = nil
	}
	start := x.g.now()
	var resp *http.Response
	var err error
	switch ht, ok := x.g.svcRT.(headerTaker); {
	case p.service == "":
		resp, err = x.g.rt.RoundTrip(out)
	case ok:
		// out's header map is r's, which is the gateway's to give.
		resp, err = ht.RoundTripTakingHeader(out)
	default:
		resp, err = x.g.svcRT.RoundTrip(out)
	}
	if err != nil {
		// The context says why too: the upstream client is interrupted by
		// a deadline on its connection, and reports that I/O error.
		cerr := ctx.Err()
		ctx.Cancel()
		x.rs.obs.backend.Observe(msSince(x.g.now(), start))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			x.reason = "request body too large"
			return failure(http.StatusRequestEntityTooLarge, []byte(`{"message":"Request Entity Too Large"}`), err.Error())
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(cerr, context.DeadlineExceeded):
			x.reason = fmt.Sprintf("%s integration timed out after %s", p.typ, p.timeout)
			return failure(http.StatusGatewayTimeout, msgTimeout, x.reason)
		case errors.Is(err, netguard.ErrBodyTimeout) || netguard.BodyTimedOut(x.r.Context()):
			x.reason = err.Error()
			return failure(http.StatusRequestTimeout, []byte(`{"message":"Request Timeout"}`), x.reason)
		case errors.Is(err, context.Canceled) || errors.Is(cerr, context.Canceled):
			x.reason = "client went away"
			return failure(499, msgBadGateway, x.reason)
		}
		x.reason = fmt.Sprintf("%s integration: %v", p.typ, unwrapURLError(err))
		return failure(http.StatusBadGateway, msgBadGateway, x.reason)
	}
	removeHopHeaders(resp.Header)
	a := &x.ans
	*a = answer{status: resp.StatusCode, header: resp.Header, failed: resp.StatusCode >= 400}
	if !buffered && !a.failed {
		a.stream, a.length, a.call, a.start = resp.Body, resp.ContentLength, ctx, start
		return a
	}
	defer ctx.Cancel()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBufferedAnswer+1))
	x.rs.obs.backend.Observe(msSince(x.g.now(), start))
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)):
		x.reason = fmt.Sprintf("%s integration timed out after %s", p.typ, p.timeout)
		return failure(http.StatusGatewayTimeout, msgTimeout, x.reason)
	case err != nil:
		x.reason = fmt.Sprintf("%s integration: read the answer: %v", p.typ, err)
		return failure(http.StatusBadGateway, msgBadGateway, x.reason)
	case len(body) > maxBufferedAnswer:
		x.reason = fmt.Sprintf("%s integration: answer larger than %d bytes", p.typ, maxBufferedAnswer)
		return failure(http.StatusBadGateway, msgBadGateway, x.reason)
	}
	a.body = body
	if a.failed {
		a.errMsg = errorMessage(resp.Status, body)
	}
	return a
}

func msSince(now, start time.Time) float64 {
	return float64(now.Sub(start)) / float64(time.Millisecond)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// addForwarded tells the backend about the client. The gateway is an
// edge when a client calls its own listener, and X-Forwarded-* are set as
// Envoy sets them at an edge; behind nubo's ingress, which did so already,
// they are kept.
func addForwarded(h http.Header, r *http.Request) {
	if !edgeheader.IsFromEdge(r) {
		edgeheader.Forwarded(h, r)
	}
}

// backendPath fills a backend path template with the route's parameters;
// "" is the request's path within its stage. It returns the path and, when
// a value needs escaping, its escaped form.
func (x *exchange) backendPath(tmpl string) (path, raw string) {
	if tmpl == "" {
		return x.rel, ""
	}
	if !strings.Contains(tmpl, "{") {
		return tmpl, ""
	}
	n, plain := len(tmpl), true
	for _, v := range x.vals {
		n += len(v)
		plain = plain && !needsEscape(v)
	}
	var p strings.Builder
	p.Grow(n)
	fill(&p, tmpl, x, false)
	if plain {
		return p.String(), ""
	}
	var e strings.Builder
	e.Grow(n + 16)
	fill(&e, tmpl, x, true)
	return p.String(), e.String()
}

func fill(b *strings.Builder, tmpl string, x *exchange, escape bool) {
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(rest[:i])
		seg := rest[i : i+j+1]
		val := x.route.param(x.vals, paramName(seg))
		switch {
		case !escape:
			b.WriteString(val)
		case isGreedy(seg):
			for k, part := range strings.Split(val, "/") {
				if k > 0 {
					b.WriteByte('/')
				}
				b.WriteString(url.PathEscape(part))
			}
		default:
			b.WriteString(url.PathEscape(val))
		}
		rest = rest[i+j+1:]
	}
}

// needsEscape says whether a path value holds anything but unreserved
// characters and slashes.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
			return true
		}
	}
	return false
}

// serviceBase returns the base URL of a service through the mesh, asked
// once per configuration (a failure is asked again next time).
func (c *compiled) serviceBase(g *Gateway, name string) (*url.URL, error) {
	c.svcMu.Lock()
	u := c.svcBases[name]
	c.svcMu.Unlock()
	if u != nil {
		return u, nil
	}
	if g.cfg.Services == nil {
		return nil, fmt.Errorf("service %q: the gateway was given no mesh", name)
	}
	raw, err := g.cfg.Services.ServiceURL(name)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	u, err = url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("service %q: URL %q: %w", name, raw, err)
	}
	u = &url.URL{Scheme: u.Scheme, Host: u.Host}
	c.svcMu.Lock()
	c.svcBases[name] = u
	c.svcMu.Unlock()
	return u, nil
}

// functionIntegration invokes a function with the request as the event an
// http trigger sends (type nubo.http.request, sdk/function.HTTPRequest).
type functionIntegration struct {
	function string
	timeout  time.Duration
}

func (f *functionIntegration) kind() string { return "function" }

func (f *functionIntegration) call(x *exchange, _ bool) *answer {
	fns := x.g.cfg.Functions
	if fns == nil {
		x.reason = fmt.Sprintf("function %q: the gateway was given no functions", f.function)
		return failure(http.StatusBadGateway, msgBadGateway, x.reason)
	}
	r := x.r
	fr := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Path: x.rel, RawQuery: r.URL.RawQuery},
		Header:     r.Header,
		RemoteAddr: r.RemoteAddr,
		Pattern:    x.route.muxPattern,
		Body:       io.NopCloser(bytes.NewReader(x.body)),
	}
	for i, name := range x.route.params {
		if i < len(x.vals) {
			fr.SetPathValue(name, x.vals[i])
		}
	}
	e, err := functions.NewHTTPEvent(fr)
	if err != nil {
		x.reason = fmt.Sprintf("function %q: %v", f.function, err)
		return failure(http.StatusBadRequest, []byte(`{"message":"Bad Request"}`), x.reason)
	}
	ctx := x.requestContext(f.timeout)
	defer ctx.Cancel()
	start := x.g.now()
	res, err := fns.Invoke(ctx, f.function, e)
	x.rs.obs.backend.Observe(msSince(x.g.now(), start))
	if err != nil && (!errors.Is(err, functions.ErrFunction) || res.Status == 0) {
		status := functions.HTTPStatus(err)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		x.reason = err.Error()
		var body []byte
		switch status {
		case http.StatusGatewayTimeout:
			body = msgTimeout
		case http.StatusTooManyRequests:
			body = msgTooMany
		case http.StatusServiceUnavailable:
			body = msgUnavailable
		default:
			body = msgInternal
			if status < 500 {
				status = http.StatusInternalServerError
			}
		}
		a := failure(status, body, err.Error())
		if status == http.StatusTooManyRequests {
			a.header.Set("Retry-After", "1")
		}
		return a
	}
	h := make(http.Header, len(res.Header)+1)
	for k, v := range res.Header {
		if !strings.HasPrefix(k, "Nubo-") {
			h[k] = v
		}
	}
	if res.ContentType != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", res.ContentType)
	}
	a := &answer{status: res.Status, header: h, body: res.Body, failed: res.Status >= 400}
	if a.failed {
		a.errMsg = errorMessage(strconv.Itoa(res.Status)+" "+http.StatusText(res.Status), res.Body)
	}
	return a
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
