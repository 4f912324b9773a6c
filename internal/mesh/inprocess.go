package mesh

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Transport returns an http.RoundTripper that carries caller's requests to
// its service URLs (ServiceURL) in process: the request is served by the
// URL's listener's handler, as if it had come over the socket, with the
// same policy, retries, balancing, metrics and caller identity, without
// the loopback connection and a second parse. Other URLs get an error.
// The gateway's service integrations use it, so that a request from the
// ingress crosses one TCP connection after the ingress, to the replica.
func (m *Mesh) Transport(caller string) http.RoundTripper {
	return &inProcess{m: m, caller: caller}
}

type inProcess struct {
	m      *Mesh
	caller string
	mu     sync.RWMutex
	byHost map[string]http.Handler // listener address -> its handler
}

// handler is the handler of caller's listener at host, or nil.
func (t *inProcess) handler(host string) http.Handler {
	t.mu.RLock()
	h := t.byHost[host]
	t.mu.RUnlock()
	if h != nil {
		return h
	}
	t.m.mu.Lock()
	for k, l := range t.m.listeners {
		if k.caller == t.caller && k.target != "" && strings.TrimPrefix(l.url, "http://") == host {
			h = l.srv.Handler
			break
		}
	}
	t.m.mu.Unlock()
	if h != nil {
		t.mu.Lock()
		if t.byHost == nil {
			t.byHost = map[string]http.Handler{}
		}
		t.byHost[host] = h
		t.mu.Unlock()
	}
	return h
}

// RoundTrip serves req with its listener's handler on a goroutine of its
// own and returns the response as soon as its headers are written; the
// body streams through a pipe.
func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.handler(req.URL.Host)
	if h == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("mesh: %s has no service listener at %s", t.caller, req.URL.Host)
	}
	// The request as the listener's server would have read it. The
	// handler edits headers (hop-by-hop, identity): it gets a copy.
	in := new(http.Request)
	*in = *req
	in.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	in.RequestURI = in.URL.RequestURI()
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1
	in.Header = req.Header.Clone()
	if in.Header == nil {
		in.Header = http.Header{}
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.GetBody, in.Close, in.TLS, in.Trailer, in.TransferEncoding = nil, false, nil, nil, nil
	in.RemoteAddr = "127.0.0.1:0"
	pr, pw := io.Pipe()
	w := &pipeWriter{req: req, header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					t.m.logger().Error("mesh: in-process handler panicked", "caller", t.caller, "panic", v)
				}
				w.commit()
				pw.CloseWithError(fmt.Errorf("mesh: in-process request aborted: %v", v))
				return
			}
			w.finish()
		}()
		h.ServeHTTP(w, in)
	}()
	<-w.ready
	w.resp.Body = pr
	return w.resp, nil
}

// pipeWriter is the ResponseWriter of an in-process request: the status
// and headers become an http.Response when first written, the body goes
// through a pipe.
type pipeWriter struct {
	req       *http.Request
	header    http.Header
	status    int
	pw        *io.PipeWriter
	resp      *http.Response
	ready     chan struct{}
	committed bool
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if w.committed || code < 200 && code != http.StatusSwitchingProtocols {
		return // informational answers are dropped, as the upstream client does
	}
	w.status = code
	w.commit()
}

// commit publishes the response's head. The headers are copied: the
// handler may set trailers in its map later.
func (w *pipeWriter) commit() {
	if w.committed {
		return
	}
	w.committed = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.header.Clone()
	resp := &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: -1, Request: w.req,
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	if names := h["Trailer"]; len(names) > 0 {
		resp.Trailer = http.Header{}
		for _, v := range names {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					resp.Trailer[http.CanonicalHeaderKey(k)] = nil
				}
			}
		}
		delete(h, "Trailer")
	}
	w.resp = resp
	close(w.ready)
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.commit()
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	return w.pw.Write(p)
}

// Flush publishes the head; the body has no buffer to flush.
func (w *pipeWriter) Flush() { w.commit() }

// finish ends the body after the handler returned, with the trailers it
// set.
func (w *pipeWriter) finish() {
	w.commit()
	for k, vv := range w.header {
		switch {
		case strings.HasPrefix(k, http.TrailerPrefix):
			if w.resp.Trailer == nil {
				w.resp.Trailer = http.Header{}
			}
			w.resp.Trailer[http.CanonicalHeaderKey(strings.TrimPrefix(k, http.TrailerPrefix))] = vv
		case w.resp.Trailer != nil:
			if _, declared := w.resp.Trailer[k]; declared {
				w.resp.Trailer[k] = vv
			}
		}
	}
	w.pw.Close()
}
