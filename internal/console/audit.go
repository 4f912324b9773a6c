package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/audit"
)

// Auditor records the changes made through the console, and reads the
// trail back for GET /admin/v1/audit.
type Auditor interface {
	Append(r audit.Record, err error) (audit.Record, error)
	Read(q audit.Query) ([]audit.Record, error)
	Verify() (int, error)
}

// AuditTrail is GET /admin/v1/audit: the records asked for and what
// verifying the whole chain found.
type AuditTrail struct {
	// Records are the records selected, oldest first.
	Records []audit.Record `json:"records"`
	// Verified is how many records of the whole trail hold, from its
	// start (or its retention anchor).
	Verified int `json:"verified"`
	// Break says where the chain breaks; empty when it holds.
	Break string `json:"break,omitempty"`
}

// maxAuditRecords bounds one answer: the trail itself is bounded only by
// retention.
const maxAuditRecords = 1000

// auditTrail serves GET /admin/v1/audit?since=1h&action=restart&limit=N:
// the last N records (at most maxAuditRecords), as nubo audit prints them,
// and the verification of the chain, as nubo audit verify does.
func (s *Server) auditTrail(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Audit == nil {
		writeError(w, http.StatusServiceUnavailable, "the audit trail is not kept by this engine")
		return
	}
	q := audit.Query{Action: r.URL.Query().Get("action"), Limit: maxAuditRecords}
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := apitype.ParseSince(v, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: "+err.Error())
			return
		}
		q.Since = t
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a positive number", v))
			return
		}
		q.Limit = min(n, maxAuditRecords)
	}
	recs, err := s.cfg.Audit.Read(q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "audit: "+err.Error())
		return
	}
	out := AuditTrail{Records: recs}
	if out.Records == nil {
		out.Records = []audit.Record{}
	}
	out.Verified, err = s.cfg.Audit.Verify()
	if err != nil {
		out.Break = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
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
