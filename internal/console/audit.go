package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/nubo-dev/nubo/internal/audit"
)

// Auditor records the changes made through the console.
type Auditor interface {
	Append(r audit.Record, err error) (audit.Record, error)
}

// audited records every state-changing request that names its actor
// (audit.ActorHeader: the CLI, the console, MCP) once it is answered. The
// services' own calls to the platform API name none: they are the system's
// traffic, not changes made to it.
func (s *Server) audited(next http.Handler) http.Handler {
	if s.cfg.Audit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor := r.Header.Get(audit.ActorHeader)
		if actor == "" || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		action, target := auditAction(r.Method, r.URL.Path)
		if action == "" {
			return // the handler records it
		}
		var err error
		if rec.code >= 400 {
			err = fmt.Errorf("HTTP %d", rec.code)
		}
		if len(actor) > 100 {
			actor = actor[:100]
		}
		if _, aerr := s.cfg.Audit.Append(audit.Record{Actor: actor, Action: action, Target: target}, err); aerr != nil {
			s.log.Error("audit: record not written", "action", action, "err", aerr)
		}
	})
}

// auditAction names what a request does.
func auditAction(method, path string) (action, target string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	at := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	switch {
	case at(0) == "admin" && at(2) == "backup":
		// The backup handler records it: a streamed answer's status
		// says nothing of how the archive ended.
		return "", ""
	case at(0) == "admin" && at(2) == "services" && at(4) == "restart":
		return "restart", at(3)
	case at(0) == "admin" && at(2) == "services" && at(4) == "scale":
		return "scale", at(3)
	case at(0) == "admin" && at(2) == "shutdown":
		return "stop", ""
	case at(0) == "admin" && at(2) == "silences" && method == http.MethodDelete:
		return "silence-expire", at(3)
	case at(0) == "admin" && at(2) == "silences":
		return "silence", ""
	case at(0) == "admin" && at(2) == "alerts" && at(4) == "ack":
		return "ack", at(3)
	case at(0) == "v1" && (at(1) == "queues" || at(1) == "topics") && len(parts) == 3:
		return "publish", strings.TrimSuffix(at(1), "s") + ":" + at(2)
	case at(0) == "v1" && at(1) == "events" && len(parts) == 2:
		return "publish", "bus"
	case at(0) == "v1" && at(1) == "functions" && at(3) == "invoke":
		return "invoke", at(2)
	case at(0) == "v1" && at(1) == "deadletters" && at(3) == "redrive":
		return "redrive", at(2)
	}
	return "api", method + " " + path
}

// codeRecorder keeps the status of an answer.
type codeRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (c *codeRecorder) WriteHeader(code int) {
	if !c.wrote {
		c.code, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }
