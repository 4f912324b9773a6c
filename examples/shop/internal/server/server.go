// Package server runs the shop's HTTP programs the way nubo expects a workload
// to behave: it listens on $PORT, answers liveness and readiness probes, exposes
// Prometheus metrics, writes an access log and drains on SIGTERM.
//
// It stands in for the parts of nubo's Go SDK that do not exist yet, with the
// standard library only, so that every program of the example builds with
// nothing but a Go toolchain.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Paths of the probes; nubo.yaml names the same ones in each service's health.
const (
	LivenessPath  = "/healthz"
	ReadinessPath = "/readyz"
	MetricsPath   = "/metrics"
)

// drainTimeout bounds the wait for requests in flight after SIGTERM; it stays
// well under the stopGracePeriod the spec gives, so nubo never has to SIGKILL.
const drainTimeout = 8 * time.Second

// Run serves h on $PORT (defaultPort when unset, as in Kubernetes where the
// spec's port is fixed) until SIGTERM or SIGINT, then stops taking new
// requests, fails readiness and waits for those in flight. Once it listens
// it logs one "listening" record with the address and attrs (key-value
// pairs, as slog takes them): a program's settings, so that a start is one
// line of nubo up's output.
func Run(log *slog.Logger, defaultPort int, h http.Handler, attrs ...any) error {
	port := os.Getenv("PORT")
	if port == "" {
		port = strconv.Itoa(defaultPort)
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return fmt.Errorf("listen on port %s: %w", port, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var draining atomic.Bool
	m := newMetrics()
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET "+LivenessPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+ReadinessPath, func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET "+MetricsPath, m)

	srv := &http.Server{
		Handler:           observe(m, mux),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", append([]any{"addr", ln.Addr().String()}, attrs...)...)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	draining.Store(true)
	log.Info("draining", "timeout", drainTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// observe counts and times every request for /metrics and writes one
// plain-text access line per request to stdout:
//
//	REMOTE METHOD PATH STATUS SECONDS
//
// Application logs are JSON on stderr; these lines are not, so nubo parses
// them with the "access" parser of observability.yaml.
//
// Probes and scrapes get no line: nubo probes every replica every few
// seconds and scrapes it every 15, and a line for each buried the requests
// users make (about half of what nubo up printed). A probe that fails shows
// in nubo's own output and in nubo status; a scrape that fails, in the up
// metric. They are still counted in the metrics.
func observe(m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		m.observe(sw.status, r.Method, d)
		if quiet(r) {
			return
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		fmt.Fprintf(os.Stdout, "%s %s %s %d %.6f\n", host, r.Method, r.URL.Path, sw.status, d.Seconds())
	})
}

// quiet reports whether r is a probe or a scrape, which observe does not
// log: a GET of the liveness, readiness or metrics path.
func quiet(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	switch r.URL.Path {
	case LivenessPath, ReadinessPath, MetricsPath:
		return true
	}
	return false
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// NewLogger returns the JSON logger the programs write to stderr, at the level
// $LOG_LEVEL names (debug, info, warn, error; default info). nubo keeps JSON
// lines as structured records and passes them through prefixed with the
// program's name and replica.
func NewLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Env returns the environment variable name, or fallback when it is unset or
// empty.
func Env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
