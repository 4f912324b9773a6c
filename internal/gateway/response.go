package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// forward answers x from the cache or the integration.
func (x *exchange) forward() {
	rs := x.rs
	r := x.r
	var key string
	cacheOn := (r.Method == http.MethodGet || r.Method == http.MethodHead) && rs.cacheTTL > 0 && x.stage.cache != nil
	if cacheOn {
		key = x.cacheKey()
		// Only a client the route's authorizer let in may make the
		// gateway skip its cache: anyone else could drain the backend.
		if x.auth != nil && wantsFresh(r.Header) {
			x.cache = "bypass"
			rs.obs.cacheBypass.Inc()
		} else if e, ok := x.stage.cache.get(key, x.start); ok {
			x.cache = "hit"
			rs.obs.cacheHit.Inc()
			x.writeCached(e)
			return
		} else {
			x.cache = "miss"
			rs.obs.cacheMiss.Inc()
		}
	}
	buffered := cacheOn || x.route.response != nil
	x.respond(rs.integ.call(x, buffered), cacheOn, key)
}

// respond writes a backend's answer: status mapping, transform, headers,
// and into the cache.
func (x *exchange) respond(a *answer, cacheOn bool, key string) {
	if a.stream != nil {
		x.stream(a)
		return
	}
	status, header, body := a.status, a.header, a.body
	if rp := x.route.response; rp != nil {
		if a.failed {
			for _, sm := range rp.statusCodes {
				if sm.re.MatchString(a.errMsg) {
					status = sm.status
					break
				}
			}
		}
		if rp.transform != nil && !a.failed && status/100 == 2 && len(bytes.TrimSpace(body)) > 0 {
			out, err := x.transformAnswer(body)
			if err != nil {
				x.reason = "response.transform: " + err.Error()
				x.writeStatic(http.StatusBadGateway, msgBadGateway)
				return
			}
			body = out
			header = header.Clone()
			header["Content-Type"] = jsonContentType
		}
	}
	if a.failed && x.reason == "" {
		x.reason = "backend: " + a.errMsg
	}
	h := x.w.Header()
	x.copyHeader(h, header)
	for k, v := range x.rs.responseHeaders {
		h[k] = v
	}
	head := x.r.Method == http.MethodHead
	// A HEAD answer keeps the length the backend gave: that of the GET.
	if cl := header["Content-Length"]; len(cl) == 1 && (head || atoiEq(cl[0], len(body))) {
		h["Content-Length"] = cl
	} else {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	if cacheOn {
		switch x.cache {
		case "miss":
			h[headerCache] = cacheMissVals
		case "bypass":
			h[headerCache] = cacheBypassVals
		}
		if !a.failed && cacheable(status, header) {
			stored := header.Clone()
			if stored == nil {
				stored = http.Header{}
			}
			for k, v := range x.rs.responseHeaders {
				stored[k] = v
			}
			if !head {
				delete(stored, "Content-Length")
			}
			x.stage.cache.put(key, status, stored, body, x.rs.cacheTTL, x.start)
		}
	}
	x.w.WriteHeader(status)
	if x.r.Method != http.MethodHead {
		_, _ = x.w.Write(body)
	}
}

// copyHeader copies a backend's headers into the answer's. Vary merges
// with the gateway's own; the backend's CORS headers yield to the route's
// policy when it has one; Content-Length is the gateway's to set.
func (x *exchange) copyHeader(dst, src http.Header) {
	cors := x.route.cors != nil
	for k, v := range src {
		switch {
		case k == "Content-Length":
		case k == "Vary" && len(dst[k]) > 0:
			dst[k] = append(dst[k][:len(dst[k]):len(dst[k])], v...)
		case cors && strings.HasPrefix(k, "Access-Control-"):
		default:
			dst[k] = v
		}
	}
}

// stream copies an answer's body as it comes, flushing each read when the
// backend did not say how long it is (event streams, long polls).
func (x *exchange) stream(a *answer) {
	defer a.release(x)
	h := x.w.Header()
	x.copyHeader(h, a.header)
	if cl := a.header["Content-Length"]; len(cl) > 0 {
		h["Content-Length"] = cl
	}
	for k, v := range x.rs.responseHeaders {
		h[k] = v
	}
	x.w.WriteHeader(a.status)
	if x.r.Method == http.MethodHead {
		return
	}
	flush := a.length < 0
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(x.w)
	}
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	for {
		n, err := a.stream.Read(buf)
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				x.reason = "client went away: " + werr.Error()
				return
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				x.reason = "backend answer broke off: " + err.Error()
			}
			return
		}
	}
}

// writeCached answers from the cache.
func (x *exchange) writeCached(e cached) {
	h := x.w.Header()
	x.copyHeader(h, e.header)
	h[headerCache] = cacheHitVals
	h.Set("Age", strconv.Itoa(int(e.age/time.Second)))
	if cl := e.header["Content-Length"]; x.r.Method == http.MethodHead && len(cl) > 0 {
		h["Content-Length"] = cl
	} else {
		h.Set("Content-Length", strconv.Itoa(len(e.body)))
	}
	x.w.WriteHeader(e.status)
	if x.r.Method != http.MethodHead {
		_, _ = x.w.Write(e.body)
	}
}

// transformAnswer runs response.transform over a JSON answer.
func (x *exchange) transformAnswer(body []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, errNotJSON
	}
	out, err := runJQ(x.r.Context(), x.route.response.transform, doc)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

var errNotJSON = errors.New("the backend's answer is not JSON")

// errorMessage is a failed backend's error message, which statusCodes
// patterns match: the error, message or errorMessage field of a JSON
// answer, else the answer's text (its first KiB), else its status line.
func errorMessage(statusLine string, body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var doc map[string]any
		if json.Unmarshal(body, &doc) == nil {
			for _, k := range []string{"error", "message", "errorMessage"} {
				if s, ok := doc[k].(string); ok && s != "" {
					return s
				}
				if m, ok := doc[k].(map[string]any); ok {
					if s, ok := m["message"].(string); ok && s != "" {
						return s
					}
				}
			}
		}
	}
	if len(body) > 0 {
		if len(body) > 1024 {
			body = body[:1024]
		}
		return string(body)
	}
	return statusLine
}

// atoiEq says whether s is n written in decimal, without allocating.
func atoiEq(s string, n int) bool {
	v, err := strconv.Atoi(s)
	return err == nil && v == n
}
