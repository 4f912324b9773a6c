package upstream

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"

	"github.com/nubo-dev/nubo/internal/h1lex"
)

// The common answer of a service to a proxy is an HTTP/1.1 response with a
// Content-Length and a handful of plain header fields, whole in the read
// buffer. http.ReadResponse parses it with a dozen allocations (a string
// per value and per line, the body's reader and its limit); readPlainHead
// parses that common form with four and leaves every other one, untouched,
// to http.ReadResponse, so that nothing unusual is parsed by two parsers
// that might disagree. Its result is what http.ReadResponse returns for
// the same bytes (TestPlainHeadAsNetHTTP and FuzzPlainHead check it).

// maxPlainFields is the most header fields a plain head may have.
const maxPlainFields = 32

// plainResponse is a response read by readPlainHead and its body, in one
// allocation.
type plainResponse struct {
	resp http.Response
	body upBody
}

// readPlainHead parses the response head buffered in br when it is plain:
// "HTTP/1.1" and a status of 200 to 599 other than 204 and 304, to a
// request other than HEAD; every line ended by CRLF; field names tokens,
// values without control bytes, no line folded; one Content-Length of
// digits; no Transfer-Encoding, Trailer, Connection or Pragma field
// (fields whose handling http.ReadResponse owns). It consumes the head and
// returns the response with its ContentLength set and no Body, or returns
// nil and consumes nothing.
func readPlainHead(br *bufio.Reader, method string) *plainResponse {
	if method == http.MethodHead {
		return nil
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil
	}
	head := buf[:end+2] // every line with its CRLF
	// Status line: "HTTP/1.1 " three digits, then CRLF or a space and the
	// reason phrase.
	eol := bytes.Index(head, crlf)
	line := head[:eol]
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) ||
		len(line) > 12 && line[12] != ' ' || !h1lex.PlainValue(line[12:]) {
		return nil
	}
	code := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil
	}
	// Fields: count and check them first, so that nothing is allocated
	// for a head that goes to http.ReadResponse.
	fields := head[eol+2:]
	n, length := 0, int64(-1)
	for rest := fields; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		l := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !h1lex.Tokens(l[:colon]) || !h1lex.PlainValue(l[colon+1:]) {
			return nil
		}
		if n++; n > maxPlainFields {
			return nil
		}
		name := l[:colon]
		switch {
		case !specialLen[len(name)&63]:
			// Not one of the names below: the usual case, at the cost of
			// a length check.
		case bytes.EqualFold(name, []byte("Content-Length")):
			v := h1lex.TrimOWS(l[colon+1:])
			if length >= 0 || len(v) == 0 || len(v) > 18 {
				return nil
			}
			length = 0
			for _, c := range v {
				if !isDigit(c) {
					return nil
				}
				length = length*10 + int64(c-'0')
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Trailer")),
			bytes.EqualFold(name, []byte("Connection")), bytes.EqualFold(name, []byte("Pragma")):
			return nil
		}
	}
	if length < 0 {
		return nil
	}
	// One string holds the status and every name and value.
	text := string(head)
	pr := &plainResponse{}
	resp := &pr.resp
	resp.Status = text[9:eol]
	resp.StatusCode = code
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	resp.ContentLength = length
	h := make(http.Header, n)
	strs := make([]string, n)
	off := eol + 2
	for rest := fields; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		l := rest[:i]
		colon := bytes.IndexByte(l, ':')
		key := text[off : off+colon]
		if !h1lex.IsCanonical(l[:colon]) {
			key = textproto.CanonicalMIMEHeaderKey(key)
		}
		v := h1lex.TrimOWS(l[colon+1:])
		start := off + colon + 1 + (len(l[colon+1:]) - len(h1lex.TrimLeftOWS(l[colon+1:])))
		value := text[start : start+len(v)]
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
		} else {
			strs[0] = value
			h[key], strs = strs[:1:1], strs[1:]
		}
		off += i + 2
		rest = rest[i+2:]
	}
	resp.Header = h
	_, _ = br.Discard(end + 4)
	return pr
}

// specialLen marks the lengths of the field names readPlainHead looks at:
// Content-Length, Transfer-Encoding, Trailer, Connection, Pragma.
var specialLen = [64]bool{14: true, 17: true, 7: true, 10: true, 6: true}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
