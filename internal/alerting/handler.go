package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Handler serves the alerting part of the admin API, under the paths the
// console mounts it at:
//
//	GET    /admin/v1/alerts                 Status: alerts, silences, channels
//	POST   /admin/v1/alerts/{name}/ack      acknowledge; ?by=WHO
//	GET    /admin/v1/silences               the silences
//	POST   /admin/v1/silences               add one: matchers, for (or endsAt), comment, createdBy
//	DELETE /admin/v1/silences/{id}          expire one
//
// POST /admin/v1/silences takes a JSON object with those fields, or the same
// names as form or query parameters. Errors are {"error": "..."}, as in the
// rest of the admin API.
func (n *Notifier) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status(time.Now()))
	})
	mux.HandleFunc("POST /admin/v1/alerts/{name}/ack", n.serveAck)
	mux.HandleFunc("GET /admin/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Silences(time.Now()))
	})
	mux.HandleFunc("POST /admin/v1/silences", n.serveAddSilence)
	mux.HandleFunc("DELETE /admin/v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, err := n.ExpireSilence(r.PathValue("id"), time.Now())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	return mux
}

func (n *Notifier) serveAck(w http.ResponseWriter, r *http.Request) {
	st, err := n.Ack(r.PathValue("name"), r.FormValue("by"), time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// SilenceRequest is the body of POST /admin/v1/silences.
type SilenceRequest struct {
	// Matchers select the alerts: an alert name, or NAME=VALUE matchers.
	Matchers string `json:"matchers"`
	// For is how long the silence lasts: 30m, 1h, 2d.
	For string `json:"for,omitempty"`
	// EndsAt ends the silence at a time instead (RFC 3339).
	EndsAt time.Time `json:"endsAt,omitzero"`
	// Comment says why.
	Comment string `json:"comment,omitempty"`
	// CreatedBy names who asks.
	CreatedBy string `json:"createdBy,omitempty"`
}

// maxRequestBody bounds a silence request.
const maxRequestBody = 64 << 10

func (n *Notifier) serveAddSilence(w http.ResponseWriter, r *http.Request) {
	var req SilenceRequest
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if err := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody)).Decode(&req); err != nil {
			writeError(w, badRequest("silence: body is not a JSON silence request: %v", err))
			return
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		req = SilenceRequest{Matchers: r.FormValue("matchers"), For: r.FormValue("for"), Comment: r.FormValue("comment"), CreatedBy: r.FormValue("createdBy")}
		if v := r.FormValue("endsAt"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, badRequest("silence: endsAt %q: want an RFC 3339 time", v))
				return
			}
			req.EndsAt = t
		}
	}
	now := time.Now()
	var d time.Duration
	switch {
	case req.For != "" && !req.EndsAt.IsZero():
		writeError(w, badRequest("silence: give for or endsAt, not both"))
		return
	case req.For != "":
		v, err := spec.ParseDuration(req.For)
		if err != nil {
			writeError(w, badRequest("silence: for: %v", err))
			return
		}
		d = v
	case !req.EndsAt.IsZero():
		d = req.EndsAt.Sub(now)
		if d <= 0 {
			writeError(w, badRequest("silence: endsAt %s is in the past", req.EndsAt.Format(time.RFC3339)))
			return
		}
	default:
		writeError(w, badRequest("silence: give for (e.g. 1h) or endsAt"))
		return
	}
	s, err := n.AddSilence(req.Matchers, d, req.CreatedBy, req.Comment, now)
	if err != nil {
		writeError(w, badRequest("silence: %v", err))
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

// errBadRequest marks errors in what the client sent (400).
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
		msg = strings.TrimSuffix(msg, ": "+ErrNotFound.Error())
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
		msg = strings.TrimPrefix(msg, errBadRequest.Error()+": ")
	case errors.Is(err, ErrNotFiring):
		code = http.StatusConflict
		msg = strings.TrimSuffix(msg, ": "+ErrNotFiring.Error())
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
