package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// A connection's state, for Shutdown: only idle ones are closed at once.
const (
	stateActive int32 = iota
	stateIdle
	stateGone // hijacked or handed over: no longer the server's
)

// conn is one client connection. Its response state is reused from
// request to request; its write buffer is taken from a pool for a request
// and given back while the connection is idle.
type conn struct {
	s      *Server
	rwc    net.Conn
	lr     limitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	ctx    context.Context
	state  atomic.Int32
	w      response
	// heldBuf holds the first bytes of a response body of unknown length;
	// scratch is for formatting numbers. They are the connection's, so
	// that resetting the response for each request does not clear them.
	heldBuf [bufferBeforeChunking]byte
	scratch [64]byte
	date    dateCache
	body    reqBody
	head    *[]byte   // the bytes of the request being read, from headPool
	plain   plainBody // the body of a request readPlainRequest read
	// lastPOST is set when the last request was a POST.
	lastPOST bool
}

// headerLimit is how many bytes a request's line and headers may take,
// with net/http's slack.
func (c *conn) headerLimit() int64 {
	n := c.s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return int64(n) + 4096
}

// headPool holds the buffers a request's line and headers are copied to,
// for the checks http.ReadRequest does not leave room for.
var headPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{s: s, rwc: c, ctx: context.Background()}
	cn.lr.c, cn.lr.remain = c, math.MaxInt64
	cn.br = readers.Get().(*bufio.Reader)
	cn.br.Reset(&cn.lr)
	if ra := c.RemoteAddr(); ra != nil {
		cn.remote = ra.String()
	}
	return cn
}

// limitReader reads the connection, at most remain bytes: a request's
// line and headers are bounded by MaxHeaderBytes this way, as in net/http.
type limitReader struct {
	c      net.Conn
	remain int64
	hit    bool
	rec    *[]byte // when set, what is read is appended to it
}

func (r *limitReader) Read(p []byte) (int, error) {
	if r.remain <= 0 {
		r.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.c.Read(p)
	r.remain -= int64(n)
	if r.rec != nil {
		*r.rec = append(*r.rec, p[:n]...)
	}
	return n, err
}

// statusError is a request the server answers itself, as net/http does.
type statusError struct {
	code int
	text string
}

func (e statusError) Error() string { return e.text }

var errTooLarge = errors.New("request headers too large")

func (c *conn) serve() {
	s := c.s
	defer s.remove(c)
	defer func() {
		// A handler's panic ends its connection, not the process, as in
		// net/http (http.ErrAbortHandler silently).
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler && s.Log != nil {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				s.Log.Error("h1server: panic serving a request", "remote", c.remote, "panic", v, "stack", string(buf))
			}
			if c.state.Load() != stateGone {
				c.state.Store(stateGone)
				c.rwc.Close()
			}
		}
	}()
	if s.ConnContext != nil {
		c.ctx = s.ConnContext(c.ctx, c.rwc)
	}
	first := true
	for {
		c.state.Store(stateIdle)
		c.lr.remain, c.lr.hit = c.headerLimit(), false
		// Between requests, fewer than 4 bytes before the end are not
		// a request (net/http's rule); the first request is read as it
		// comes, to answer a short one with 400 as net/http does.
		want := 4
		if first {
			want = 1
		}
		if c.br.Buffered() < want {
			if c.br.Buffered() == 0 {
				c.putWriter()
				c.putHead()
			}
			wait := s.IdleTimeout
			if wait == 0 || first && s.ReadHeaderTimeout > 0 {
				wait = s.ReadHeaderTimeout
			}
			if wait > 0 {
				_ = c.rwc.SetReadDeadline(time.Now().Add(wait))
			}
			if _, err := c.br.Peek(want); err != nil {
				c.close(false)
				return
			}
		}
		first = false
		c.state.Store(stateActive)
		// The header's deadline bounds the reads of the rest of the head;
		// with the whole head read already there are none (the body's
		// reads get their own deadline), and the timer is left alone.
		switch {
		case c.headBuffered():
		case s.ReadHeaderTimeout > 0:
			_ = c.rwc.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
		case s.IdleTimeout > 0:
			_ = c.rwc.SetReadDeadline(time.Time{})
		}
		if c.fallbackProtocol() {
			c.handOver()
			return
		}
		if c.bw == nil {
			c.bw = writers.Get().(*bufio.Writer)
			c.bw.Reset(c.rwc)
		}
		req, err := c.readRequest()
		if err != nil {
			c.reject(err)
			return
		}
		if !c.serveRequest(req) {
			return
		}
	}
}

// headBuffered reports whether a whole request head (up to an empty line
// ended by CRLF) is in the read buffer.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}

// fallbackProtocol reports whether the next bytes start what Fallback
// serves: HTTP/2's connection preface or a CONNECT request.
func (c *conn) fallbackProtocol() bool {
	if c.s.Fallback == nil {
		return false
	}
	for _, p := range [...]string{"PRI * HTTP/2.0\r\n", "CONNECT "} {
		b, _ := c.br.Peek(min(c.br.Buffered(), len(p)))
		if !isPrefix(b, p) {
			continue
		}
		if len(b) < len(p) {
			var err error
			if b, err = c.br.Peek(len(p)); err != nil || !isPrefix(b, p) {
				continue
			}
		}
		return true
	}
	return false
}

func isPrefix(b []byte, s string) bool {
	if len(b) > len(s) {
		return false
	}
	for i := range b {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

// handOver gives the connection, with the bytes already read, to the
// fallback server.
func (c *conn) handOver() {
	c.state.Store(stateGone)
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.lr.remain = math.MaxInt64
	c.putWriter()
	c.s.handOver(&readAheadConn{Conn: c.rwc, r: c.br})
}

// readAheadConn is a connection whose first bytes are in r.
type readAheadConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readAheadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readRequest reads one request with net/http's parser and the checks
// net/http's server makes after it.
func (c *conn) readRequest() (*http.Request, error) {
	if c.lastPOST {
		// As net/http: stray line ends after a POST body, which some
		// clients send, are not a request.
		peek, _ := c.br.Peek(min(c.br.Buffered(), 4))
		n := 0
		for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
			n++
		}
		_, _ = c.br.Discard(n)
	}
	if req, host := readPlainRequest(c.br, &c.plain); req != nil {
		// The head was within the limit; the body is not bounded by it.
		c.lr.remain = math.MaxInt64
		c.lastPOST = req.Method == http.MethodPost
		if !validHost(host) {
			return nil, statusError{http.StatusBadRequest, "malformed Host header"}
		}
		return c.checkRequest(req)
	}
	// http.ReadRequest drops the Host headers, which net/http's server
	// checks first: the bytes it reads are kept to count them.
	if c.head == nil {
		c.head = headPool.Get().(*[]byte)
	}
	ahead, _ := c.br.Peek(c.br.Buffered())
	*c.head = append((*c.head)[:0], ahead...)
	c.lr.rec = c.head
	req, err := http.ReadRequest(c.br)
	c.lr.rec = nil
	c.lr.remain = math.MaxInt64
	if err != nil {
		if c.lr.hit {
			return nil, errTooLarge
		}
		return nil, err
	}
	if req.ProtoMajor != 1 {
		return nil, statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	c.lastPOST = req.Method == http.MethodPost
	head := *c.head
	nHosts, host := scanHosts(head[:len(head)-c.br.Buffered()])
	switch {
	case req.ProtoAtLeast(1, 1) && nHosts == 0 && req.Method != http.MethodConnect:
		return nil, statusError{http.StatusBadRequest, "missing required Host header"}
	case nHosts > 1:
		return nil, statusError{http.StatusBadRequest, "too many Host headers"}
	case nHosts == 1 && !validHost(host):
		return nil, statusError{http.StatusBadRequest, "malformed Host header"}
	}
	return c.checkRequest(req)
}

// checkRequest makes net/http's server's checks of header names and
// values, and gives req the connection's address and context.
func (c *conn) checkRequest(req *http.Request) (*http.Request, error) {
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	req.RemoteAddr = c.remote
	if c.ctx != context.Background() {
		req = req.WithContext(c.ctx)
	}
	return req, nil
}

// scanHosts counts the Host fields of a request's head and returns the
// first one's value. Lines are split as textproto splits them (CRLF or
// bare LF); a field name with space before the colon never gets here. A
// first Host folded onto more lines is joined as textproto joins it (each
// line trimmed, a space between), which is what net/http's server checks.
func scanHosts(head []byte) (n int, first []byte) {
	line := 0 // the request line is not a field
	lastHost := false
	var joined []byte
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		l := head
		if i >= 0 {
			l, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(l) == 0 {
			break // the end of the head
		}
		if line++; line == 1 {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			// A continuation of the field before.
			if lastHost && n == 1 {
				if joined == nil {
					joined = append([]byte{}, first...)
				}
				joined = append(append(joined, ' '), bytes.Trim(l, " \t")...)
			}
			continue
		}
		lastHost = false
		if len(l) >= 5 && l[4] == ':' && bytes.EqualFold(l[:4], []byte("host")) {
			if n == 0 {
				first = bytes.Trim(l[5:], " \t")
			}
			n++
			lastHost = true
		}
	}
	if joined != nil {
		first = bytes.TrimLeft(joined, " \t")
	}
	return n, first
}

// validHost is httpguts.ValidHostHeader on bytes, without a copy.
func validHost(h []byte) bool {
	for _, c := range h {
		if !validHostByte[c] {
			return false
		}
	}
	return true
}

// validHostByte is httpguts' table of the bytes a Host header may hold.
var validHostByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = httpguts.ValidHostHeader(string([]byte{byte(c)}))
	}
	return t
}()

// reject answers a request that could not be read, as net/http's server
// does, and closes the connection.
func (c *conn) reject(err error) {
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	var se statusError
	switch {
	case err == errTooLarge:
		const publicErr = "431 Request Header Fields Too Large"
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
		c.close(true)
		return
	case isUnsupportedTE(err):
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 501 Not Implemented"+errorHeaders+"Unsupported transfer encoding")
	case isCommonNetReadError(err):
		// A client gone, or a timeout: nobody to answer.
	case errors.As(err, &se):
		status := fmt.Sprintf("%d %s: %s", se.code, http.StatusText(se.code), se.text)
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+status+errorHeaders+status)
	default:
		const publicErr = "400 Bad Request"
		_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+publicErr+errorHeaders+publicErr)
	}
	c.s.logf("h1server: bad request", "remote", c.remote, "err", err)
	c.close(false)
}

// isUnsupportedTE recognises net/http's unexported error for a
// Transfer-Encoding it does not implement.
func isUnsupportedTE(err error) bool {
	t := fmt.Sprintf("%T", err)
	return t == "*http.unsupportedTEError"
}

// isCommonNetReadError is net/http's: the reasons not to answer.
func isCommonNetReadError(err error) bool {
	if err == io.EOF {
		return true
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	if oe, ok := err.(*net.OpError); ok && oe.Op == "read" {
		return true
	}
	return false
}

// serveRequest runs the handler for req and finishes its response; it
// reports whether the connection stays open for another request.
func (c *conn) serveRequest(req *http.Request) bool {
	w := &c.w
	w.reset(c, req)
	b := &c.body
	b.reset(c, req.Body)
	if req.Body != http.NoBody {
		req.Body = b
		// The header's deadline does not bound the body: the minimum
		// rate does, if set.
		b.start = time.Now()
		b.setDeadline()
	}
	switch {
	case expectsContinue(req):
		if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 {
			b.expect, b.canContinue = true, true
		}
	case req.Header.Get("Expect") != "":
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		c.close(false)
		return false
	}
	c.s.Handler.ServeHTTP(w, req)
	if c.state.Load() == stateGone {
		return false // hijacked
	}
	w.finish()
	if w.err != nil || w.closeAfter {
		c.close(w.bodyUnread)
		return false
	}
	return true
}

func expectsContinue(r *http.Request) bool {
	for _, v := range r.Header["Expect"] {
		if httpguts.HeaderValuesContainsToken([]string{v}, "100-continue") {
			return true
		}
	}
	return false
}

func (c *conn) putHead() {
	if c.head != nil {
		if cap(*c.head) <= 16<<10 {
			headPool.Put(c.head)
		}
		c.head = nil
	}
}

func (c *conn) putWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// close ends the connection. With linger, the client may still be
// sending: the write side is closed first and the rest read for a while,
// so that the client gets the answer rather than a reset (as net/http).
func (c *conn) close(linger bool) {
	c.state.Store(stateGone)
	if linger {
		if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
			_ = c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, _ = io.CopyN(io.Discard, c.rwc, 256<<10)
		}
	}
	c.rwc.Close()
	c.putWriter()
	c.putHead()
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
}

// reqBody wraps a request's body: it sends 100 Continue on the first
// read when the client waits for it, keeps the minimum rate, and records
// whether the body was read to its end.
type reqBody struct {
	c           *conn
	src         io.ReadCloser
	expect      bool // the client sent Expect: 100-continue
	canContinue bool // and 100 Continue is still to be sent
	sawEOF      bool
	closed      bool
	n           int64
	start       time.Time
}

func (b *reqBody) reset(c *conn, src io.ReadCloser) {
	*b = reqBody{c: c, src: src}
}

// setDeadline sets the read deadline the minimum body rate allows: after
// the grace time, the average rate so far, with a second of slack.
func (b *reqBody) setDeadline() {
	s := b.c.s
	if s.MinBodyRate <= 0 {
		_ = b.c.rwc.SetReadDeadline(time.Time{})
		return
	}
	allowed := s.BodyGrace + time.Second + time.Duration(b.n*int64(time.Second)/s.MinBodyRate)
	_ = b.c.rwc.SetReadDeadline(b.start.Add(allowed))
}

func (b *reqBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.canContinue {
		b.canContinue = false
		w := &b.c.w
		if !w.wroteHeader && w.err == nil {
			_, _ = b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			w.err = b.c.bw.Flush()
		}
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.c.s.MinBodyRate > 0 {
		b.setDeadline()
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.sawEOF = true
	}
	return n, err
}

// Close marks the body closed, reading what is left when it is little.
func (b *reqBody) Close() error {
	if !b.closed && !b.sawEOF && !b.canContinue {
		// As net/http: a little left unread is read, so that the
		// connection can carry the next request.
		if _, err := io.CopyN(io.Discard, b, maxPostHandlerRead+1); err == io.EOF {
			b.sawEOF = true
		}
	}
	b.closed = true
	return nil
}
