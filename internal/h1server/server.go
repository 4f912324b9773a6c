// Package h1server is nubo's HTTP/1.1 server loop for its proxies' plain
// listeners (the mesh's loopback listeners, the ingress's plain port): it
// reads a request, calls an http.Handler on the connection's own goroutine
// and writes the answer, with no background read per request and the
// connection's buffers reused, and hands a connection that speaks anything
// else (HTTP/2 with prior knowledge, CONNECT) to a net/http server on its
// first bytes.
//
// The request parser is net/http's own (http.ReadRequest), with the checks
// net/http's server adds to it (Host, header names and values, header size,
// Expect), so that what a request means does not depend on which server
// read it; the differential tests feed both the same bytes. Only the
// plainest requests, whole in the buffer, are parsed by readPlainRequest,
// with fewer allocations and, as its tests check field by field, the same
// result (plain.go). What differs is
// around it: net/http's server starts a read of the connection in the
// background after each request, to notice a client going away, and
// allocates its response state per request. A proxy answering small
// requests over keep-alive connections spends more on that than on its own
// work. The price: a client that goes away while its request waits for an
// upstream is noticed when the answer is written, not before (as a proxy
// that does not watch the socket: the request's own timeout bounds it).
package h1server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 on a listener with Handler, and hands other
// protocols to Fallback. Set its fields before Serve; do not change them
// after.
type Server struct {
	// Handler answers every HTTP/1.x request.
	Handler http.Handler
	// Fallback serves the connections this server hands over (HTTP/2 with
	// prior knowledge, CONNECT): its Handler, Protocols and ConnContext
	// apply to them. Nil answers them 505 and 405.
	Fallback *http.Server
	// Accept is called with each new connection before any byte is read;
	// false closes it (a peer that may not connect, a cap reached).
	Accept func(net.Conn) bool
	// ConnContext returns the base context of a connection's requests;
	// nil keeps context.Background.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ReadHeaderTimeout bounds the time to read a request's line and
	// headers from its first byte; zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection (and for the first); zero means ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second, after BodyGrace; zero means no limit.
	MinBodyRate int64
	// BodyGrace is the time a body is given before MinBodyRate applies.
	BodyGrace time.Duration
	// MaxHeaderBytes bounds a request's line and headers; zero means
	// http.DefaultMaxHeaderBytes (1 MiB). Larger requests get 431.
	MaxHeaderBytes int
	// Log receives connection errors at debug level; nil discards them.
	Log *slog.Logger

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*conn]struct{}
	handover *chanListener
	fbDone   chan struct{}
	closing  atomic.Bool
	wg       sync.WaitGroup
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Serve accepts connections on ln and serves each on its own goroutine
// until ln fails or the server is shut down. It closes ln on return.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and such: wait a little, as
				// net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.Accept != nil && !s.Accept(c) {
			c.Close()
			continue
		}
		cn := newConn(s, c)
		if !s.add(cn) {
			c.Close()
			return ErrServerClosed
		}
		go cn.serve()
	}
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.lns[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.lns, ln)
	s.mu.Unlock()
	ln.Close()
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handOver gives c to Fallback, starting it on first use.
func (s *Server) handOver(c net.Conn) {
	s.mu.Lock()
	if s.handover == nil && !s.closing.Load() {
		s.handover = newChanListener(c.LocalAddr())
		s.fbDone = make(chan struct{})
		go func(ln *chanListener, done chan struct{}) {
			defer close(done)
			_ = s.Fallback.Serve(ln)
		}(s.handover, s.fbDone)
	}
	ln := s.handover
	s.mu.Unlock()
	if ln == nil || !ln.give(c) {
		c.Close()
	}
}

// Shutdown stops accepting, closes idle connections, and waits until the
// others have finished their request or ctx is done; the fallback server
// is shut down alike (always: its owner may serve it connections too). Connections a handler hijacked are its own.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	var fbErr error
	if s.Fallback != nil {
		// Also when nothing was handed over: its owner may serve it
		// connections of its own.
		fbErr = s.Fallback.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return fbErr
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	if s.Fallback != nil {
		s.Fallback.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.lns {
		ln.Close()
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			c.rwc.Close()
		}
	}
}

func (s *Server) logf(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Debug(msg, args...)
	}
}

// chanListener is the listener of the fallback server: connections come
// from the server's own loop, not from a socket.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
