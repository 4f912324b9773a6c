package h1server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much of a body without a Content-Length is
// held back, so that a short one gets a Content-Length when the handler
// returns (net/http's rule and size).
const bufferBeforeChunking = 2048

// maxPostHandlerRead is how much of an unread request body is drained to
// keep the connection (net/http's figure).
const maxPostHandlerRead = 256 << 10

// response is the http.ResponseWriter of one request; a connection reuses
// it. Headers go out with the first body bytes past the held-back part,
// on Flush, or when the handler returns, framed as net/http frames them.
type response struct {
	c             *conn
	req           *http.Request
	header        http.Header
	snap          http.Header // the headers as WriteHeader saw them, when changed since
	status        int
	wroteHeader   bool // WriteHeader called
	headerSent    bool // status line and headers in the write buffer
	handlerDone   bool
	contentLength int64 // -1 when unknown
	written       int64
	chunking      bool
	closeAfter    bool
	bodyUnread    bool // the request body was left unread: linger on close
	fullDuplex    bool
	wants10Keep   bool
	trailers      []string
	held          []byte
	err           error
}

// maxReusedHeader is how many fields a response's header map may hold and
// still be cleared for the connection's next response rather than dropped.
const maxReusedHeader = 32

func (w *response) reset(c *conn, req *http.Request) {
	h := w.header
	if len(h) > maxReusedHeader {
		h = nil
	}
	// The map is cleared, not made again: a proxy fills it with the same
	// few fields request after request. As in net/http, a handler may not
	// use its ResponseWriter, nor its Header, after it returned.
	clear(h)
	*w = response{c: c, req: req, header: h, contentLength: -1, held: c.heldBuf[:0]}
	w.closeAfter = req.Close
	w.wants10Keep = !req.ProtoAtLeast(1, 1) && hasToken(req.Header.Get("Connection"), "keep-alive")
}

// Header returns the response's headers.
func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	if w.wroteHeader && !w.headerSent && w.snap == nil {
		// Headers set after WriteHeader are not sent (but trailers
		// are read from them), as in net/http.
		w.snap = w.header.Clone()
	}
	return w.header
}

// WriteHeader sends an informational status at once and records a final
// one, as net/http does.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.c.state.Load() == stateGone {
		return
	}
	if code < 100 || code > 999 {
		panic("h1server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeStatusLine(code)
		_ = w.Header().WriteSubset(w.c.bw, noBodyHeaders)
		_, _ = w.c.bw.WriteString("\r\n")
		if err := w.c.bw.Flush(); err != nil && w.err == nil {
			w.err = err
		}
		return
	}
	w.c.body.canContinue = false
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("h1server: invalid Content-Length", "value", cl)
			w.header.Del("Content-Length")
		}
	}
}

var noBodyHeaders = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

// Write writes body bytes, holding back the first ones while the length
// is unknown.
func (w *response) Write(p []byte) (int, error) {
	if w.c.state.Load() == stateGone {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.headerSent {
		if w.contentLength == -1 && len(w.held)+len(p) <= bufferBeforeChunking {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		w.sendHeader(p)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// writeBody writes p as the framing chosen says; a HEAD response has none.
func (w *response) writeBody(p []byte) {
	if len(p) == 0 || w.req.Method == http.MethodHead || w.err != nil {
		return
	}
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(w.c.scratch[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
		return
	}
	_, w.err = bw.Write(p)
}

// sendHeader decides the framing and writes the status line and headers,
// then the held-back bytes: net/http's chunkWriter.writeHeader, for
// HTTP/1.x only.
func (w *response) sendHeader(first []byte) {
	req := w.req
	if w.header == nil {
		w.header = make(http.Header)
	}
	h := w.header
	if w.snap != nil {
		h = w.snap
	}
	w.headerSent = true
	if len(w.held) > 0 {
		first = w.held
	}
	isHEAD := req.Method == http.MethodHead
	var exclude map[string]bool
	del := func(k string) {
		if _, ok := h[k]; !ok {
			return
		}
		if exclude == nil {
			exclude = map[string]bool{}
		}
		exclude[k] = true
	}
	hasTrailers := false
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			del(k)
			hasTrailers = true
		}
	}
	for _, v := range h["Trailer"] {
		hasTrailers = true
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				switch http.CanonicalHeaderKey(f) {
				case "Transfer-Encoding", "Trailer", "Content-Length":
				default:
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(f))
				}
			}
		}
	}
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	var setCL, setType, setConn, setTE string
	if w.handlerDone && !hasTrailers && !hasTE && bodyAllowed(w.status) && h.Get("Content-Length") == "" && (!isHEAD || len(w.held) > 0) {
		w.contentLength = int64(len(w.held))
		setCL = strconv.Itoa(len(w.held))
	}
	if w.wants10Keep {
		if h.Get("Content-Length") != "" && h.Get("Connection") == "keep-alive" {
			w.closeAfter = false
		}
	}
	hasCL := w.contentLength != -1
	if w.wants10Keep && (isHEAD || hasCL || !bodyAllowed(w.status)) {
		if _, set := h["Connection"]; !set {
			setConn = "keep-alive"
		}
	} else if !req.ProtoAtLeast(1, 1) || req.Close {
		w.closeAfter = true
	}
	if h.Get("Connection") == "close" {
		w.closeAfter = true
	}
	b := &w.c.body
	if b.expect && !b.sawEOF {
		// The client waited for 100 Continue and its body was not read
		// to the end: what it sends next cannot be trusted.
		w.closeAfter = true
	}
	if req.ContentLength != 0 && !w.closeAfter && !w.fullDuplex {
		switch {
		case b.closed && !b.sawEOF:
			w.closeAfter = true
			w.bodyUnread = true
		case !b.sawEOF:
			_, err := io.CopyN(io.Discard, b, maxPostHandlerRead+1)
			switch err {
			case nil:
				w.closeAfter = true
				w.bodyUnread = true
				del("Connection")
				setConn = "close"
			case io.EOF:
			default:
				w.closeAfter = true
			}
		}
	}
	if bodyAllowed(w.status) {
		_, haveType := h["Content-Type"]
		if h.Get("Content-Encoding") == "" && !haveType && !hasTE && len(first) > 0 {
			setType = http.DetectContentType(first)
		}
	} else {
		for _, k := range suppressed(w.status) {
			del(k)
		}
	}
	if hasCL && hasTE && te != "identity" {
		del("Content-Length")
		hasCL = false
	}
	switch {
	case isHEAD || !bodyAllowed(w.status) || w.status == http.StatusNoContent:
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			w.closeAfter = true
			del("Transfer-Encoding")
		} else {
			w.chunking = true
			setTE = "chunked"
			if hasTE && te == "chunked" {
				del("Transfer-Encoding")
			}
		}
	default:
		w.closeAfter = true
		del("Transfer-Encoding")
	}
	if w.chunking {
		del("Content-Length")
	}
	if w.closeAfter && !httpguts.HeaderValuesContainsToken(h["Connection"], "close") && !isSwitch(w.status, h) {
		del("Connection")
		if req.ProtoAtLeast(1, 1) {
			setConn = "close"
		}
	}
	bw := w.c.bw
	w.writeStatusLine(w.status)
	_ = h.WriteSubset(bw, exclude)
	// net/http's order, so that both servers write the same bytes.
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(w.c.date.now())
		bw.WriteString("\r\n")
	}
	writeField(bw, "Content-Length", setCL)
	writeField(bw, "Content-Type", setType)
	writeField(bw, "Connection", setConn)
	writeField(bw, "Transfer-Encoding", setTE)
	_, w.err = bw.WriteString("\r\n")
	held := w.held
	w.held = nil
	w.writeBody(held)
}

// dateCache is a connection's Date header value, formatted once a second
// rather than for every response.
type dateCache struct {
	sec int64
	buf []byte
	arr [len(http.TimeFormat)]byte
}

// now is the Date value of the current second.
func (d *dateCache) now() []byte {
	t := time.Now()
	if sec := t.Unix(); sec != d.sec || d.buf == nil {
		d.sec = sec
		d.buf = t.UTC().AppendFormat(d.arr[:0], http.TimeFormat)
	}
	return d.buf
}

func writeField(bw *bufio.Writer, k, v string) {
	if v != "" {
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

func (w *response) writeStatusLine(code int) {
	bw := w.c.bw
	if w.req.ProtoAtLeast(1, 1) {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	bw.Write(strconv.AppendInt(w.c.scratch[:0], int64(code), 10))
	if text := http.StatusText(code); text != "" {
		bw.WriteByte(' ')
		bw.WriteString(text)
	} else {
		bw.WriteString(" status code ")
		bw.Write(strconv.AppendInt(w.c.scratch[:0], int64(code), 10))
	}
	bw.WriteString("\r\n")
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(nil)
	}
	bw := w.c.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowed(w.status) && w.written != w.contentLength {
		// A short body: the client would wait for the rest.
		w.closeAfter = true
	}
	if err := bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	if b := &w.c.body; b.src != nil && b.src != http.NoBody && !b.sawEOF && !w.closeAfter {
		// Read after the answer went out (a handler that reads the
		// body last): what is left cannot be trusted.
		if w.req.ContentLength != 0 {
			w.closeAfter = true
		}
	}
}

// writeTrailers writes the declared trailers and those set with
// http.TrailerPrefix.
func (w *response) writeTrailers() {
	h := w.header
	var t http.Header
	for _, k := range w.trailers {
		if vv, ok := h[k]; ok {
			if t == nil {
				t = http.Header{}
			}
			t[k] = vv
		}
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if t == nil {
				t = http.Header{}
			}
			t[http.CanonicalHeaderKey(strings.TrimPrefix(k, http.TrailerPrefix))] = vv
		}
	}
	if t != nil {
		_ = t.Write(w.c.bw)
	}
}

// Flush sends the headers and what is buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the write's error (for
// http.ResponseController).
func (w *response) FlushError() error {
	if w.c.state.Load() == stateGone {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(nil)
	}
	if w.err != nil {
		return w.err
	}
	w.err = w.c.bw.Flush()
	return w.err
}

// Hijack hands the connection to the handler, with the bytes the server
// read ahead and a writer for the answer.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.state.Load() == stateGone {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.headerSent {
		w.sendHeader(nil)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.state.Store(stateGone)
	_ = c.rwc.SetDeadline(time.Time{})
	rw := bufio.NewReadWriter(c.br, bufio.NewWriter(c.rwc))
	// The buffers are the handler's now.
	c.putWriter()
	c.br = nil
	return c.rwc, rw, nil
}

// SetReadDeadline sets the connection's read deadline (for
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex lets the handler read the request body after it
// started the answer (for http.ResponseController).
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func suppressed(status int) []string {
	switch {
	case status == http.StatusNotModified:
		return []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	case !bodyAllowed(status):
		return []string{"Content-Length", "Transfer-Encoding"}
	}
	return nil
}

func isSwitch(status int, h http.Header) bool {
	return status == http.StatusSwitchingProtocols && httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
} = (*response)(nil)

// hasToken is net/http's test of a token in a header value (for
// "Connection: keep-alive" from an HTTP/1.0 client): a case-insensitive
// match bounded by spaces, tabs, commas or the ends, so that
// "0 keep-Alive" has it as net/http's server sees it.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
