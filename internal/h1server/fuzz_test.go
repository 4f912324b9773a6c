package h1server

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// memConn is a connection in memory: reads give the input then EOF,
// writes are kept, Close reports the end. The fuzz target needs many
// connections a second; loopback TCP would make it slow.
type memConn struct {
	in     *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed chan struct{}
	once   sync.Once
}

func newMemConn(in []byte) *memConn {
	return &memConn{in: bytes.NewReader(in), closed: make(chan struct{})}
}

func (c *memConn) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *memConn) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// oneConn is a listener that gives one connection.
type oneConn struct {
	c    net.Conn
	done chan struct{}
}

func (l *oneConn) Accept() (net.Conn, error) {
	if l.c != nil {
		c := l.c
		l.c = nil
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}
func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return &net.TCPAddr{} }

// serveOurs runs this server on in and returns what it wrote.
func serveOurs(h http.Handler, in []byte) string {
	s := &Server{Handler: h, MaxHeaderBytes: 4096}
	mc := newMemConn(in)
	s.track(nopListener{})
	cn := newConn(s, mc)
	s.add(cn)
	cn.serve()
	return mc.output()
}

type nopListener struct{ net.Listener }

// serveNetHTTP runs net/http's server on in and returns what it wrote.
func serveNetHTTP(h http.Handler, in []byte) string {
	mc := newMemConn(in)
	done := make(chan struct{})
	hs := &http.Server{Handler: h, MaxHeaderBytes: 4096}
	go hs.Serve(&oneConn{c: mc, done: done})
	<-mc.closed
	close(done)
	return mc.output()
}

// FuzzRequest feeds arbitrary bytes to this server and to net/http's: both
// must write the same answer (Date aside), and this one must not panic or
// hang. The seeds are in testdata/fuzz/FuzzRequest: the conformance cases
// (seed-*) and what the fuzzer found.
func FuzzRequest(f *testing.F) {
	h := testHandler()
	f.Fuzz(func(t *testing.T, in []byte) {
		got := dateLine.ReplaceAllString(serveOurs(h, in), "")
		want := dateLine.ReplaceAllString(serveNetHTTP(h, in), "")
		if got != want {
			t.Fatalf("input %q\nh1server answered\n%q\nnet/http answered\n%q", in, got, want)
		}
	})
}
