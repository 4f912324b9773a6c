package tracing

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// LogFinder finds the log records that carry one trace's id, between
// since and until (zero: unbounded), the last limit of them, oldest
// first.
type LogFinder func(traceID string, since, until time.Time, limit int) ([]apitype.LogLine, error)

// logMargin widens a trace's time range for its log records: a record is
// stamped by its own process' clock, around its span's start and end.
const logMargin = time.Minute

// maxTraceLogs bounds one answer.
const maxTraceLogs = 10000

// LogsHandler serves GET /admin/v1/traces/{id}/logs: the log records
// (from every service, nubo's own and OTLP's) that carry the trace's id,
// oldest first, as a TraceLogs document. When the trace is in the store,
// only the records from its start to its end (with a minute's margin
// each side) are searched, so the answer reads an hour file or two; a
// trace gone from the store is searched for in every record kept. limit
// (default 1000, at most 10,000) keeps the last records.
func LogsHandler(t *Tracer, find LogFinder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseTraceID(r.PathValue("id"))
		if err != nil {
			writeTraceLogsError(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := 1000
		if v := r.URL.Query().Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxTraceLogs {
				writeTraceLogsError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 1 to %d", v, maxTraceLogs))
				return
			}
		}
		var since, until time.Time
		if st := t.Store(); st != nil {
			if spans, err := st.Trace(id); err == nil && len(spans) > 0 {
				start, end := spans[0].Start, spans[0].End
				for _, sp := range spans[1:] {
					start, end = min(start, sp.Start), max(end, sp.End)
				}
				since, until = time.Unix(0, start).Add(-logMargin), time.Unix(0, end).Add(logMargin)
			}
		}
		lines, err := find(id.String(), since, until, limit)
		if err != nil {
			writeTraceLogsError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if lines == nil {
			lines = []apitype.LogLine{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(apitype.TraceLogs{TraceID: id.String(), Logs: lines})
	})
}

func writeTraceLogsError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
