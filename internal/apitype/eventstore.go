package apitype

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ExpectedVersion is an append's condition on its stream: "any", "no_stream",
// "exists", or a version number. In JSON it is a string or a number.
type ExpectedVersion string

// The expected versions that are not numbers.
const (
	ExpectAny      ExpectedVersion = "any"
	ExpectNoStream ExpectedVersion = "no_stream"
	ExpectExists   ExpectedVersion = "exists"
)

// UnmarshalJSON takes a string or a number.
func (v *ExpectedVersion) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*v = ExpectedVersion(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expectedVersion: want any, no_stream, exists or a number, not %s", b)
	}
	*v = ExpectedVersion(s)
	return nil
}

// Version returns the number of a numeric expected version.
func (v ExpectedVersion) Version() (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && n >= 0
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; appending the same ID to the same stream
	// again stores it once. Empty: the store makes one.
	ID string `json:"id,omitempty"`
	// Type is the event's type (UserCreated).
	Type string `json:"type"`
	// Data is the event's JSON body.
	Data json.RawMessage `json:"data,omitempty"`
	// Metadata is JSON about the event (causation, user), stored with it.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// AppendRequest is the body of POST /v1/eventstore/streams/{stream}.
type AppendRequest struct {
	// ExpectedVersion is the condition; empty means any.
	ExpectedVersion ExpectedVersion `json:"expectedVersion,omitempty"`
	// Events are appended all or none, in order.
	Events []EventData `json:"events"`
}

// AppendResponse is what an append stored.
type AppendResponse struct {
	Stream string `json:"stream"`
	// FirstVersion and LastVersion are the stream versions of the first
	// and last event appended.
	FirstVersion int64 `json:"firstVersion"`
	LastVersion  int64 `json:"lastVersion"`
	// FirstPosition and LastPosition are their global positions.
	FirstPosition uint64 `json:"firstPosition"`
	LastPosition  uint64 `json:"lastPosition"`
	// Duplicate is true when every event was stored before (a retried
	// append): nothing new was stored.
	Duplicate bool `json:"duplicate,omitempty"`
}

// WrongVersion is the 409 answer of an append whose expected version does
// not hold.
type WrongVersion struct {
	Error string `json:"error"`
	// CurrentVersion is the stream's version; -1 when it has no event.
	CurrentVersion int64 `json:"currentVersion"`
}

// RecordedEvent is a stored event.
type RecordedEvent struct {
	Stream string `json:"stream"`
	ID     string `json:"id"`
	Type   string `json:"type"`
	// Version is the event's place in its stream, from 0.
	Version int64 `json:"version"`
	// Position is its place among all streams' events, from 1.
	Position uint64          `json:"position"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Traceparent is the context of the span that appended the event,
	// which its deliveries to projections continue; not on the wire.
	Traceparent string `json:"-"`
}

// ReadResponse is a page of events.
type ReadResponse struct {
	Events []RecordedEvent `json:"events"`
	// Next is where the next page starts: a version for a stream read, a
	// position for a read of all streams; absent at the end.
	Next *int64 `json:"next,omitempty"`
}

// StreamInfo is a stream's head.
type StreamInfo struct {
	Name string `json:"name"`
	// Version is the last event's version.
	Version int64 `json:"version"`
	// Position is the last event's global position.
	Position uint64    `json:"position"`
	Updated  time.Time `json:"updated"`
}

// StreamsResponse lists streams.
type StreamsResponse struct {
	Streams []StreamInfo `json:"streams"`
	// Events is the number of events stored, all streams together.
	Events uint64 `json:"events"`
	// LastPosition is the newest event's position.
	LastPosition uint64 `json:"lastPosition"`
}

// Projection is a projection's state.
type Projection struct {
	Name    string `json:"name"`
	Handler string `json:"handler"`
	// Position is the last position the handler has taken.
	Position uint64 `json:"position"`
	// Checkpoint is the last position stored in the checkpoint bucket.
	Checkpoint uint64 `json:"checkpoint"`
	// Lag is how many positions the projection is behind the store.
	Lag uint64 `json:"lag"`
	// State is running, failing, stopped or rebuilding.
	State     string `json:"state"`
	LastError string `json:"lastError,omitempty"`
	// Failures counts the handler's failures in a row.
	Failures int `json:"failures,omitempty"`
}

// ProjectionsResponse lists projections.
type ProjectionsResponse struct {
	Projections []Projection `json:"projections"`
}

// Snapshot is an aggregate's state at a version of its stream.
type Snapshot struct {
	Stream  string          `json:"stream"`
	Version int64           `json:"version"`
	Time    time.Time       `json:"time"`
	State   json.RawMessage `json:"state"`
}

// EventStoreStatus is the event store's line in nubo status.
type EventStoreStatus struct {
	Streams      int          `json:"streams"`
	Events       uint64       `json:"events"`
	LastPosition uint64       `json:"lastPosition"`
	Projections  []Projection `json:"projections,omitempty"`
}

// ReplayRequest is the body of POST /v1/eventstore/replay: deliver the
// stored events of a time window to a target, in batches. It moves no
// projection's checkpoint.
type ReplayRequest struct {
	// From and To bound the events' append times, To excluded; a zero
	// From is the first event, a zero To the last.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Streams is a stream pattern; Types event types (none: all).
	Streams string   `json:"streams,omitempty"`
	Types   []string `json:"types,omitempty"`
	// Batch is the events per delivery (default 100, at most 1000).
	Batch int `json:"batch,omitempty"`
	// Target is function:NAME or service:NAME/path.
	Target string `json:"target"`
}

// ReplayProgress is one line of the replay's answer (NDJSON): progress
// while it runs, then the summary with Done set.
type ReplayProgress struct {
	// Events and Batches delivered so far; Failed batches that failed
	// every attempt (their events are not delivered).
	Events  int    `json:"events"`
	Batches int    `json:"batches"`
	Failed  int    `json:"failed"`
	Total   uint64 `json:"total"` // the stored events of the window, an upper bound
	// Position is the last position read.
	Position  uint64 `json:"position"`
	LastError string `json:"lastError,omitempty"`
	Done      bool   `json:"done,omitempty"`
}
