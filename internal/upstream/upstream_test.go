package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/callctx"
)

// countingTransport is the fallback of a test's Client: a real
// http.Transport that counts the requests it gets.
type countingTransport struct {
	tr *http.Transport
	n  atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.tr.RoundTrip(r)
}

func newTestClient(t *testing.T) (*Client, *countingTransport) {
	t.Helper()
	next := &countingTransport{tr: &http.Transport{}}
	d := &net.Dialer{Timeout: 5 * time.Second}
	u := New(d.DialContext, next)
	t.Cleanup(func() {
		u.Close()
		next.tr.CloseIdleConnections()
	})
	return u, next
}

// countConns counts the connections a test server accepts.
func countConns(s *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func upGet(t *testing.T, u *Client, ctx context.Context, method, addr, path string) (*http.Response, error) {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u.RoundTrip(r)
}

func TestUpstreamKeepAliveBodies(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB, more than the buffers
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			// Flushing before the end makes net/http chunk the body.
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/big":
			io.WriteString(w, big)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		default:
			io.WriteString(w, r.Method+" "+r.Host+" "+r.UserAgent())
		}
	}))
	conns := countConns(s)
	s.Start()
	t.Cleanup(s.Close)
	u, next := newTestClient(t)
	addr := s.Listener.Addr().String()
	tests := []struct {
		method, path string
		status       int
		body         string
		trailer      string
	}{
		{"GET", "/length", 200, "hello", ""},
		{"GET", "/chunked", 200, "part one, part two", ""},
		{"GET", "/big", 200, big, ""},
		{"GET", "/trailer", 200, "body", "42"},
		{"GET", "/empty", 204, "", ""},
		{"HEAD", "/length", 200, "", ""},
		{"GET", "/hints", 200, "after hints", ""},
		{"OPTIONS", "/echo", 200, "OPTIONS " + addr + " Go-http-client/1.1", ""},
	}
	for round := 0; round < 3; round++ {
		for _, tt := range tests {
			resp, err := upGet(t, u, context.Background(), tt.method, addr, tt.path)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tt.status || string(b) != tt.body {
				t.Errorf("%s %s: %d, %d bytes, %v; want %d, %d bytes", tt.method, tt.path, resp.StatusCode, len(b), err, tt.status, len(tt.body))
			}
			if got := resp.Trailer.Get("X-Sum"); got != tt.trailer {
				t.Errorf("%s %s: trailer %q, want %q", tt.method, tt.path, got, tt.trailer)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d sequential requests opened %d connections, want 1", 3*len(tests), n)
	}
	if n := u.idleCount(addr); n != 1 {
		t.Errorf("%d idle connections after the requests, want 1", n)
	}
	if n := next.n.Load(); n != 0 {
		t.Errorf("%d bodyless requests went to the Transport, want 0", n)
	}
}

func TestUpstreamFallback(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	t.Cleanup(s.Close)
	u, next := newTestClient(t)
	tests := []struct {
		name   string
		method string
		body   string
		header string
		direct bool
	}{
		{"GET", "GET", "", "", true},
		{"GET with a body", "GET", "q", "", true},
		{"POST without a body", "POST", "", "", true},
		{"PUT", "PUT", "data", "", true},
		{"DELETE", "DELETE", "", "", true},
		{"POST over MaxDirectBody", "POST", strings.Repeat("b", MaxDirectBody+1), "", false},
		{"Expect", "GET", "", "Expect", false},
		{"upgrade", "GET", "", "Upgrade", false},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		r, _ := http.NewRequest(tt.method, s.URL+"/", body)
		if tt.header != "" {
			r.Header.Set(tt.header, "100-continue")
		}
		if got := Direct(r); got != tt.direct {
			t.Errorf("%s: Direct = %v, want %v", tt.name, got, tt.direct)
		}
		if tt.header != "" {
			continue
		}
		before := next.n.Load()
		resp, err := u.RoundTrip(r)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := tt.method + " " + tt.body; string(b) != want {
			t.Errorf("%s: answer %.40q, want %.40q", tt.name, b, want)
		}
		if viaNext := next.n.Load() != before; viaNext == tt.direct {
			t.Errorf("%s: went to the Transport: %v, want %v", tt.name, viaNext, !tt.direct)
		}
	}
}

// rawServer accepts connections and hands each, with its index, to serve.
func rawServer(t *testing.T, serve func(i int, c net.Conn, br *bufio.Reader)) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(accepted.Add(1)) - 1
			go func() {
				defer c.Close()
				serve(i, c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// readHead reads one request's head, reporting false at the end of the
// connection.
func readHead(br *bufio.Reader) bool {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if l == "\r\n" {
			return true
		}
	}
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestUpstreamReplicaClosesConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// second is what the first connection does with the second request.
		second   func(c net.Conn)
		wantErr  bool
		accepted int32
	}{
		// The server closed the idle connection: the request is sent
		// again on a new one, as net/http does.
		{"closed before the response", func(c net.Conn) {}, false, 2},
		// Part of the response came: the request may have run; the error
		// goes to the caller (the mesh's retry policy decides).
		{"closed during the response", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le") }, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, accepted := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
				for n := 0; readHead(br); n++ {
					if i == 0 && n == 1 {
						tt.second(c)
						return
					}
					io.WriteString(c, okResponse)
				}
			})
			u, _ := newTestClient(t)
			for n := 0; n < 2; n++ {
				resp, err := upGet(t, u, context.Background(), "GET", addr, "/")
				if err != nil {
					if n == 1 && tt.wantErr {
						break
					}
					t.Fatalf("request %d: %v", n, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					t.Errorf("request %d: body %q", n, b)
				}
				if n == 1 && tt.wantErr {
					t.Errorf("request 1 succeeded after a broken response")
				}
			}
			if n := accepted.Load(); n != tt.accepted {
				t.Errorf("%d connections accepted, want %d", n, tt.accepted)
			}
		})
	}
}

func TestUpstreamConnectionNotReused(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1<<20)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, big)
	}))
	conns := countConns(s)
	s.Start()
	t.Cleanup(s.Close)
	u, _ := newTestClient(t)
	addr := s.Listener.Addr().String()
	tests := []struct {
		name, path string
		read       int // bytes read before Close; -1: all
	}{
		{"body closed unread", "/", 10},
		{"server asks to close", "/close", -1},
	}
	for i, tt := range tests {
		resp, err := upGet(t, u, context.Background(), "GET", addr, tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.read < 0 {
			io.Copy(io.Discard, resp.Body)
		} else {
			io.CopyN(io.Discard, resp.Body, int64(tt.read))
		}
		resp.Body.Close()
		if n := u.idleCount(addr); n != 0 {
			t.Errorf("%s: %d idle connections, want 0", tt.name, n)
		}
		if n := conns.Load(); n != int32(i+1) {
			t.Errorf("%s: %d connections so far, want %d", tt.name, n, i+1)
		}
	}
	// The next request is served on a new connection.
	resp, err := upGet(t, u, context.Background(), "GET", addr, "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != len(big) {
		t.Errorf("after unreused connections: %d bytes, want %d", len(b), len(big))
	}
}

func TestUpstreamCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	u, _ := newTestClient(t)
	addr := s.Listener.Addr().String()
	// The context ends while the head is awaited, then while the body is.
	for _, path := range []string{"/slow-head", "/slow-body"} {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			resp, err := upGet(t, u, ctx, "GET", addr, path)
			if err == nil {
				buf := make([]byte, 5)
				if _, err = io.ReadFull(resp.Body, buf); err == nil {
					// The first part came: now end the context.
					cancel()
					_, err = io.ReadAll(resp.Body)
				}
				resp.Body.Close()
			}
			errc <- err
		}()
		<-arrived
		if path == "/slow-head" {
			cancel()
		}
		select {
		case err := <-errc:
			if err == nil {
				t.Errorf("%s: no error after the context ended", path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the round trip went on after the context ended", path)
		}
		cancel()
		if n := u.idleCount(addr); n != 0 {
			t.Errorf("%s: a canceled connection went back to the pool", path)
		}
	}
}

// TestUpstreamChunkedBodyFallsBack: a body of unknown length goes to the
// Transport, which writes it while it reads the answer.
func TestUpstreamChunkedBodyFallsBack(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%v %s", r.TransferEncoding, b)
	}))
	t.Cleanup(s.Close)
	u, next := newTestClient(t)
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "streamed")
		pw.Close()
	}()
	r, _ := http.NewRequest("POST", s.URL+"/", pr)
	if Direct(r) {
		t.Fatal("a body of unknown length is sent directly")
	}
	resp, err := u.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "[chunked] streamed" || next.n.Load() != 1 {
		t.Fatalf("answer %q, %d through the Transport", b, next.n.Load())
	}
}

// TestUpstreamBodyAfterServerClosedIdle: a server that closed an idle
// connection does not fail a POST, which could not be sent again: the
// closed connection is noticed before the request is written.
func TestUpstreamBodyAfterServerClosedIdle(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 4)
	addr, accepted := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		// As a server's idle timeout does, without Connection: close.
		c.Close()
		closed <- struct{}{}
	})
	u, _ := newTestClient(t)
	u.staleAfter = 0
	for i, body := range []string{"first", "second"} {
		r, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader(body))
		resp, err := u.RoundTrip(r)
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != body {
			t.Fatalf("POST %d: answer %q", i, b)
		}
		<-closed
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// TestUpstreamCallContext: a callctx.Context's deadline goes on the
// connection and ends a round trip that passes it; a connection kept
// after such a round trip has the deadline cleared before its reuse; the
// parent's end still interrupts.
func TestUpstreamCallContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	addr, accepted := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			l, err := br.ReadString('\n')
			if err != nil || !readHead(br) {
				return
			}
			if strings.HasPrefix(l, "GET /slow ") {
				arrived <- struct{}{}
				<-release
				return
			}
			if _, err := io.WriteString(c, okResponse); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { close(release) })
	u, _ := newTestClient(t)

	// get reads the answer to path within 10 s, or fails the test.
	get := func(ctx context.Context, path string) error {
		errc := make(chan error, 1)
		go func() {
			resp, err := upGet(t, u, ctx, "GET", addr, path)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && string(b) != "ok" {
					err = fmt.Errorf("body %q", b)
				}
			}
			errc <- err
		}()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s went on for 10 s", path)
			return nil
		}
	}
	// A short deadline on the first connection, then a request on the
	// same connection, pooled, after that deadline has passed.
	short := callctx.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := get(short, "/"); err != nil {
		t.Fatalf("first request: %v", err)
	}
	short.Cancel()
	dl, _ := short.Deadline()
	time.Sleep(time.Until(dl) + 10*time.Millisecond)
	if err := get(context.Background(), "/"); err != nil {
		t.Fatalf("request on the kept connection after the first one's deadline: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two requests, want 1 (the first kept)", n)
	}

	// The deadline ends a round trip the server does not answer.
	slow := callctx.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := get(slow, "/slow"); err == nil {
		t.Fatal("no error from a round trip past its deadline")
	}
	if !errors.Is(slow.Err(), context.DeadlineExceeded) {
		t.Fatalf("context error %v after the deadline", slow.Err())
	}
	<-arrived

	// The parent's end interrupts a round trip with a far deadline.
	parent, cancel := context.WithCancel(context.Background())
	far := callctx.WithTimeout(parent, time.Hour)
	go func() {
		<-arrived
		cancel()
	}()
	if err := get(far, "/slow"); err == nil {
		t.Fatal("no error after the parent ended")
	}
	if !errors.Is(far.Err(), context.Canceled) {
		t.Fatalf("context error %v after the parent ended", far.Err())
	}
}
