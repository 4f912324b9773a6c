package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/h1server"
	"github.com/nubo-dev/nubo/internal/netguard"
)

// listenerKey names a loopback listener: a caller's proxy listener (target
// empty), or the listener a caller uses to reach one target by URL.
type listenerKey struct {
	caller, target string
}

type listener struct {
	key  listenerKey
	ln   net.Listener
	srv  *http.Server
	loop *h1server.Server // in front of srv on plain listeners; nil on TLS
	// handler is srv's handler without the body timeout its server adds,
	// for in-process requests (Transport); nil on the ingress's.
	handler http.Handler
	url     string
	done    chan struct{} // closed when Serve has returned; nil until served
}

// newLoop puts nubo's HTTP/1.1 server loop in front of srv on a plain
// listener: it serves HTTP/1.x with srv's handler, context and timeouts,
// and hands HTTP/2 and CONNECT to srv on their first bytes.
func newLoop(srv *http.Server, log *slog.Logger) *h1server.Server {
	return &h1server.Server{
		Handler:           srv.Handler,
		Fallback:          srv,
		ConnContext:       srv.ConnContext,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		Log:               log,
	}
}

// newServer is the HTTP server of the mesh's loopback and ingress
// listeners: HTTP/1.1 with keep-alive, and HTTP/2 cleartext with prior
// knowledge (gRPC clients), with the header, body and idle timeouts of
// limits.
func newServer(h http.Handler, log *slog.Logger, limits netguard.Limits) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:   h,
		Protocols: &p,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if t, ok := c.(*tunnelConn); ok {
				return context.WithValue(ctx, tunnelKey{}, t.target)
			}
			return ctx
		},
	}
	netguard.Server(srv, limits)
	return srv
}

// ProxyURL returns the HTTP_PROXY of caller's processes: a loopback
// listener of its own, so that the mesh knows the calling workload. The
// listener is bound on first use and keeps its port until Stop (or
// RemoveCaller), across reloads and restarts of the caller's replicas.
func (m *Mesh) ProxyURL(caller string) (string, error) {
	l, err := m.listen(listenerKey{caller: caller})
	if err != nil {
		return "", err
	}
	return l.url, nil
}

// ServiceURL returns the URL through which caller reaches target (a
// service or a route) without a proxy: a loopback listener for that pair,
// the value of NUBO_SERVICE_<TARGET>_URL. Requests to it go through the
// mesh exactly as http://TARGET/ through HTTP_PROXY does.
func (m *Mesh) ServiceURL(caller, target string) (string, error) {
	if m.cur.Load().hosts[strings.ToLower(target)] == nil {
		return "", fmt.Errorf("mesh: service URL for %s: no service or route %q", caller, target)
	}
	l, err := m.listen(listenerKey{caller: caller, target: target})
	if err != nil {
		return "", err
	}
	return l.url, nil
}

// Env is the environment the engine gives caller's processes: HTTP_PROXY
// and HTTPS_PROXY (upper and lower case, as tools differ) pointing at its
// proxy listener, NO_PROXY keeping loopback direct, and
// NUBO_SERVICE_<NAME>_URL for every service and route. NAME is upper-cased,
// with '-' and '.' as '_'.
func (m *Mesh) Env(caller string) ([]string, error) {
	proxy, err := m.ProxyURL(caller)
	if err != nil {
		return nil, err
	}
	const noProxy = "localhost,127.0.0.1,::1"
	env := []string{
		"HTTP_PROXY=" + proxy, "http_proxy=" + proxy,
		"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
	}
	for _, name := range m.cur.Load().names {
		u, err := m.ServiceURL(caller, name)
		if err != nil {
			return nil, err
		}
		env = append(env, ServiceURLVar(name)+"="+u)
	}
	sort.Strings(env)
	return env, nil
}

// ServiceURLVar is the variable that holds the URL of a service for code
// that ignores proxies: NUBO_SERVICE_<NAME>_URL.
func ServiceURLVar(name string) string {
	up := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '.':
			return '_'
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, name)
	return "NUBO_SERVICE_" + up + "_URL"
}

// RemoveCaller closes the listeners of a caller that is gone (a service
// removed from the spec).
func (m *Mesh) RemoveCaller(ctx context.Context, caller string) error {
	m.mu.Lock()
	var ls []*listener
	for k, l := range m.listeners {
		if k.caller == caller {
			ls = append(ls, l)
			delete(m.listeners, k)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.shutdown(ctx))
	}
	return errors.Join(errs...)
}

func (m *Mesh) listen(k listenerKey) (*listener, error) {
	if k.caller == "" {
		return nil, errors.New("mesh: a listener needs a caller")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return nil, fmt.Errorf("mesh: listener for %s: mesh stopped", k.caller)
	}
	if l, ok := m.listeners[k]; ok {
		return l, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mesh: listener for %s: %w", k.caller, err)
	}
	log := m.logger().With("caller", k.caller)
	h := &callerHandler{m: m, caller: k.caller, target: k.target}
	srv := newServer(h, log, m.limits)
	// Who connects is looked up once per connection (see peer.go).
	base := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return peerContext(base(ctx, c), c, m.workloads)
	}
	l := &listener{
		key:     k,
		ln:      m.conns.Listener(ln),
		srv:     srv,
		loop:    newLoop(srv, log),
		handler: h,
		url:     "http://" + ln.Addr().String(),
	}
	m.listeners[k] = l
	if m.started {
		m.serve(l)
	}
	return l, nil
}

// serve starts serving l. m.mu must be held.
func (m *Mesh) serve(l *listener) {
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		if l.loop != nil {
			_ = l.loop.Serve(l.ln)
			return
		}
		_ = l.srv.Serve(l.ln)
	}()
}

// shutdown stops l gracefully until ctx is done, then closes what is left.
func (l *listener) shutdown(ctx context.Context) error {
	var err error
	if l.loop != nil {
		// The loop shuts srv down too.
		if err = l.loop.Shutdown(ctx); err != nil {
			l.loop.Close()
		}
	} else if err = l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	if l.done == nil {
		l.ln.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("listener of %s: requests still in flight: %w", l.key.caller, err)
	}
	return err
}
