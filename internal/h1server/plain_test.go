package h1server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// plainRequests are requests readPlainRequest takes: what http.ReadRequest
// makes of them must be what it makes.
var plainRequests = []string{
	"GET / HTTP/1.1\r\nHost: 127.0.0.1:9101\r\n\r\n",
	"GET /api/items?id=1&x=%2F HTTP/1.1\r\nHost: users\r\nAccept: */*\r\nUser-Agent: wrk\r\n\r\n",
	"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"n\": 1234}",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	"GET http://users/a/b?c=d HTTP/1.1\r\nHost: users\r\nproxy-authorization-x: 1\r\n\r\n",
	"PUT /a%20b HTTP/1.1\r\nhost:  a:80 \t\r\nx-lower: 1\r\nX-Multi: 1\r\nx-multi: 2\r\nX-Empty:\r\nX-Utf8: caf\xc3\xa9\r\nContent-Length: 007\r\n\r\n1234567GET / HTTP/1.1\r\n",
	"DELETE /x HTTP/1.1\r\nHost: a\r\nTe: trailers\r\nCookie: a=1; b=2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", // short body
}

// otherRequests are left to http.ReadRequest whole.
var otherRequests = []string{
	"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n", // the head is not all there
}

func TestPlainRequestAsNetHTTP(t *testing.T) {
	for _, in := range plainRequests {
		if !comparePlainRequest(t, in) {
			t.Errorf("%q: left to http.ReadRequest, want it parsed", in)
		}
	}
	for _, in := range otherRequests {
		if comparePlainRequest(t, in) {
			t.Errorf("%q: parsed, want it left to http.ReadRequest", in)
		}
	}
}

// comparePlainRequest reads in with readPlainRequest and, when it takes
// it, with http.ReadRequest, and fails t when they differ: fields, URL,
// headers, Host, body and where the next request starts. It reports
// whether readPlainRequest took the request.
func comparePlainRequest(t testing.TB, in string) bool {
	br := bufio.NewReaderSize(strings.NewReader(in), 4096)
	br.Peek(1)
	var pb plainBody
	got, host := readPlainRequest(br, &pb)
	if got == nil {
		if n := br.Buffered(); n != len(in) && n != 4096 {
			t.Fatalf("%q: refused after consuming %d bytes", in, len(in)-n)
		}
		return false
	}
	wbr := bufio.NewReader(strings.NewReader(in))
	want, err := http.ReadRequest(wbr)
	if err != nil {
		t.Fatalf("%q: parsed, but http.ReadRequest fails: %v", in, err)
	}
	if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
		got.ContentLength != want.ContentLength || got.Close != want.Close ||
		!reflect.DeepEqual(got.TransferEncoding, want.TransferEncoding) || !reflect.DeepEqual(got.Trailer, want.Trailer) {
		t.Fatalf("%q:\n got %s %q %s host=%q cl=%d close=%v te=%v trailer=%v\nwant %s %q %s host=%q cl=%d close=%v te=%v trailer=%v", in,
			got.Method, got.RequestURI, got.Proto, got.Host, got.ContentLength, got.Close, got.TransferEncoding, got.Trailer,
			want.Method, want.RequestURI, want.Proto, want.Host, want.ContentLength, want.Close, want.TransferEncoding, want.Trailer)
	}
	if !reflect.DeepEqual(got.URL, want.URL) {
		t.Fatalf("%q: URL\n got %#v\nwant %#v", in, got.URL, want.URL)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q: header\n got %q\nwant %q", in, got.Header, want.Header)
	}
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Fatalf("%q: body NoBody %v, want %v", in, got.Body == http.NoBody, want.Body == http.NoBody)
	}
	gotBody, gotErr := io.ReadAll(got.Body)
	wantBody, wantErr := io.ReadAll(want.Body)
	if !bytes.Equal(gotBody, wantBody) || gotErr != wantErr {
		t.Fatalf("%q: body %q, %v; want %q, %v", in, gotBody, gotErr, wantBody, wantErr)
	}
	if n, err := got.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("%q: a read after the end gave %d, %v; want 0, EOF", in, n, err)
	}
	rest, _ := io.ReadAll(br)
	wantRest, _ := io.ReadAll(wbr)
	if !bytes.Equal(rest, wantRest) {
		t.Fatalf("%q: left %q, want %q", in, rest, wantRest)
	}
	var hosts []string
	for _, l := range strings.Split(in[:strings.Index(in, "\r\n\r\n")], "\r\n")[1:] {
		if k, v, _ := strings.Cut(l, ":"); strings.EqualFold(k, "Host") {
			hosts = append(hosts, strings.Trim(v, " \t"))
		}
	}
	if len(hosts) != 1 || string(host) != hosts[0] {
		t.Fatalf("%q: Host field %q, want %q", in, host, hosts)
	}
	return true
}

func FuzzPlainRequest(f *testing.F) {
	for _, in := range append(append([]string{}, plainRequests...), otherRequests...) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		comparePlainRequest(t, in)
	})
}

// TestPlainRequestLongBody: the header limit bounds a plain request's head,
// not its body.
func TestPlainRequestLongBody(t *testing.T) {
	const size = 20000 // more than MaxHeaderBytes (4096) and its slack
	in := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("x", size)
	out := serveOurs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		io.WriteString(w, fmt.Sprint(n, " ", err))
	}), []byte(in))
	if !strings.HasSuffix(out, "\r\n\r\n20000 <nil>") {
		t.Fatalf("answered %q, want the whole body read", out)
	}
}
