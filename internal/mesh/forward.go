package mesh

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"
)

// outcome classifies one attempt.
type outcome uint8

const (
	outOK             outcome = iota // a response came
	outConnectFailure                // no connection to the replica
	outReset                         // the connection broke before the response
	outPerTryTimeout                 // the try's own deadline passed
	outTimeout                       // the request's deadline passed
	outCanceled                      // the caller went away
)

// String names the outcome for a span's retry event, as Envoy's
// retry_on words them; "" for a response (its status says the rest).
func (o outcome) String() string {
	switch o {
	case outConnectFailure:
		return "connect-failure"
	case outReset:
		return "reset"
	case outPerTryTimeout:
		return "per-try-timeout"
	case outTimeout:
		return "timeout"
	case outCanceled:
		return "canceled"
	}
	return ""
}

// forward sends the request to a replica of svc, retrying as its policy
// says, and copies the response back.
func (m *Mesh) forward(w http.ResponseWriter, r *http.Request, c *compiled, caller string, svc *service, proto uint8) result {
	ctx := r.Context()
	if svc.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, svc.timeout)
		defer cancel()
	}
	upgrade := upgradeType(r.Header)
	removeHopHeaders(r.Header, upgrade)
	pol := &svc.retry
	var replay *replayBody
	if pol.attempts > 0 && hasBody(r) && r.ContentLength <= c.cfg.RetryBuffer {
		replay = &replayBody{src: r.Body, limit: int(c.cfg.RetryBuffer)}
	}
	var key uint64
	var hasKey bool
	var setCookie string
	if svc.lb.alg == lbRingHash {
		key, hasKey, setCookie = svc.lb.hashKey(r)
	}
	tr := m.rt1
	if svc.grpc {
		tr = m.rt2
	}
	var triedBuf [4]*endpoint
	avoid := triedBuf[:0]
	// events are the retries and ejections of this request, for its span;
	// nil on the common path, where neither happens.
	var events []SpanEvent
	for attempt := 0; ; attempt++ {
		ep := svc.cl.current().pick(svc.lb.alg, &svc.cl.rr, key, hasKey, avoid)
		if ep == nil {
			writeText(w, http.StatusServiceUnavailable, "no healthy upstream: service \""+svc.name+"\" has no ready replica")
			return result{status: http.StatusServiceUnavailable, flags: "UH", events: events}
		}
		avoid = append(avoid, ep)
		tryCtx, tryCancel := ctx, context.CancelFunc(nil)
		if pol.perTry > 0 {
			tryCtx, tryCancel = context.WithTimeout(ctx, pol.perTry)
		}
		body := r.Body
		if replay != nil {
			body = replay.view()
		}
		out := outbound(r, tryCtx, ep.addr, body)
		ep.active.Add(1)
		t0 := time.Now()
		resp, err := tr.RoundTrip(out)
		oc := classify(err, r.Context(), ctx, tryCtx)
		if svc.cl.report(ep, (err != nil && oc != outCanceled) || (resp != nil && resp.StatusCode >= 500)) {
			events = append(events, SpanEvent{Time: time.Now(), Name: "outlier ejection", Replica: ep.addr, Attempt: attempt + 1})
		}
		wantRetry := pol.retriable(oc, resp)
		if wantRetry && attempt < pol.attempts && ctx.Err() == nil && canReplay(r, replay) {
			ev := SpanEvent{Time: time.Now(), Name: "retry", Replica: ep.addr, Attempt: attempt + 1, Reason: oc.String()}
			if resp != nil {
				ev.Status = resp.StatusCode
			}
			events = append(events, ev)
			if resp != nil {
				m.observeUpstream(c, caller, svc, proto, resp.StatusCode, t0)
				discard(resp.Body)
			}
			ep.active.Add(-1)
			if tryCancel != nil {
				tryCancel()
			}
			if !sleepCtx(ctx, backoff(attempt+1)) {
				res := m.upstreamError(w, r, outTimeout, svc, "")
				res.events = events
				return res
			}
			continue
		}
		exhausted := ""
		if wantRetry && attempt > 0 {
			exhausted = "URX"
		}
		if err != nil {
			ep.active.Add(-1)
			if tryCancel != nil {
				tryCancel()
			}
			res := m.upstreamError(w, r, oc, svc, exhausted)
			res.upstream, res.events = ep.addr, events
			return res
		}
		res := m.copyResponse(w, r, resp, setCookie)
		res.upstream, res.events = ep.addr, events
		if res.flags == "" {
			res.flags = exhausted
		}
		if res.abort && tryCtx.Err() != nil && r.Context().Err() == nil {
			res.flags = "UT"
		}
		m.observeUpstream(c, caller, svc, proto, resp.StatusCode, t0)
		ep.active.Add(-1)
		if tryCancel != nil {
			tryCancel()
		}
		return res
	}
}

// observeUpstream counts one attempt that reached a replica, as the
// destination's sidecar reports it in Istio.
func (m *Mesh) observeUpstream(c *compiled, caller string, svc *service, proto uint8, code int, t0 time.Time) {
	m.tel.observe(cellKey{
		reporter: reporterDestination, proto: proto, code: uint16(code),
		src: caller, srcNS: peerNamespace(c, caller), dst: svc.name, dstNS: c.ns, security: c.peerSecurity,
	}, msSince(t0, time.Now()))
}

// upstreamError answers a request that got no response, with Envoy's
// status, body and response flag.
func (m *Mesh) upstreamError(w http.ResponseWriter, r *http.Request, oc outcome, svc *service, extraFlag string) result {
	var res result
	switch oc {
	case outConnectFailure:
		res = result{status: http.StatusServiceUnavailable, flags: "UF"}
		writeText(w, res.status, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
	case outPerTryTimeout, outTimeout:
		res = result{status: http.StatusGatewayTimeout, flags: "UT"}
		writeText(w, res.status, "upstream request timeout")
	case outCanceled:
		// Nobody is listening; Envoy logs status 0.
		return result{status: 0, flags: "DC"}
	default:
		res = result{status: http.StatusServiceUnavailable, flags: "UC"}
		writeText(w, res.status, "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
	}
	res.flags = joinFlags(res.flags, extraFlag)
	return res
}

func classify(err error, client, request, try context.Context) outcome {
	if err == nil {
		return outOK
	}
	switch {
	case client.Err() != nil:
		return outCanceled
	case request.Err() != nil:
		return outTimeout
	case try.Err() != nil:
		return outPerTryTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return outConnectFailure
	}
	return outReset
}

// retriable applies Envoy's retry_on conditions. A connect failure is
// retried under connect-failure, 5xx and gateway-error; a reset or a
// per-try timeout under reset, 5xx and gateway-error.
func (p *retryPolicy) retriable(oc outcome, resp *http.Response) bool {
	if p.attempts == 0 {
		return false
	}
	switch oc {
	case outConnectFailure:
		return p.on&(retryConnectFailure|retry5xx|retryGatewayError) != 0
	case outReset, outPerTryTimeout:
		return p.on&(retryReset|retry5xx|retryGatewayError) != 0
	case outOK:
		code := resp.StatusCode
		switch {
		case code >= 500 && p.on&retry5xx != 0:
			return true
		case (code == 502 || code == 503 || code == 504) && p.on&retryGatewayError != 0:
			return true
		case code == http.StatusConflict && p.on&retryRetriable4xx != 0:
			return true
		}
	}
	return false
}

// backoff is Envoy's fully jittered exponential back-off: the n-th retry
// waits a random time in [0, (2^n-1)×25ms), capped at 250ms.
func backoff(n int) time.Duration {
	limit := retryBase * time.Duration(1<<min(n, 10)-1)
	limit = min(limit, 10*retryBase)
	return time.Duration(rand.Int64N(int64(limit)))
}

// canReplay reports whether the request can be sent again: it has no body,
// or its body was kept whole within the retry buffer.
func canReplay(r *http.Request, rb *replayBody) bool {
	if rb != nil {
		return rb.rewind()
	}
	return !hasBody(r)
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// outboundReq holds an attempt's request and URL in one allocation.
type outboundReq struct {
	req http.Request
	url url.URL
}

// outbound is the request of one attempt: a shallow copy of the caller's,
// with the replica's address. Headers are shared: they were cleaned once.
// Without a deadline of its own the copy keeps the caller's context, and
// request and URL take a single allocation.
func outbound(r *http.Request, ctx context.Context, addr string, body io.ReadCloser) *http.Request {
	var out *http.Request
	var u *url.URL
	if ctx == r.Context() {
		o := &outboundReq{req: *r}
		out, u = &o.req, &o.url
	} else {
		out, u = r.WithContext(ctx), new(url.URL)
	}
	*u = url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.URL = u
	out.RequestURI = ""
	out.Body = body
	out.Close = false
	return out
}

// hopHeaders are the hop-by-hop headers of RFC 9110 a proxy drops.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders drops hop-by-hop headers, and those the Connection
// header names. "Te: trailers" stays (gRPC needs it), and an upgrade keeps
// its Connection and Upgrade headers.
func removeHopHeaders(h http.Header, upgrade string) {
	if conn := h["Connection"]; len(conn) > 0 {
		for _, v := range conn {
			for _, f := range strings.Split(v, ",") {
				if f = textproto.TrimString(f); f != "" {
					h.Del(f)
				}
			}
		}
	}
	teTrailers := false
	if te := h["Te"]; len(te) > 0 {
		for _, v := range te {
			if strings.Contains(strings.ToLower(v), "trailers") {
				teTrailers = true
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
	if teTrailers {
		h["Te"] = []string{"trailers"}
	}
	if upgrade != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{upgrade}
	}
}

// upgradeType is the protocol a request asks to upgrade to, or "".
func upgradeType(h http.Header) string {
	conn := h["Connection"]
	if len(conn) == 0 {
		return ""
	}
	for _, v := range conn {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

func discard(b io.ReadCloser) {
	// A little draining lets the connection be reused; more is not worth it.
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	b.Close()
}

// bufPool holds the buffers responses are copied through.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// headerAdopter is a ResponseWriter that can take a response's header map
// as its own, when nothing was set in its own yet (the in-process writer:
// a map and a copy fewer a request).
type headerAdopter interface {
	adoptHeader(http.Header) bool
}

// copyResponse writes resp to w: headers without hop-by-hop ones, the body
// (flushed as it comes when it is streamed) and trailers.
func (m *Mesh) copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, setCookie string) result {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return m.switchProtocols(w, r, resp)
	}
	removeHopHeaders(resp.Header, "")
	var dst http.Header
	if a, ok := w.(headerAdopter); ok && a.adoptHeader(resp.Header) {
		dst = resp.Header
	} else {
		dst = w.Header()
		for k, vv := range resp.Header {
			dst[k] = vv
		}
	}
	if setCookie != "" {
		dst["Set-Cookie"] = append(dst["Set-Cookie"], setCookie)
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	res := result{status: resp.StatusCode}
	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	if stream {
		// A streamed response's headers go out at once, as Envoy sends
		// them: a gRPC stream may send its first message much later.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	werr, rerr := copyBody(w, resp.Body, stream)
	resp.Body.Close()
	switch {
	case werr != nil:
		res.flags = "DC"
	case rerr != nil:
		res.flags, res.abort = "UC", true
	}
	if len(resp.Trailer) > 0 {
		// Flushing forces chunking, so that net/http does not compute a
		// Content-Length for a short body and drop the trailers.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				dst[k] = vv
			}
		} else {
			for k, vv := range resp.Trailer {
				dst[http.TrailerPrefix+k] = vv
			}
		}
	}
	if v := resp.Trailer["Grpc-Status"]; len(v) > 0 {
		res.grpc = v[0]
	} else if v := resp.Header["Grpc-Status"]; len(v) > 0 {
		res.grpc = v[0]
	}
	return res
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}

// copyBody copies body to w through a pooled buffer, flushing after each
// write when flush is set. It reports the write and read errors apart.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) (werr, rerr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var fl http.Flusher
	if flush {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, e := w.Write(buf[:n]); e != nil {
				return e, nil
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// switchProtocols completes an upgrade (WebSocket): the caller's
// connection is taken over and joined to the replica's.
func (m *Mesh) switchProtocols(w http.ResponseWriter, r *http.Request, resp *http.Response) result {
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		writeText(w, http.StatusBadGateway, "upgrade: the replica's connection cannot be taken over")
		return result{status: http.StatusBadGateway, flags: "UPE"}
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		back.Close()
		writeText(w, http.StatusBadGateway, "upgrade: "+err.Error())
		return result{status: http.StatusBadGateway, flags: "UPE"}
	}
	untrack := m.trackHijacked(conn)
	defer untrack()
	defer conn.Close()
	defer back.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = resp.Header.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return result{status: http.StatusSwitchingProtocols, flags: "DC"}
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(back, brw.Reader)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(conn, back)
		done <- struct{}{}
	}()
	<-done
	// Either side ending ends both, as a TCP proxy does.
	conn.Close()
	back.Close()
	<-done
	return result{status: http.StatusSwitchingProtocols}
}

// forwardDirect sends a plain-HTTP request to its own host, outside the
// mesh, with no policy.
func (m *Mesh) forwardDirect(w http.ResponseWriter, r *http.Request) result {
	if r.URL.Scheme != "http" {
		writeText(w, http.StatusBadRequest, "the mesh proxy forwards http:// URLs; use CONNECT for https")
		return result{status: http.StatusBadRequest}
	}
	upgrade := upgradeType(r.Header)
	removeHopHeaders(r.Header, upgrade)
	out := outbound(r, r.Context(), r.URL.Host, r.Body)
	out.URL.Scheme = "http"
	resp, err := m.rt1.RoundTrip(out)
	if err != nil {
		oc := classify(err, r.Context(), r.Context(), r.Context())
		if oc == outCanceled {
			return result{status: 0, flags: "DC"}
		}
		writeText(w, http.StatusBadGateway, "upstream connect error: "+err.Error())
		return result{status: http.StatusBadGateway, flags: "UF"}
	}
	return m.copyResponse(w, r, resp, "")
}
