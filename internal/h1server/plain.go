package h1server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"

	"github.com/nubo-dev/nubo/internal/h1lex"
)

// A proxy's common request is an HTTP/1.1 request with a path (or, on the
// mesh's HTTP_PROXY listener, an absolute http:// URL), one Host, a
// handful of plain fields and at most a Content-Length, whole in the read
// buffer. readPlainRequest parses that form with fewer allocations than
// http.ReadRequest (one string for the whole head, no textproto reader,
// the body read off the connection's buffer directly) and leaves every
// other request, untouched, to http.ReadRequest, so that nothing unusual
// is parsed by two parsers that might disagree. For the requests it takes,
// the result is what http.ReadRequest returns (TestPlainRequestAsNetHTTP,
// FuzzPlainRequest); the server's own checks after parsing (Host, field
// names and values) run on both.

// maxPlainFields is the most header fields a plain request may have.
const maxPlainFields = 32

// readPlainRequest parses the request head buffered in br when it is plain:
// a token method other than CONNECT and PRI, a target starting with "/"
// or "http://" that url.ParseRequestURI takes, "HTTP/1.1"; every line ended
// by CRLF; field names tokens, values without control bytes, no line
// folded; exactly one Host; at most one Content-Length, of digits; no
// Transfer-Encoding, Connection, Expect, Pragma, Trailer or Upgrade field
// (whose handling http.ReadRequest and the server own). It consumes the
// head and returns the request, with body as its Body when it has one, and
// the Host field's value (for the server's check), or returns nil and
// consumes nothing.
func readPlainRequest(br *bufio.Reader, body *plainBody) (req *http.Request, hostField []byte) {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil, nil
	}
	head := buf[:end+2] // every line with its CRLF
	eol := bytes.Index(head, crlf)
	line := head[:eol]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !h1lex.Tokens(line[:sp1]) {
		return nil, nil
	}
	method := line[:sp1]
	if string(method) == http.MethodConnect || string(method) == "PRI" {
		return nil, nil
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ') + sp1 + 1
	if sp2 <= sp1 || string(line[sp2:]) != " HTTP/1.1" {
		return nil, nil
	}
	target := line[sp1+1 : sp2]
	if len(target) == 0 || !h1lex.PlainValue(target) ||
		target[0] != '/' && !bytes.HasPrefix(target, []byte("http://")) {
		return nil, nil
	}
	fields := head[eol+2:]
	n, hosts, length := 0, 0, int64(-1)
	for rest := fields; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		l := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !h1lex.Tokens(l[:colon]) || !h1lex.PlainValue(l[colon+1:]) {
			return nil, nil
		}
		if n++; n > maxPlainFields {
			return nil, nil
		}
		name := l[:colon]
		switch {
		case !specialLen[len(name)&63]:
			// Not one of the names below: the usual case, at the cost of
			// a length check.
		case bytes.EqualFold(name, []byte("Host")):
			hosts++
		case bytes.EqualFold(name, []byte("Content-Length")):
			v := h1lex.TrimOWS(l[colon+1:])
			if length >= 0 || len(v) == 0 || len(v) > 18 {
				return nil, nil
			}
			length = 0
			for _, c := range v {
				if c < '0' || c > '9' {
					return nil, nil
				}
				length = length*10 + int64(c-'0')
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Connection")),
			bytes.EqualFold(name, []byte("Expect")), bytes.EqualFold(name, []byte("Pragma")),
			bytes.EqualFold(name, []byte("Trailer")), bytes.EqualFold(name, []byte("Upgrade")):
			return nil, nil
		}
	}
	if hosts != 1 {
		return nil, nil
	}
	// One string holds the request line and every name and value.
	text := string(head)
	uri := text[sp1+1 : sp2]
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, nil // http.ReadRequest says why
	}
	req = &http.Request{
		Method: text[:sp1], URL: u, RequestURI: uri,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: u.Host, Body: http.NoBody,
	}
	h := make(http.Header, n)
	strs := make([]string, n)
	off := eol + 2
	for rest := fields; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		l := rest[:i]
		colon := bytes.IndexByte(l, ':')
		v := l[colon+1:]
		lead := len(v) - len(h1lex.TrimLeftOWS(v))
		start := off + colon + 1 + lead
		value := text[start : start+len(h1lex.TrimOWS(v))]
		off += i + 2
		rest = rest[i+2:]
		if colon == 4 && bytes.EqualFold(l[:colon], []byte("Host")) {
			hostField = h1lex.TrimOWS(v)
			if req.Host == "" {
				req.Host = value
			}
			continue // http.ReadRequest drops it
		}
		key := text[off-i-2 : off-i-2+colon]
		if !h1lex.IsCanonical(l[:colon]) {
			key = textproto.CanonicalMIMEHeaderKey(key)
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
		} else {
			strs[0] = value
			h[key], strs = strs[:1:1], strs[1:]
		}
	}
	req.Header = h
	if length > 0 {
		req.ContentLength = length
		*body = plainBody{br: br, remain: length}
		req.Body = body
	}
	_, _ = br.Discard(end + 4)
	return req, hostField
}

// plainBody is a plain request's body: the next remain bytes of the
// connection. As net/http's, it gives io.EOF with its last bytes, and
// io.ErrUnexpectedEOF when the connection ends first, then io.EOF; after
// another error a read tries again. A connection reuses one; the server's
// reqBody in front of it answers Close.
type plainBody struct {
	br     *bufio.Reader
	remain int64
	eof    bool
}

func (b *plainBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	switch {
	case b.remain == 0:
		b.eof, err = true, io.EOF
	case err == io.EOF:
		b.eof, err = true, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *plainBody) Close() error { return nil }

// specialLen marks the lengths of the field names readPlainRequest looks
// at: Host, Content-Length, Transfer-Encoding, Connection, Expect, Pragma,
// Trailer, Upgrade.
var specialLen = [64]bool{4: true, 14: true, 17: true, 10: true, 6: true, 7: true}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)
