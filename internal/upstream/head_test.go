package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// plainHeads are heads readPlainHead takes: what http.ReadResponse makes
// of them must be what it makes.
var plainHeads = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nDate: Mon, 07 Dec 2026 23:00:00 GMT\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nx-lower-case: a\r\n\r\nno!",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 201 Created  \r\nContent-Length:   007  \r\nLocation:\t/x \t\r\n\r\n1234567",
	"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\n\r\n!",
	"HTTP/1.1 200 OK\r\nWWW-authenticate: Basic\r\nX_Under_Score: 1\r\nContent-Length: 1\r\nX-Utf8: caf\xc3\xa9\r\n\r\nx" + "HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 599 status code 599\r\nContent-Length: 1\r\n\r\nx",
}

// otherHeads are left to http.ReadResponse whole.
var otherHeads = []string{
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nPragma: no-cache\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTrailer: X\r\n\r\nx",
	"HTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Folded: a\r\n b\r\n\r\nx",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nBad Name: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Ctl: a\x01b\r\n\r\nx",
	"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", // the head is not all there
}

func TestPlainHeadAsNetHTTP(t *testing.T) {
	for _, in := range plainHeads {
		if !comparePlainHead(t, in, "GET") {
			t.Errorf("%q: left to http.ReadResponse, want it parsed", in)
		}
	}
	for _, in := range otherHeads {
		if comparePlainHead(t, in, "GET") {
			t.Errorf("%q: parsed, want it left to http.ReadResponse", in)
		}
	}
	if comparePlainHead(t, plainHeads[0], "HEAD") {
		t.Error("the answer to a HEAD request was parsed, want it left to http.ReadResponse")
	}
}

// comparePlainHead reads in with readPlainHead and, when it takes it,
// with http.ReadResponse, and fails t when they differ: fields, headers,
// body, and where the next response starts. It reports whether
// readPlainHead took the head.
func comparePlainHead(t testing.TB, in, method string) bool {
	req := &http.Request{Method: method}
	br := bufio.NewReaderSize(strings.NewReader(in), 4096)
	br.Peek(1)
	pr := readPlainHead(br, method)
	if pr == nil {
		if n := br.Buffered(); n != len(in) && n != 4096 {
			t.Fatalf("%q: refused after consuming %d bytes", in, len(in)-n)
		}
		return false
	}
	want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), req)
	if err != nil {
		t.Fatalf("%q: parsed, but http.ReadResponse fails: %v", in, err)
	}
	got := &pr.resp
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.ContentLength != want.ContentLength ||
		got.Close != want.Close || want.TransferEncoding != nil || want.Trailer != nil || want.Uncompressed {
		t.Fatalf("%q:\n got %q %d %s %d %v\nwant %q %d %s %d %v (te %v, trailer %v)", in,
			got.Status, got.StatusCode, got.Proto, got.ContentLength, got.Close,
			want.Status, want.StatusCode, want.Proto, want.ContentLength, want.Close, want.TransferEncoding, want.Trailer)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q: header\n got %q\nwant %q", in, got.Header, want.Header)
	}
	wantBody, _ := io.ReadAll(want.Body)
	gotBody, _ := io.ReadAll(io.LimitReader(br, got.ContentLength))
	if !bytes.Equal(gotBody, wantBody) {
		t.Fatalf("%q: body %q, want %q", in, gotBody, wantBody)
	}
	return true
}

func FuzzPlainHead(f *testing.F) {
	for _, in := range append(append([]string{}, plainHeads...), otherHeads...) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		comparePlainHead(t, in, "GET")
	})
}

// TestPlainBody: a body read through the connection hands the connection
// back with its last byte, and a short one is an error that closes it.
func TestPlainBody(t *testing.T) {
	addr, accepted := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for readHead(br) {
			if i == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello")
			return
		}
	})
	u, next := newTestClient(t)
	for round := range 2 {
		resp, err := upGet(t, u, context.Background(), "GET", addr, "/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "hello world" {
			t.Fatalf("round %d: body %q, %v", round, b, err)
		}
		if n := u.idleCount(addr); n != 1 {
			t.Fatalf("round %d: %d idle connections after the body, want 1", round, n)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two requests, want 1", n)
	}
	u.CloseIdleConnections()
	resp, err := upGet(t, u, context.Background(), "GET", addr, "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != io.ErrUnexpectedEOF || string(b) != "hello" {
		t.Fatalf("short body %q, %v; want hello, unexpected EOF", b, err)
	}
	if n := u.idleCount(addr); n != 0 {
		t.Fatalf("%d idle connections after a short body, want 0", n)
	}
	if n := next.n.Load(); n != 0 {
		t.Fatalf("%d requests went to the fallback transport, want 0", n)
	}
}
