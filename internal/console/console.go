// Package console is the engine's HTTP server on local.console (127.0.0.1:4500
// by default). It serves the web console at / (web.go, pages in web/), the
// admin API that `nubo status`, `nubo logs`, `nubo restart` and `nubo down`
// talk to, the engine's /metrics and /healthz, and the routes other parts
// of the engine add (the platform API, the Prometheus-compatible API), each
// registered on the one ServeMux (see routes).
//
// The server is net/http with Go 1.22 method patterns: nothing here needs a
// router library. docs/admin-api.md documents every route for users.
//
// # Safety
//
// The admin API can stop the engine and read every process's output, and it
// listens on loopback, which every web page the user opens can reach. So
// state-changing requests from other origins are refused
// (http.CrossOriginProtection), and on a loopback listener a Host header
// that is neither an IP address nor localhost is refused too, which defeats
// DNS rebinding. State-changing requests carry the run's token as well
// (token.go). Request headers and bodies are bounded.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Limits of one request.
const (
	maxHeaderBytes = 64 << 10
	maxBodyBytes   = 1 << 20
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address, HOST:PORT; empty means
	// spec.DefaultConsole. Port 0 picks a free port (tests).
	Addr string
	// Backend is the running engine; required.
	Backend Backend
	// Logs is the store of process output behind /admin/v1/logs; nil
	// answers that route with 503.
	Logs *logs.Store
	// History answers the log queries that search (level, grep, where,
	// trace) from the records on disk; nil searches the memory ring only.
	History interface {
		Find(logs.Search) ([]logs.Line, error)
	}
	// Audit records the changes made through the console (requests that
	// name their actor); nil records nothing.
	Audit Auditor
	// Metrics serves GET /metrics; nil answers it with 404.
	Metrics http.Handler
	// Logger receives the server's own diagnostics; nil discards them.
	Logger *slog.Logger
	// App returns the spec the engine runs now, for the service map, the
	// dashboards and the API explorer; nil serves none.
	App func() *spec.App
	// Token is this run's token, required on state-changing requests
	// (see token.go); empty requires none (tests of other parts).
	Token string
	// Routes are more handlers on the same server, added by other parts of
	// the engine: the platform API under /v1/, the Prometheus-compatible
	// API under /api/v1/. Patterns are net/http ServeMux patterns.
	Routes []Route
	// Limits bound the console's clients (connections, header, body and
	// idle timeouts); unset fields take netguard's defaults.
	Limits netguard.Limits
}

// Route is a handler another part of the engine serves on the console.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Server is the console's HTTP server. Start, Stop and Addr are safe for
// concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	// loopback is set when the address is a loopback one, where Host
	// headers are checked.
	loopback bool
	// gateway sends the API explorer's calls: the gateway is on this
	// machine, so no proxy from the environment applies.
	gateway *http.Client

	// stopping is closed when Stop begins, so that long-lived responses
	// (log followers) end and the graceful shutdown does not wait on them.
	stopping chan struct{}

	mu      sync.Mutex // guards the fields below
	srv     *http.Server
	ln      net.Listener
	started bool
	stopped bool
	done    chan struct{} // closed when Stop has finished
	served  chan struct{} // closed when Serve has returned
}

// New validates cfg and returns a Server that is not listening yet.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = spec.DefaultConsole
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("console: address %q: %w (local.console takes HOST:PORT)", cfg.Addr, err)
	}
	if cfg.Backend == nil {
		return nil, errors.New("console: no backend")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, loopback: isLoopback(host), stopping: make(chan struct{}), done: make(chan struct{}),
		gateway: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "console")
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// routes builds the whole server's handler. Each part of the console
// registers its own routes here: the admin API under /admin/v1/, and later
// the Prometheus-compatible API under /api/v1/ and the web console at /.
func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	s.adminRoutes(mux)
	if err := s.webRoutes(mux); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /console/v1/stream", s.stream)
	s.specRoutes(mux)
	mux.HandleFunc("POST /console/v1/call", s.call)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	for _, r := range s.cfg.Routes {
		if err := handle(mux, r); err != nil {
			return nil, err
		}
	}

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: the admin API takes state-changing requests from its own origin and from non-browser clients only")
	}))
	return csrf.Handler(s.guard(s.tokenRequired(s.audited(jsonNotFound(mux))))), nil
}

// handle registers a route of another part of the engine. ServeMux panics on
// a pattern that conflicts with one already there (a function's http trigger
// on /metrics, say): that becomes an error naming the pattern.
func handle(mux *http.ServeMux, r Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("console: route %q: %v", r.Pattern, p)
		}
	}()
	mux.Handle(r.Pattern, r.Handler)
	return nil
}

// guard bounds request bodies and, on a loopback listener, refuses Host
// headers that could come from a rebound DNS name.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.loopback && !localHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q refused: on a loopback address the console answers to an IP address or localhost only", r.Host))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether a listen host is a loopback one only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// localHost reports whether a Host header names this machine without DNS:
// an IP literal or localhost.
func localHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return host == "localhost" || net.ParseIP(host) != nil
}

// jsonNotFound answers the requests no pattern matches (404, and 405 with
// its Allow header) with a JSON error instead of ServeMux's plain text.
func jsonNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // ServeHTTP, not h: it sets the path values
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, rec.code, fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		case http.StatusNotFound:
			writeError(w, rec.code, fmt.Sprintf("%s %s: no such route (see docs/admin-api.md)", r.Method, r.URL.Path))
		default: // a redirect, such as a cleaned path
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.code)
		}
	})
}

// statusRecorder keeps the status and headers ServeMux's own 404, 405 and
// redirect handlers write, dropping their bodies.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(b), nil
}
func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// Start listens on the configured address and serves in the background. It
// returns once the listener is open, so clients may connect at once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return errors.New("console: start: server stopped")
	case s.started:
		return errors.New("console: start: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("console: listen on %s: the address is in use (another nubo up, or another program); stop it, or set local.console in nubo.yaml to a free address", s.cfg.Addr)
		}
		return fmt.Errorf("console: listen on %s: %w (set local.console in nubo.yaml to another address)", s.cfg.Addr, err)
	}
	s.srv = &http.Server{
		Handler:        s.handler,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// No ReadTimeout or WriteTimeout: log followers stream for as long
		// as the client stays. A body pausing longer than the body
		// timeout is cut off instead, and connections are capped.
	}
	limits := s.cfg.Limits.WithDefaults(netguard.Console)
	ln = netguard.NewLimiter(limits.MaxConns).Listener(ln)
	netguard.Server(s.srv, limits)
	s.ln = ln
	s.started = true
	s.served = make(chan struct{})
	srv, served := s.srv, s.served
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("console stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.log.Debug("console listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on (with the real port when
// the configured one was 0), or the configured address before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// Stop ends log followers, then shuts the server down gracefully until ctx is
// done, and then closes the connections left. It is nil-safe and
// idempotent: later calls wait for the first to finish and return nil.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.stopped = true
	close(s.stopping)
	srv, served := s.srv, s.served
	s.mu.Unlock()
	defer close(s.done)
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("console: graceful stop: %w (closed the remaining connections)", err)
	}
	<-served
	return err
}

// errorBody is every error answer: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "this engine serves no metrics")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}
