package mesh

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport returns an http.RoundTripper that carries caller's requests to
// its service URLs (ServiceURL) in process: the request is served by the
// URL's listener's handler, as if it had come over the socket, with the
// same policy, retries, balancing, metrics and caller identity, without
// the loopback connection and a second parse. Other URLs get an error.
// The listener's server's body timeout is left out: it sets deadlines on
// a connection an in-process request does not have (the caller's own
// server bounds its client's body), and cost four allocations a request
// with a body.
// The gateway's service integrations use it, so that a request from the
// ingress crosses one TCP connection after the ingress, to the replica.
func (m *Mesh) Transport(caller string) http.RoundTripper {
	return &inProcess{m: m, caller: caller, work: make(chan *inFlight), idleFor: workerIdle}
}

type inProcess struct {
	m      *Mesh
	caller string
	work   chan *inFlight // to an idle worker
	mu     sync.RWMutex
	byHost map[string]http.Handler // listener address -> its handler

	idleFor time.Duration // workerIdle; shorter in tests
	workers atomic.Int32  // running worker goroutines
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
		if k.caller == t.caller && k.target != "" && l.handler != nil && strings.TrimPrefix(l.url, "http://") == host {
			h = l.handler
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

// RoundTrip serves req with its listener's handler on a worker goroutine
// and returns the response when the handler returns, or, for a body that
// is long or flushed, as soon as it starts (it then streams).
func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, false)
}

// RoundTripTakingHeader is RoundTrip for a caller that hands req's header
// map over: the mesh's handler edits it (hop-by-hop headers out, trace
// context in) instead of a copy. The gateway's request is its own, so its
// service integrations call this (Header.Clone was three allocations and
// about 450 bytes a request).
func (t *inProcess) RoundTripTakingHeader(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, true)
}

func (t *inProcess) roundTrip(req *http.Request, takeHeader bool) (*http.Response, error) {
	h := t.handler(req.URL.Host)
	if h == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("mesh: %s has no service listener at %s", t.caller, req.URL.Host)
	}
	// The request as the listener's server would have read it. The
	// handler edits headers (hop-by-hop, identity): it gets a copy unless
	// the caller hands its map over. The request, its URL and the writer
	// take one allocation.
	x := &inFlight{h: h}
	in := &x.req
	*in = *req
	x.url = url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	in.URL = &x.url
	in.RequestURI = in.URL.RequestURI()
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1
	if !takeHeader {
		in.Header = req.Header.Clone()
	}
	if in.Header == nil {
		in.Header = http.Header{}
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.GetBody, in.Close, in.TLS, in.Trailer, in.TransferEncoding = nil, false, nil, nil, nil
	in.RemoteAddr = "127.0.0.1:0"
	// x is new, so w is zero: its fields are set one by one, not by
	// copying a whole pipeWriter (about 800 bytes) over it.
	w := &x.w
	w.req = req
	w.held = w.heldArr[:0]
	// Done once the response is handed over; a WaitGroup in x rather
	// than a channel of its own, one allocation fewer.
	w.ready.Add(1)
	t.run(x)
	w.ready.Wait()
	return w.resp, nil
}

// inFlight is one in-process request: what the handler reads and writes.
type inFlight struct {
	h   http.Handler
	req http.Request
	url url.URL
	w   pipeWriter
}

// workerIdle is how long, at least (at most twice that), a worker
// goroutine waits for another request before it ends.
const workerIdle = 5 * time.Second

// run serves x on an idle worker, or on a new one. A worker serves request
// after request: a new goroutine would grow its stack to the depth of the
// mesh's handler every time (runtime.newstack and copystack were 4.5% of
// the CPU of the gateway's service route).
func (t *inProcess) run(x *inFlight) {
	select {
	case t.work <- x:
	default:
		go t.worker(x)
	}
}

// worker serves x, then the requests run hands it, until a whole
// workerIdle passed without one (it ends after workerIdle to twice that
// of idleness). Its timer is re-armed when it fires, not after every
// request: a timer reset per request took the timers' lock, and a clock
// reading per request to tell the idle time cost about as much.
func (t *inProcess) worker(x *inFlight) {
	t.workers.Add(1)
	defer t.workers.Add(-1)
	idle := time.NewTimer(t.idleFor)
	defer idle.Stop()
	for x != nil {
		t.serve(x)
		x = t.next(idle)
	}
}

// next waits for a worker's next request, after it served one: nil once
// its timer has fired twice without one (the first time, the worker may
// have been busy for most of the period).
func (t *inProcess) next(idle *time.Timer) *inFlight {
	for served := true; ; served = false {
		select {
		case x := <-t.work:
			return x
		case <-idle.C:
			if !served {
				return nil
			}
			idle.Reset(t.idleFor)
		}
	}
}

// serve runs the handler; a panic aborts the response, as the listener's
// server would break the connection.
func (t *inProcess) serve(x *inFlight) {
	w := &x.w
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				t.m.logger().Error("mesh: in-process handler panicked", "caller", t.caller, "panic", v)
			}
			w.abort(fmt.Errorf("mesh: in-process request aborted: %v", v))
			return
		}
		w.finish()
	}()
	x.h.ServeHTTP(w, &x.req)
}

// maxHeldBody is how much of an answer's body is held until the handler
// returns, so that a short answer is handed over whole, in one step; a
// longer one, or one the handler flushes, streams through a pipe.
const maxHeldBody = 64 << 10

// pipeWriter is the ResponseWriter of an in-process request. The status,
// the headers and a short body become an http.Response when the handler
// returns; a longer or flushed body streams through a pipe, the response
// handed over as soon as it starts.
type pipeWriter struct {
	req       *http.Request
	header    http.Header
	status    int
	held      []byte
	heldArr   [512]byte // held's first bytes, a short answer's whole body
	body      heldBody
	pw        *io.PipeWriter // set once streaming
	resp      *http.Response
	ready     sync.WaitGroup // done when resp is handed over
	wroteHead bool
	committed bool
	shared    bool          // resp.Header is header, not a copy
	respv     http.Response // resp, when made
}

// Header is the answer's header map, made on first use: the mesh's
// handler usually gives it the replica's (adoptHeader).
func (w *pipeWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

// adoptHeader makes h the answer's header map, unless headers were set
// or written already.
func (w *pipeWriter) adoptHeader(h http.Header) bool {
	if w.wroteHead || len(w.header) > 0 {
		return false
	}
	w.header = h
	return true
}

func (w *pipeWriter) WriteHeader(code int) {
	if w.wroteHead || code < 200 && code != http.StatusSwitchingProtocols {
		return // informational answers are dropped, as the upstream client does
	}
	w.status = code
	w.freeze()
}

// freeze marks the status and headers written. They become the response
// when it is handed over: copied then if the handler is still running
// (streaming), taken as they are if it has returned. A response that
// declares trailers is copied at once, the handler setting them in its map
// later. The mesh's handler changes no other header after WriteHeader;
// trailers set with http.TrailerPrefix are moved out of the map at the end.
func (w *pipeWriter) freeze() {
	if w.wroteHead {
		return
	}
	w.wroteHead = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if _, ok := w.header["Trailer"]; ok {
		w.head(true)
	}
}

// head builds the response from the status and headers, copying them
// when the handler may still change the map (copy set).
func (w *pipeWriter) head(copy bool) {
	if w.resp != nil {
		return
	}
	w.freeze()
	if w.resp != nil {
		return // copied by freeze
	}
	h := w.Header()
	if copy {
		h = h.Clone()
	} else {
		w.shared = true
	}
	resp := &w.respv
	*resp = http.Response{
		Status: statusLine(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: -1, Request: w.req,
	}
	if cl := h["Content-Length"]; len(cl) > 0 && cl[0] != "" {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		}
	}
	if names := h["Trailer"]; len(names) > 0 && copy {
		resp.Trailer = http.Header{}
		for _, v := range names {
			for _, k := range strings.Split(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					resp.Trailer[http.CanonicalHeaderKey(k)] = nil
				}
			}
		}
	}
	// Declared after WriteHeader, trailers are not declared.
	delete(h, "Trailer")
	w.resp = resp
}

// stream hands the response over with a pipe for its body, the bytes
// held so far first.
func (w *pipeWriter) stream() error {
	if w.committed {
		return nil
	}
	w.head(true)
	w.committed = true
	pr, pw := io.Pipe()
	w.pw, w.resp.Body = pw, pr
	w.ready.Done()
	held := w.held
	w.held = nil
	if len(held) > 0 {
		_, err := pw.Write(held)
		return err
	}
	return nil
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.freeze()
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if !w.committed && len(w.held)+len(p) <= maxHeldBody {
		w.held = append(w.held, p...)
		return len(p), nil
	}
	if err := w.stream(); err != nil {
		return 0, err
	}
	return w.pw.Write(p)
}

// SetReadDeadline reports that an in-process request has no connection to
// set a deadline on (the caller's own server bounds its body's reads), for
// http.ResponseController: without the method, each call would walk the
// writer and format a new error (3.7 allocations a request with a body,
// from netguard's body timeout).
func (w *pipeWriter) SetReadDeadline(time.Time) error { return http.ErrNotSupported }

// Flush hands the response over and streams its body from now on.
func (w *pipeWriter) Flush() { _ = w.stream() }

// abort ends the response with err: before it was handed over, as a
// body that fails at once.
func (w *pipeWriter) abort(err error) {
	if !w.committed {
		w.head(false)
		w.committed = true
		w.resp.Body = io.NopCloser(&failingReader{err})
		w.ready.Done()
		return
	}
	w.pw.CloseWithError(err)
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// finish ends the response after the handler returned, with the trailers
// it set: a response not yet handed over goes with its whole body.
func (w *pipeWriter) finish() {
	w.head(false)
	w.setTrailers()
	if !w.committed {
		w.committed = true
		w.body.Reader.Reset(w.held)
		w.resp.Body = &w.body
		if w.resp.ContentLength < 0 && w.req.Method != http.MethodHead {
			w.resp.ContentLength = int64(len(w.held))
		}
		w.ready.Done()
		return
	}
	w.pw.Close()
}

// setTrailers copies the trailers the handler set into the response.
func (w *pipeWriter) setTrailers() {
	for k, vv := range w.header {
		switch {
		case strings.HasPrefix(k, http.TrailerPrefix):
			if w.resp.Trailer == nil {
				w.resp.Trailer = http.Header{}
			}
			w.resp.Trailer[http.CanonicalHeaderKey(strings.TrimPrefix(k, http.TrailerPrefix))] = vv
			if w.shared {
				delete(w.header, k)
			}
		case w.resp.Trailer != nil:
			if _, declared := w.resp.Trailer[k]; declared {
				w.resp.Trailer[k] = vv
			}
		}
	}
}

// heldBody is a short answer's body, handed over whole.
type heldBody struct{ bytes.Reader }

func (*heldBody) Close() error { return nil }

// statusLines are the Status of the responses with a known code.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m[code] = strconv.Itoa(code) + " " + text
		}
	}
	return m
}()

// statusLine is an http.Response's Status for code, as net/http's client
// sets it.
func statusLine(code int) string {
	if s, ok := statusLines[code]; ok {
		return s
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
