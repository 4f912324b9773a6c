package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// maxAPIBody bounds an append's body.
const maxAPIBody = 8 << 20

// sseKeepAlive is how often a quiet subscription sends a comment, so that
// proxies and clients see the connection live.
const sseKeepAlive = 15 * time.Second

// Handler serves the event store's part of the platform API under
// /v1/eventstore/ (docs/eventstore.md).
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/eventstore/streams/{stream}", s.apiAppend)
	mux.HandleFunc("GET /v1/eventstore/streams", s.apiStreams)
	mux.HandleFunc("GET /v1/eventstore/streams/{stream}", s.apiRead)
	mux.HandleFunc("GET /v1/eventstore/streams/{stream}/snapshot", s.apiSnapshot)
	mux.HandleFunc("GET /v1/eventstore/all", s.apiReadAll)
	mux.HandleFunc("GET /v1/eventstore/subscribe", s.apiSubscribe)
	mux.HandleFunc("GET /v1/eventstore/projections", s.apiProjections)
	mux.HandleFunc("POST /v1/eventstore/projections/{name}/rebuild", s.apiRebuild)
	mux.HandleFunc("POST /v1/eventstore/replay", s.apiReplay)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		if !s.running.Load() {
			writeStoreError(w, errNotRunning)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such route of the event store API (see docs/eventstore.md)", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Store) apiAppend(w http.ResponseWriter, r *http.Request) {
	var req apitype.AppendRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "append: body: "+err.Error())
		return
	}
	if q := r.URL.Query().Get("expectedVersion"); q != "" && req.ExpectedVersion == "" {
		req.ExpectedVersion = apitype.ExpectedVersion(q)
	}
	ctx, span := s.appendSpan(r.Context(), r.Header.Get("Traceparent"), r.PathValue("stream"), len(req.Events))
	res, err := s.Append(ctx, r.PathValue("stream"), req.ExpectedVersion, req.Events)
	s.endAppendSpan(span, res, err)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	code := http.StatusCreated
	if res.Duplicate {
		code = http.StatusOK
	}
	writeJSON(w, code, res)
}

func (s *Store) apiRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	backward := q.Get("backward") == "true" || q.Get("direction") == "backward"
	from := int64(-1)
	if !backward {
		from = 0
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("read: from %q: want a version (0, 1, ...)", v))
			return
		}
		from = n
	}
	limit, ok := limitParam(w, q.Get("limit"))
	if !ok {
		return
	}
	evs, next, err := s.ReadStream(r.Context(), r.PathValue("stream"), from, backward, limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	res := apitype.ReadResponse{Events: nonNil(evs)}
	if next >= 0 {
		res.Next = &next
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Store) apiReadAll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, ok := positionParam(w, q.Get("from"))
	if !ok {
		return
	}
	limit, ok := limitParam(w, q.Get("limit"))
	if !ok {
		return
	}
	evs, next, err := s.ReadAll(r.Context(), from, q.Get("streams"), splitList(q.Get("types")), limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	res := apitype.ReadResponse{Events: nonNil(evs)}
	if next > 0 {
		n := int64(next)
		res.Next = &n
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Store) apiStreams(w http.ResponseWriter, r *http.Request) {
	res, err := s.Streams(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// apiSubscribe streams events as server-sent events: each is one
// `id: POSITION` / `event: TYPE` / `data: JSON` record, so a client that
// reconnects with Last-Event-ID resumes after the last event it saw.
func (s *Store) apiSubscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, ok := positionParam(w, q.Get("from"))
	if !ok {
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("subscribe: Last-Event-ID %q: want a position", last))
			return
		}
		from = n + 1
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "subscribe: the server cannot stream")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // the store stops: end the stream
	defer stop()
	sub, err := s.Subscribe(ctx, from, q.Get("streams"), splitList(q.Get("types")))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	for {
		wait, cancelWait := context.WithTimeout(ctx, sseKeepAlive)
		ev, err := sub.Next(wait)
		cancelWait()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case err != nil:
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", jsonString(err.Error()))
			flusher.Flush()
			return
		default:
			data, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Position, sseField(ev.Type), data); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

func (s *Store) apiProjections(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apitype.ProjectionsResponse{Projections: nonNilP(s.Projections(r.Context()))})
}

func (s *Store) apiRebuild(w http.ResponseWriter, r *http.Request) {
	if err := s.Rebuild(r.Context(), r.PathValue("name")); err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"projection": r.PathValue("name"), "state": "rebuilding"})
}

func (s *Store) apiSnapshot(w http.ResponseWriter, r *http.Request) {
	snap, err := s.LatestSnapshot(r.Context(), r.PathValue("stream"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

// ErrNotFound marks what does not exist (HTTP 404).
var ErrNotFound = errors.New("not found")

func writeStoreError(w http.ResponseWriter, err error) {
	var wv *WrongVersionError
	var ic *IDConflictError
	switch {
	case errors.As(err, &wv):
		writeJSON(w, http.StatusConflict, apitype.WrongVersion{Error: err.Error(), CurrentVersion: wv.Current})
	case errors.As(err, &ic):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, errNotRunning):
		// Stopping, as for a reload of the eventStore section: the next
		// store answers in a moment.
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func limitParam(w http.ResponseWriter, v string) (int, bool) {
	if v == "" {
		return 100, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxRead {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1 to %d", v, maxRead))
		return 0, false
	}
	return n, true
}

func positionParam(w http.ResponseWriter, v string) (uint64, bool) {
	if v == "" {
		return 1, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from %q: want a global position (1, 2, ...)", v))
		return 0, false
	}
	return n, true
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// sseField keeps a value on one SSE line.
func sseField(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
}

func jsonString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func nonNil(evs []apitype.RecordedEvent) []apitype.RecordedEvent {
	if evs == nil {
		return []apitype.RecordedEvent{}
	}
	return evs
}

func nonNilP(ps []apitype.Projection) []apitype.Projection {
	if ps == nil {
		return []apitype.Projection{}
	}
	return ps
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
