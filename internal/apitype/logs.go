package apitype

import (
	"time"
)

// LogLine is one line of a process's output.
type LogLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Replica int       `json:"replica"`
	Stream  string    `json:"stream"` // stdout, stderr, or nubo for engine events
	Text    string    `json:"text"`
	Seq     uint64    `json:"seq"` // increasing over the whole store, for followers
	// Level is the record's level (error, warn, info, debug), from its JSON
	// or logfmt fields or a parser's level group; empty when unknown.
	Level string `json:"level,omitempty"`
	// Fields are what a JSON line, a logfmt line or a parser's named
	// groups held.
	Fields map[string]any `json:"fields,omitempty"`
	// TraceID links the record to its trace (a trace_id or traceId field).
	TraceID string `json:"traceId,omitempty"`
}

// TraceLogs is GET /admin/v1/traces/{id}/logs: the log records that
// carry one trace's id, oldest first.
type TraceLogs struct {
	TraceID string    `json:"traceID"`
	Logs    []LogLine `json:"logs"`
}
