package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/logs"
)

// adminRoutes registers the admin API, version 1. A change that breaks a
// client goes into /admin/v2/, never here.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/v1/status", s.status)
	mux.HandleFunc("GET /admin/v1/logs", s.logs)
	mux.HandleFunc("GET /admin/v1/audit", s.auditTrail)
	mux.HandleFunc("POST /admin/v1/services/{name}/restart", s.restart)
	mux.HandleFunc("POST /admin/v1/services/{name}/scale", s.scale)
	mux.HandleFunc("POST /admin/v1/shutdown", s.shutdown)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.cfg.Backend.Status()
	// [] rather than null, so that clients can range without a check.
	if st.Services == nil {
		st.Services = []ServiceStatus{}
	}
	if st.Skipped == nil {
		st.Skipped = []Skipped{}
	}
	writeJSON(w, http.StatusOK, st)
}

// Accepted is the answer to a POST that the engine carries out in the
// background (202).
type Accepted struct {
	// Status is "restarting" or "stopping".
	Status string `json:"status"`
	// Service names the service, for a restart.
	Service string `json:"service,omitempty"`
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.cfg.Backend.RestartService(r.Context(), name)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q%s", name, s.knownServices()))
	case err != nil:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("restart service %q: %v", name, err))
	default:
		s.log.Info("restart requested", "service", name)
		writeJSON(w, http.StatusAccepted, Accepted{Status: "restarting", Service: name})
	}
}

// Scaler is a Backend that scales services by hand (the engine is one).
type Scaler interface {
	// ScaleService sets a service's replica count until the spec changes
	// it; ErrNotFound for an unknown service, ErrConflict for one that
	// autoscales.
	ScaleService(ctx context.Context, name string, replicas int) error
}

// ErrConflict is wrapped by a Backend's error when the request cannot apply
// to the thing as it is; the API answers it with 409.
var ErrConflict = errors.New("conflict")

// ScaleRequest is the body of POST /admin/v1/services/{name}/scale.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// maxReplicas bounds a scale by hand: a typo must not start a thousand
// processes.
const maxReplicas = 100

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	sc, ok := s.cfg.Backend.(Scaler)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this engine does not scale services by hand")
		return
	}
	var req ScaleRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`body: want {"replicas": N}: %v`, err))
		return
	}
	if req.Replicas < 0 || req.Replicas > maxReplicas {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("replicas %d: want 0 to %d", req.Replicas, maxReplicas))
		return
	}
	err := sc.ScaleService(r.Context(), name, req.Replicas)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q%s", name, s.knownServices()))
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("scale service %q: %v", name, err))
	default:
		s.log.Info("scale requested", "service", name, "replicas", req.Replicas)
		writeJSON(w, http.StatusAccepted, Accepted{Status: "scaling", Service: name})
	}
}

// knownServices is ` (services: a, b)`, or ` (the spec has no services)`,
// for a 404.
func (s *Server) knownServices() string {
	names := s.serviceNames()
	if len(names) == 0 {
		return " (the spec has no services)"
	}
	return fmt.Sprintf(" (services: %s)", strings.Join(names, ", "))
}

func (s *Server) serviceNames() []string {
	var names []string
	for _, svc := range s.cfg.Backend.Status().Services {
		names = append(names, svc.Name)
	}
	slices.Sort(names)
	return names
}

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	s.log.Info("shutdown requested", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, Accepted{Status: "stopping"})
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // the answer goes out before the engine begins to stop
	}
	s.cfg.Backend.Shutdown()
}

// logsQuery is a parsed GET /admin/v1/logs.
type logsQuery struct {
	logs.Query
	// none is tail=0: no line kept so far, only new ones when following.
	none   bool
	follow bool
	// search holds level, grep, where and trace; filtered says one is set,
	// and then a query that does not follow is answered from the records
	// on disk, which reach further back than the memory ring.
	search   logs.Search
	filtered bool
}

// parseLogsQuery reads service, since, tail and follow, naming the
// parameter in its error.
func parseLogsQuery(r *http.Request, now time.Time) (logsQuery, error) {
	v := r.URL.Query()
	q := logsQuery{Query: logs.Query{Service: v.Get("service")}}
	if since := v.Get("since"); since != "" {
		t, err := apitype.ParseSince(since, now)
		if err != nil {
			return q, err
		}
		q.Since = t
	}
	if tail := v.Get("tail"); tail != "" && tail != "all" {
		n, err := strconv.Atoi(tail)
		if err != nil || n < 0 {
			return q, fmt.Errorf("tail %q: want a number of lines, 0 or more, or all", tail)
		}
		q.Tail, q.none = n, n == 0
	}
	if follow := v.Get("follow"); follow != "" {
		b, err := strconv.ParseBool(follow)
		if err != nil {
			return q, fmt.Errorf("follow %q: want true or false", follow)
		}
		q.follow = b
	}
	q.search = logs.Search{Service: q.Service, Since: q.Since, Level: v.Get("level"), Grep: v.Get("grep"), TraceID: v.Get("trace"), Limit: q.Tail}
	if l := q.search.Level; l != "" && !logs.KnownLevel(l) {
		return q, fmt.Errorf("level %q: want debug, info, warn or error", l)
	}
	for _, w := range v["where"] {
		k, val, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return q, fmt.Errorf("where %q: want FIELD=VALUE", w)
		}
		if q.search.Where == nil {
			q.search.Where = map[string]string{}
		}
		q.search.Where[k] = val
	}
	q.filtered = q.search.Level != "" || q.search.Grep != "" || q.search.TraceID != "" || len(q.search.Where) > 0
	return q, nil
}

// logs answers NDJSON, one logs.Line per line, and with follow=true keeps
// streaming new lines until the client goes away or the server stops.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Logs == nil {
		writeError(w, http.StatusServiceUnavailable, "this engine keeps no logs")
		return
	}
	q, err := parseLogsQuery(r, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Service != "" && !s.knownLogSource(q.Service) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q has written output%s", q.Service, s.knownServices()))
		return
	}
	var history []logs.Line
	if q.filtered && !q.follow && s.cfg.History != nil {
		if history, err = s.cfg.History.Find(q.search); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	if q.filtered && !q.follow && s.cfg.History != nil {
		for _, l := range history {
			if err := enc.Encode(l); err != nil {
				return
			}
		}
		return
	}
	for {
		// Wait before Get: a line added between the two wakes the next
		// round instead of being missed.
		wake := s.cfg.Logs.Wait()
		var lines []logs.Line
		if q.none {
			// Only what comes next: start after the newest line of all.
			if last := s.cfg.Logs.Get(logs.Query{Tail: 1}); len(last) > 0 {
				q.AfterSeq = last[0].Seq
			}
			q.none = false
		} else {
			lines = s.cfg.Logs.Get(q.Query)
		}
		for _, l := range lines {
			if q.filtered && !q.search.Match(l) {
				continue
			}
			if err := enc.Encode(l); err != nil {
				return // the client went away
			}
		}
		if !q.follow {
			return
		}
		// Flush even with no lines: the headers tell the client that the
		// follow has begun.
		if err := rc.Flush(); err != nil {
			return
		}
		if n := len(lines); n > 0 {
			q.AfterSeq = lines[n-1].Seq
		}
		// After the first round, every new line is wanted.
		q.Tail = 0
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		}
	}
}

// knownLogSource reports whether name is a service of the spec or has
// written output (functions and databases log under their own names).
func (s *Server) knownLogSource(name string) bool {
	if slices.Contains(s.serviceNames(), name) {
		return true
	}
	return len(s.cfg.Logs.Get(logs.Query{Service: name, Tail: 1})) > 0
}
