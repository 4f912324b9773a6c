// Package netguard bounds what clients can hold of nubo's HTTP listeners
// (ingress, gateway, mesh, console): how many connections are open at
// once, how long a request's header may take, how long a request body may
// pause between two reads (nginx's client_body_timeout: a minimum body
// rate) and how long an idle keep-alive connection stays.
//
// # The open-file budget
//
// Every connection is a file descriptor, and so is every file the broker
// and the stores write. A flood of slow clients must not take the
// descriptors JetStream needs for its next block file: that turns into
// "too many open files" on a write, which the broker cannot undo on its
// own. So the caps come from the process's open-file limit (RLIMIT_NOFILE,
// whose soft value RaiseFileLimit lifts to the hard one at start; the Go
// runtime does so too since Go 1.19), split as Budget says: a quarter, at
// least 1024, stays in reserve for the broker, the stores, log files and
// child processes' pipes; of the rest, a proxied connection costs two
// descriptors (the client's and the upstream's), so the gateway, the
// ingress and the mesh each get a sixth, and the console a fixed 256.
//
// A full listener stops accepting: new connections wait in the kernel's
// backlog, costing nubo no descriptor, until a slot frees.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Kind names a group of listeners that shares one connection cap.
type Kind int

// The listener groups of nubo.
const (
	Gateway Kind = iota
	Ingress
	Mesh
	Console
)

func (k Kind) String() string {
	switch k {
	case Gateway:
		return "gateway"
	case Ingress:
		return "ingress"
	case Mesh:
		return "mesh"
	case Console:
		return "console"
	}
	return fmt.Sprintf("kind %d", int(k))
}

// Defaults of Limits.
const (
	// DefaultHeaderTimeout bounds the reading of a request's header.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout is the longest pause between two reads of a
	// request body (nginx's client_body_timeout default).
	DefaultBodyTimeout = 60 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection waits for
	// its next request.
	DefaultIdleTimeout = 2 * time.Minute
	// consoleConns is the console's cap: its clients are the CLI and a
	// browser or two.
	consoleConns = 256
	// minReserve is the least number of descriptors kept from listeners.
	minReserve = 1024
)

// Limits are the bounds of one listener group. The zero value of a field
// takes its default (WithDefaults).
type Limits struct {
	// MaxConns is the number of connections open at once; a negative
	// value means no cap.
	MaxConns int
	// HeaderTimeout bounds the reading of a request's header.
	HeaderTimeout time.Duration
	// BodyTimeout is the longest pause between two reads of a request
	// body; a client slower than that is cut off.
	BodyTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection waits for its next
	// request.
	IdleTimeout time.Duration
}

// WithDefaults fills the unset fields of l: the timeouts' defaults and
// MaxConns from the Budget of the process's open-file limit.
func (l Limits) WithDefaults(k Kind) Limits {
	if l.MaxConns == 0 {
		l.MaxConns = BudgetFor(FileLimit()).Conns(k)
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	return l
}

// Budget is how the open-file limit is shared (see the package doc).
type Budget struct {
	// Limit is the open-file limit it was computed from.
	Limit int
	// Reserve is kept from every listener, for the broker, the stores,
	// files and child processes.
	Reserve int
	// Gateway, Ingress, Mesh and Console are the connection caps.
	Gateway, Ingress, Mesh, Console int
}

// BudgetFor shares limit descriptors.
func BudgetFor(limit int) Budget {
	b := Budget{Limit: limit, Reserve: max(minReserve, limit/4)}
	rest := max(0, limit-b.Reserve-consoleConns)
	b.Gateway, b.Ingress, b.Mesh = max(1, rest/6), max(1, rest/6), max(1, rest/6)
	b.Console = consoleConns
	return b
}

// Conns is the cap of one listener group.
func (b Budget) Conns(k Kind) int {
	switch k {
	case Gateway:
		return b.Gateway
	case Ingress:
		return b.Ingress
	case Mesh:
		return b.Mesh
	}
	return b.Console
}

// FileLimit is the process's soft open-file limit (4096 when it cannot be
// read, a common default).
func FileLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur == unix.RLIM_INFINITY {
		return 4096
	}
	return int(min(r.Cur, 1<<30))
}

// RaiseFileLimit lifts the soft open-file limit to the hard one and
// returns the limit in force. The Go runtime does this at start on Linux
// (and gives children the original limit back); calling it again costs
// nothing and holds where it does not.
func RaiseFileLimit() (int, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return FileLimit(), fmt.Errorf("read the open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
			return FileLimit(), fmt.Errorf("raise the open-file limit to %d: %w", r.Max, err)
		}
	}
	return FileLimit(), nil
}

// ErrBodyTimeout is the error of a body read when the client sent nothing
// for the body timeout; a handler answers it with 408 Request Timeout.
var ErrBodyTimeout = errors.New("request body timed out")

// Limiter is a connection cap shared by the listeners it wraps.
type Limiter struct {
	sem  chan struct{}
	open atomic.Int64
}

// NewLimiter returns a cap of n connections; n < 0 is no cap.
func NewLimiter(n int) *Limiter {
	l := &Limiter{}
	if n >= 0 {
		l.sem = make(chan struct{}, n)
	}
	return l
}

// Open is the number of connections open through the limiter's
// listeners.
func (l *Limiter) Open() int { return int(l.open.Load()) }

// Listener wraps ln: its Accept waits while the cap is reached.
func (l *Limiter) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l, done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	l         *Limiter
	done      chan struct{}
	closeOnce sync.Once
}

func (ll *limitListener) acquire() bool {
	if ll.l.sem == nil {
		return true
	}
	select {
	case <-ll.done:
		return false
	case ll.l.sem <- struct{}{}:
		return true
	}
}

func (ll *limitListener) release() {
	if ll.l.sem != nil {
		<-ll.l.sem
	}
}

func (ll *limitListener) Accept() (net.Conn, error) {
	if !ll.acquire() {
		return nil, net.ErrClosed
	}
	c, err := ll.Listener.Accept()
	if err != nil {
		ll.release()
		return nil, err
	}
	ll.l.open.Add(1)
	return &limitConn{Conn: c, release: func() { ll.l.open.Add(-1); ll.release() }}, nil
}

func (ll *limitListener) Close() error {
	err := ll.Listener.Close()
	ll.closeOnce.Do(func() { close(ll.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Server applies l's timeouts to srv and wraps its handler so that a
// request body pausing longer than l.BodyTimeout fails; call it before
// Serve, with l from WithDefaults.
func Server(srv *http.Server, l Limits) {
	srv.ReadHeaderTimeout = l.HeaderTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.Handler = BodyTimeout(srv.Handler, l.BodyTimeout)
}

// BodyTimeout makes every read of a request body fail when the client
// sends nothing for d, and bounds the discarding of a body the handler did
// not read. http.Server has only a deadline for the whole request
// (ReadTimeout), which would cut off slow but steady uploads and
// streaming requests alike.
func BodyTimeout(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		// The body and the context that carries it (BodyTimedOut) take
		// one allocation; the servers' writers set deadlines themselves,
		// others (wrapped) through a ResponseController.
		rd, ok := w.(readDeadliner)
		if !ok {
			rd = http.NewResponseController(w)
		}
		b := &deadlineBody{ReadCloser: r.Body, rc: rd, d: d}
		b.ctx = bodyContext{Context: r.Context(), b: b}
		defer b.finish()
		// A copy: the server decides whether the connection can be
		// reused from its own request's body (read to the end, closed
		// early), which must stay its own.
		r2 := r.WithContext(&b.ctx)
		r2.Body = b
		h.ServeHTTP(w, r2)
	})
}

type bodyKey struct{}

// readDeadliner sets the read deadline of a request's connection: the
// ResponseWriter of net/http's server and of h1server, or an
// http.ResponseController.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// bodyContext is the request's context with its deadlineBody under
// bodyKey, as context.WithValue would make it.
type bodyContext struct {
	context.Context
	b *deadlineBody
}

func (c *bodyContext) Value(key any) any {
	if key == (bodyKey{}) {
		return c.b
	}
	return c.Context.Value(key)
}

// BodyTimedOut reports whether the body of the request of ctx timed out:
// a handler that sees the request's context cancelled (the server cancels
// it when a read of the connection fails) can tell a slow client, 408,
// from one that went away.
func BodyTimedOut(ctx context.Context) bool {
	b, ok := ctx.Value(bodyKey{}).(*deadlineBody)
	return ok && b.timedOut.Load()
}

// deadlineBody sets the connection's read deadline before each read of
// the body, and clears it at the end of the body so that the server's
// own background read (which notices a client going away) is not cut.
type deadlineBody struct {
	io.ReadCloser
	rc       readDeadliner
	ctx      bodyContext
	d        time.Duration
	eof      atomic.Bool
	timedOut atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.eof.Store(true)
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		err = fmt.Errorf("%w (%v without a byte)", ErrBodyTimeout, b.d)
	}
	return n, err
}

// finish bounds what the server reads of a body the handler left: it
// discards up to 256 KiB of it before the next request.
func (b *deadlineBody) finish() {
	if !b.eof.Load() {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
}
