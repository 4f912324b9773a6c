package h1server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testHandler answers every conformance case; what it prints lets a
// transcript show how the server framed and parsed the request.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s %s host=%q cl=%d te=%v close=%v hdr=%q body=%q err=%v trailer=%v\n",
			r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding, r.Close,
			r.Header.Get("X-Test"), body, err, r.Trailer)
	}
	mux.HandleFunc("/", echo)
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// More than the held-back part: chunked for HTTP/1.1.
		w.Write(bytes.Repeat([]byte("x"), 3000))
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after hints")
	})
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		io.WriteString(w, "two")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "12")
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/noread", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "did not read the body")
	})
	mux.HandleFunc("/partial", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 2)
		io.ReadFull(r.Body, b)
		r.Body.Close()
		fmt.Fprintf(w, "read %q", b)
	})
	mux.HandleFunc("/sniff", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><body>sniffed</body></html>")
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(599)
		io.WriteString(w, "odd status")
	})
	return mux
}

// pair starts this server and net/http's with the same handler and
// limits, on loopback.
func pair(t *testing.T, h http.Handler) (ours, theirs string) {
	t.Helper()
	const maxHeader = 4096
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, MaxHeaderBytes: maxHeader, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln1)
	t.Cleanup(func() { s.Close() })
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, MaxHeaderBytes: maxHeader, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: nil}
	hs.SetKeepAlivesEnabled(true)
	go hs.Serve(ln2)
	t.Cleanup(func() { hs.Close() })
	return ln1.Addr().String(), ln2.Addr().String()
}

// exchange sends raw, closes the sending side, and returns everything the
// server wrote until it closed the connection.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A bound so that a server that never closes fails the test rather
	// than hangs it; no case comes near it.
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the answer: %v", err)
	}
	return string(out)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r\n`)

// conformanceCases are raw requests: framing, smuggling, limits and
// connection management, each sent to both servers.
var conformanceCases = []struct{ name, raw, want string }{
	{"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK"},
	{"pipelining", "GET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /cl HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /big HTTP/1.1\r\nHost: a\r\n\r\n", "body=\"abc\""},
	{"POST with Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "body=\"hello\""},
	{"chunked with trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n", "trailer=map[X-Sum:[11]]"},
	{"TE and CL: chunked wins, next request parsed after it", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", "GET /smuggled"},
	{"CL then TE with smuggled body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "body=\"abc\""},
	{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400 Bad Request"},
	{"two equal Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", ""},
	{"Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", ""},
	{"negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "400 Bad Request"},
	{"Content-Length with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", "400 Bad Request"},
	{"unsupported Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "501 Not Implemented"},
	{"Transfer-Encoding list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501 Not Implemented"},
	{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ""},
	{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", ""},
	{"chunk size with bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", ""},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-Test: one\r\n two\r\n\r\n", ""},
	{"bare LF line ends", "GET / HTTP/1.1\nHost: a\nX-Test: lf\n\n", ""},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400 Bad Request"},
	{"NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-Test: a\x00b\r\n\r\n", "400 Bad Request"},
	{"header too long", "GET / HTTP/1.1\r\nHost: a\r\nX-Test: " + strings.Repeat("a", 9000) + "\r\n\r\n", "431 Request Header Fields Too Large"},
	{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 2000) + "\r\n", "431 Request Header Fields Too Large"},
	{"bad request line", "GARBAGE\r\n\r\n", "400 Bad Request"},
	{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request"},
	{"bad version", "GET / HTTP/9.9\r\nHost: a\r\n\r\n", ""},
	{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
	{"missing Host", "GET / HTTP/1.1\r\n\r\n", "missing required Host header"},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400 Bad Request"},
	{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "malformed Host header"},
	{"Host folded: joined with a space", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", "malformed Host header"},
	{"Host folded after an empty value", "GET / HTTP/1.1\r\nHost:\r\n a\r\n\r\n", "host=\"a\""},
	{"HTTP/1.0 Host folded onto an empty line", "GET / HTTP/1.0\nHost:000\n \n\r\n", "malformed Host header"},
	{"absolute-form target", "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n", "GET http://example.com/x?y=1"},
	{"HTTP/1.0 closes", "GET /small HTTP/1.0\r\n\r\nGET /small HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK"},
	{"HTTP/1.0 keep-alive", "GET /small HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "Connection: keep-alive"},
	{"HTTP/1.0 keep-alive, unknown length", "GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /small HTTP/1.0\r\n\r\n", ""},
	{"Connection: close", "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "Connection: close"},
	{"handler's Connection: close", "GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "bye"},
	{"HEAD", "HEAD /small HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big HTTP/1.1\r\nHost: a\r\n\r\nHEAD /cl HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "Content-Length: 5"},
	{"Expect: 100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", "100 Continue"},
	{"Expect: 100-continue, body not read", "POST /noread HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhelloGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "did not read"},
	{"other Expect", "POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 5\r\n\r\nhello", "417 Expectation Failed"},
	{"1xx early hints", "GET /early HTTP/1.1\r\nHost: a\r\n\r\n", "103 Early Hints"},
	{"trailers in the response", "GET /trailer HTTP/1.1\r\nHost: a\r\n\r\n", "X-Sum: 42"},
	{"flush forces chunking", "GET /flush HTTP/1.1\r\nHost: a\r\n\r\n", "Transfer-Encoding: chunked"},
	{"204 has no body", "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "204 No Content"},
	{"304 drops the length", "GET /notmodified HTTP/1.1\r\nHost: a\r\n\r\n", "304 Not Modified"},
	{"short body closes", "GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "hello"},
	{"unread body drained", "POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "did not read"},
	{"unread chunked body drained", "POST /noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "did not read"},
	{"body closed early", "POST /partial HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /small HTTP/1.1\r\nHost: a\r\n\r\n", "read \"he\""},
	{"content type sniffed", "GET /sniff HTTP/1.1\r\nHost: a\r\n\r\n", "text/html"},
	{"unknown status", "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", "599 status code 599"},
	{"incomplete request", "GET / HTTP/1.1\r\nHost: a\r\n", ""},
	{"incomplete body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", ""},
	{"empty", "", ""},
}

// TestConformance sends each case to this server and to net/http's and
// wants the same bytes back (Date aside): the parser is net/http's, the
// framing and connection handling are this package's.
func TestConformance(t *testing.T) {
	ours, theirs := pair(t, testHandler())
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			got := dateLine.ReplaceAllString(exchange(t, ours, tc.raw), "")
			want := dateLine.ReplaceAllString(exchange(t, theirs, tc.raw), "")
			if got != want {
				t.Fatalf("h1server answered\n%q\nnet/http answered\n%q", got, want)
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("answer %q lacks %q", got, tc.want)
			}
		})
	}
}
