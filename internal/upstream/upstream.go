// Package upstream is nubo's HTTP/1.1 client for proxies (the mesh and the
// API gateway): it writes a plain keep-alive request and reads its
// response on the caller's own goroutine, over a pool of idle connections
// per address, and hands every other request to an http.RoundTripper.
//
// http.Transport runs a read goroutine and a write goroutine per
// connection and hands every request and response between them and the
// caller over channels; under load those hand-offs and the scheduling
// they cause cost more than a proxy's own work. No library does this
// instead: net/http keeps the goroutines so that a request body can
// stream while the response arrives and an idle connection's closing is
// noticed at once; fasthttp and similar clients have their own request and
// response types, which a proxy would have to convert from and to
// net/http's, losing what it saves. A proxy's common request has no body,
// so the two ends of a round trip can happen in turn on one goroutine,
// with net/http's own ReadResponse parsing the answer (a plain answer,
// HTTP/1.1 with a Content-Length, is parsed by readPlainHead to the same
// result with fewer allocations; head.go).
package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Client is an http.RoundTripper that sends the requests Direct accepts
// itself, on the caller's goroutine, and all others to the RoundTripper
// it was given (an http.Transport). Create it with New; Close ends it.
// It is safe for concurrent use.
type Client struct {
	dial    DialFunc
	next    http.RoundTripper
	maxIdle int           // idle connections kept per address
	idleFor time.Duration // an idle connection older than this is closed
	// staleAfter is how long a connection may have been idle before a
	// request with a body checks that the server has not closed it:
	// such a request cannot always be sent again when it finds out too
	// late.
	staleAfter time.Duration

	mu     sync.Mutex // guards idle and closed
	idle   map[string][]*upConn
	closed bool
}

// upConn is one connection to a server. Its buffers are taken from pools
// while it carries a request and given back while it is idle.
type upConn struct {
	u     *Client
	addr  string
	conn  net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	idled time.Time
	// interrupt makes the connection's pending I/O return, when the
	// context of its round trip ends; made once per connection.
	interrupt func()
	// deadline is set when the round trip's deadline is on the
	// connection (a deadlineContext's), to clear before its reuse.
	deadline bool
	// body limits the reading of a request body to its length; here, not
	// made per request.
	body io.LimitedReader
}

// deadlineContext is a context that, until its owner cancels it after the
// call, ends only at its deadline or with its parent (callctx.Context):
// the client puts the deadline on the connection and watches the parent
// alone, with no timer or context of its own (context.AfterFunc on a
// context.WithTimeout was about nine allocations and two timer operations
// a request of the gateway's).
type deadlineContext interface {
	context.Context
	Parent() context.Context
}

var (
	upReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	upWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// New returns a Client that opens connections with dial and sends the
// requests Direct refuses to next. It keeps up to 512 idle connections per
// address, each for up to 90 seconds, as the proxies' transports do.
func New(dial DialFunc, next http.RoundTripper) *Client {
	return &Client{dial: dial, next: next, maxIdle: 512, idleFor: 90 * time.Second, staleAfter: time.Second, idle: map[string][]*upConn{}}
}

// MaxDirectBody is the largest request body a Client sends itself. The
// body is written whole before the response is read, on one goroutine: a
// server that answers without reading it must not be able to block that
// write, and this much fits in a loopback socket's buffers. Larger and
// chunked bodies go to the RoundTripper given to New, which writes and
// reads at once.
const MaxDirectBody = 64 << 10

// Direct reports whether a Client sends r itself, on the caller's
// goroutine: a plain-HTTP request without a body or with one of a known
// length up to MaxDirectBody, not an upgrade, no 100-continue, no
// trailers, not CONNECT.
func Direct(r *http.Request) bool {
	if r.URL.Scheme != "http" || r.Close || r.Trailer != nil || r.Method == http.MethodConnect {
		return false
	}
	if hasBody(r) {
		if r.ContentLength <= 0 || r.ContentLength > MaxDirectBody {
			return false
		}
	} else if r.ContentLength != 0 {
		return false
	}
	if te := r.TransferEncoding; len(te) > 0 && (len(te) != 1 || te[0] != "chunked" || r.ContentLength <= 0) {
		return false
	}
	h := r.Header
	return len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0 && len(h["Connection"]) == 0
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody
}

// idempotent reports whether net/http would send r again on a fresh
// connection after a reused one failed before any response.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(r.Header["Idempotency-Key"]) > 0 || len(r.Header["X-Idempotency-Key"]) > 0
}

// RoundTrip sends r and returns the response, whose body hands the
// connection back to the pool once read to its end. Requests Direct
// refuses go to the RoundTripper given to New.
func (u *Client) RoundTrip(r *http.Request) (*http.Response, error) {
	if !Direct(r) {
		return u.next.RoundTrip(r)
	}
	addr := r.URL.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	ctx := r.Context()
	if hasBody(r) {
		// The body is closed whatever happens, as http.Transport does.
		defer r.Body.Close()
	}
	for {
		pc, reused := u.get(addr, hasBody(r))
		if pc == nil {
			c, err := u.dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			pc = &upConn{u: u, addr: addr, conn: c}
			pc.take()
		}
		resp, err := pc.roundTrip(ctx, r)
		if err == nil {
			return resp, nil
		}
		// As net/http does, a request that failed on a reused connection
		// before any of the response came is sent again on another one:
		// the server most likely closed the idle connection. The
		// method must be idempotent and the body, if any, read again.
		if !reused || ctx.Err() != nil || !errors.Is(err, errNoResponse) || !idempotent(r) {
			return nil, err
		}
		if hasBody(r) {
			if r.GetBody == nil {
				return nil, err
			}
			body, gerr := r.GetBody()
			if gerr != nil {
				return nil, err
			}
			r = r.Clone(ctx)
			r.Body = body
		}
	}
}

// errNoResponse marks a failure before any byte of the response arrived.
var errNoResponse = errors.New("upstream: connection closed before the response")

// roundTrip writes r and reads its response. On an error the connection
// is closed.
func (pc *upConn) roundTrip(ctx context.Context, r *http.Request) (*http.Response, error) {
	// The read and the write happen here, not in goroutines watching ctx:
	// a deadline in the past is what interrupts them when ctx ends.
	var stop func() bool
	watch := ctx
	if dc, ok := ctx.(deadlineContext); ok {
		dl, _ := dc.Deadline()
		pc.conn.SetDeadline(dl)
		pc.deadline = true
		watch = dc.Parent()
	}
	if watch.Done() != nil {
		if pc.interrupt == nil {
			pc.interrupt = func() { pc.conn.SetDeadline(aLongTimeAgo) }
		}
		stop = context.AfterFunc(watch, pc.interrupt)
	}
	fail := func(err error) (*http.Response, error) {
		if stop != nil {
			stop()
		}
		pc.close()
		return nil, err
	}
	writeRequest(pc.bw, r)
	if hasBody(r) {
		pc.body = io.LimitedReader{R: r.Body, N: r.ContentLength}
		n, err := io.Copy(pc.bw, &pc.body)
		pc.body.R = nil
		if err == nil && n < r.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			// The request is cut short: the connection cannot be used.
			return fail(fmt.Errorf("upstream: request body: %w", err))
		}
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", errNoResponse, err))
	}
	for {
		if _, err := pc.br.Peek(1); err != nil {
			return fail(fmt.Errorf("%w: %w", errNoResponse, err))
		}
		if pr := readPlainHead(pc.br, r.Method); pr != nil {
			resp := &pr.resp
			resp.Request = r
			if resp.ContentLength == 0 {
				resp.Body = http.NoBody
				pc.release(true, stop)
				return resp, nil
			}
			pr.body = upBody{pc: pc, remain: resp.ContentLength, keep: true, stop: stop}
			resp.Body = &pr.body
			return resp, nil
		}
		resp, err := http.ReadResponse(pc.br, r)
		if err != nil {
			return fail(err)
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			resp.Body.Close()
			return fail(errors.New("upstream: switched protocols without an upgrade"))
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			// 100 Continue and 103 Early Hints are dropped, as
			// http.Transport drops them without a trace hook.
			continue
		}
		keep := !resp.Close
		if resp.Body == http.NoBody {
			pc.release(keep, stop)
			return resp, nil
		}
		resp.Body = &upBody{pc: pc, body: resp.Body, keep: keep, stop: stop}
		return resp, nil
	}
}

// aLongTimeAgo is a deadline in the past: it makes pending I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// upBody is a response body that gives its connection back once read to
// the end; closed before that, the connection is closed. It reads body,
// the body http.ReadResponse made, or without it the next remain bytes of
// the connection (a plain head's Content-Length).
type upBody struct {
	pc     *upConn
	body   io.ReadCloser
	remain int64
	keep   bool
	stop   func() bool
	done   bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.body == nil {
		return b.readLength(p)
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.done = true
		b.pc.release(b.keep, b.stop)
	} else if err != nil {
		b.done = true
		b.pc.release(false, b.stop)
	}
	return n, err
}

// readLength reads the rest of a body of known length from the
// connection, and gives the connection back with its last byte (with
// io.EOF, as net/http's body does).
func (b *upBody) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.pc.br.Read(p)
	b.remain -= int64(n)
	switch {
	case b.remain == 0:
		b.done = true
		b.pc.release(b.keep, b.stop)
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.done = true
		b.pc.release(false, b.stop)
	}
	return n, err
}

func (b *upBody) Close() error {
	if !b.done {
		b.done = true
		b.pc.release(false, b.stop)
	}
	return nil
}

// take gives pc buffers for a round trip.
func (pc *upConn) take() {
	pc.br = upReaders.Get().(*bufio.Reader)
	pc.br.Reset(pc.conn)
	pc.bw = upWriters.Get().(*bufio.Writer)
	pc.bw.Reset(pc.conn)
}

// putBuffers returns pc's buffers to their pools.
func (pc *upConn) putBuffers() {
	pc.br.Reset(nil)
	upReaders.Put(pc.br)
	pc.bw.Reset(nil)
	upWriters.Put(pc.bw)
	pc.br, pc.bw = nil, nil
}

func (pc *upConn) close() {
	pc.conn.Close()
	pc.putBuffers()
}

// release ends a round trip: the connection goes back to the pool when
// keep says the response allows it, nothing unread is left, and ctx's
// watch had not fired.
func (pc *upConn) release(keep bool, stop func() bool) {
	if stop != nil && !stop() {
		keep = false
	}
	if !keep || pc.br.Buffered() > 0 {
		pc.close()
		return
	}
	if pc.deadline {
		pc.deadline = false
		if pc.conn.SetDeadline(time.Time{}) != nil {
			pc.close()
			return
		}
	}
	pc.putBuffers()
	pc.u.put(pc)
}

// get takes the most recently idled connection to addr, closing those
// idle for too long; reused is false when there is none. With check set,
// a connection idle for more than u.staleAfter is first checked for a close
// by the server.
func (u *Client) get(addr string, check bool) (pc *upConn, reused bool) {
	u.mu.Lock()
	list := u.idle[addr]
	if n := len(list); n > 0 {
		pc = list[n-1]
		list[n-1] = nil
		u.idle[addr] = list[:n-1]
	}
	u.mu.Unlock()
	if pc == nil {
		return nil, false
	}
	idle := time.Since(pc.idled)
	if idle > u.idleFor {
		// Older ones are older still: close them all.
		u.closeAddr(addr)
		pc.conn.Close()
		return nil, false
	}
	if check && idle >= u.staleAfter && closedByPeer(pc.conn) {
		pc.conn.Close()
		return u.get(addr, check)
	}
	pc.take()
	return pc, true
}

func (u *Client) put(pc *upConn) {
	pc.idled = time.Now()
	u.mu.Lock()
	if u.closed || len(u.idle[pc.addr]) >= u.maxIdle {
		u.mu.Unlock()
		pc.conn.Close()
		return
	}
	u.idle[pc.addr] = append(u.idle[pc.addr], pc)
	u.mu.Unlock()
}

func (u *Client) closeAddr(addr string) {
	u.mu.Lock()
	list := u.idle[addr]
	delete(u.idle, addr)
	u.mu.Unlock()
	for _, pc := range list {
		pc.conn.Close()
	}
}

// CloseIdleConnections closes every idle connection; those in use go back
// to the pool when their response is read.
func (u *Client) CloseIdleConnections() { u.closeIdle(false) }

// Close closes every idle connection, and those in use once their
// response is read instead of keeping them. It does not close the
// RoundTripper given to New. It is idempotent.
func (u *Client) Close() { u.closeIdle(true) }

// closeIdle closes every idle connection; with final set, connections
// released later are closed instead of kept.
func (u *Client) closeIdle(final bool) {
	u.mu.Lock()
	all := u.idle
	u.idle = map[string][]*upConn{}
	u.closed = u.closed || final
	u.mu.Unlock()
	for _, list := range all {
		for _, pc := range list {
			pc.conn.Close()
		}
	}
}

// idleCount is the number of idle connections to addr, for tests.
func (u *Client) idleCount(addr string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.idle[addr])
}

// writeRequest writes r's request line and headers as http.Transport
// does: Host from r.Host (or the URL), Go's User-Agent unless r has one,
// Content-Length for a body, header values on one line each.
func writeRequest(w *bufio.Writer, r *http.Request) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(r.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	writeValue(w, host)
	w.WriteString("\r\n")
	if _, ok := r.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if hasBody(r) {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(r.ContentLength, 10))
		w.WriteString("\r\n")
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !validFieldName(k) {
			continue
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			writeValue(w, strings.TrimSpace(v))
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
}

// writeValue writes a header value with line breaks as spaces, as
// net/http does, so that no value can start a header of its own.
func writeValue(w *bufio.Writer, v string) {
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		w.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.WriteByte(c)
	}
}

// validFieldName reports whether k is an RFC 9110 token.
func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// closedByPeer reports whether an idle connection has something to read
// (the server's close, or bytes it should not have sent), without
// blocking: one recv(2) with MSG_PEEK|MSG_DONTWAIT.
func closedByPeer(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read (EAGAIN) is an open, idle connection.
		closed = n >= 0 && rerr == nil || rerr != nil && rerr != syscall.EAGAIN
		return true
	})
	return closed || err != nil
}
