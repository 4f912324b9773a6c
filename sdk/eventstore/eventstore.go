// Package eventstore is the Go client of nubo's event store, through the
// platform API ($NUBO_API, docs/eventstore.md): append events to streams
// with optimistic concurrency, read streams and all events, follow them as
// they are appended, and load an aggregate from its latest snapshot.
//
//	es, err := eventstore.New()
//	...
//	e, err := eventstore.NewEvent("UserCreated", User{Name: "Ann"})
//	res, err := es.Append(ctx, "user-42", eventstore.NoStream, e)
//	var wv *eventstore.WrongVersionError
//	if errors.As(err, &wv) { /* someone else wrote user-42: reload, decide again */ }
//
// An aggregate is loaded with Load (its snapshot, if any, then the events
// after it) and saved by appending the new events with the version it was
// loaded at as the expected version: see the example.
package eventstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// The platform API's types, under the names of this package.
type (
	// Event is an event to append.
	Event = apitype.EventData
	// RecordedEvent is a stored event, with its version and position.
	RecordedEvent = apitype.RecordedEvent
	// AppendResult says where an append stored its events.
	AppendResult = apitype.AppendResponse
	// Snapshot is an aggregate's state at a version of its stream.
	Snapshot = apitype.Snapshot
	// ExpectedVersion is an append's condition: Any, NoStream, Exists or
	// Version(n).
	ExpectedVersion = apitype.ExpectedVersion
)

// Expected versions.
const (
	// Any appends whatever the stream's version.
	Any = apitype.ExpectAny
	// NoStream appends only to a stream with no event.
	NoStream = apitype.ExpectNoStream
	// Exists appends only to a stream with an event.
	Exists = apitype.ExpectExists
)

// Version expects the stream to be at version n (its last event's).
func Version(n int64) ExpectedVersion { return ExpectedVersion(strconv.FormatInt(n, 10)) }

// WrongVersionError is an append refused because the stream was not at
// the expected version; nothing was stored.
type WrongVersionError struct {
	Stream string
	// Current is the stream's version; -1 when it has no event.
	Current int64
	Message string
}

func (e *WrongVersionError) Error() string { return "nubo eventstore: " + e.Message }

// APIError is any other error answer of the API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("nubo eventstore: %d %s", e.Status, e.Message)
}

// maxAnswer bounds an answer read from the API.
const maxAnswer = 64 << 20

// Client talks to the event store of the nubo running this process. It is
// safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// New returns a client of the API in $NUBO_API.
func New() (*Client, error) {
	api := os.Getenv("NUBO_API")
	if api == "" {
		return nil, errors.New("nubo eventstore: $NUBO_API is not set: run this program under nubo up, or set it to the engine's console URL")
	}
	return NewFor(api, nil)
}

// NewFor returns a client of the API at base (http://127.0.0.1:4500). A
// nil httpClient uses one that goes through no proxy.
func NewFor(base string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nubo eventstore: API URL %q: want http://HOST:PORT", base)
	}
	if httpClient == nil {
		httpClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	}
	return &Client{base: u.String() + "/v1/eventstore", http: httpClient}, nil
}

// NewEvent returns an event of type typ with data as JSON and a fresh id;
// keep the id to retry an append safely (the same id is stored once).
func NewEvent(typ string, data any) (Event, error) {
	e := Event{ID: uuid.NewString(), Type: typ}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return e, fmt.Errorf("nubo eventstore: event %s: %w", typ, err)
		}
		e.Data = b
	}
	return e, nil
}

// Append stores evs at the end of stream, all or none, if the stream is
// at the expected version.
func (c *Client) Append(ctx context.Context, stream string, expected ExpectedVersion, evs ...Event) (AppendResult, error) {
	var res AppendResult
	body, err := json.Marshal(apitype.AppendRequest{ExpectedVersion: expected, Events: evs})
	if err != nil {
		return res, err
	}
	err = c.do(ctx, http.MethodPost, "/streams/"+url.PathEscape(stream), body, &res)
	return res, err
}

// Read returns up to limit events of stream from version from, oldest
// first, and the version the next page starts at (-1: none).
func (c *Client) Read(ctx context.Context, stream string, from int64, limit int) ([]RecordedEvent, int64, error) {
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "limit": {strconv.Itoa(limit)}}
	return c.read(ctx, "/streams/"+url.PathEscape(stream)+"?"+q.Encode())
}

// ReadBackward returns up to limit events of stream, newest first, from
// its last event.
func (c *Client) ReadBackward(ctx context.Context, stream string, limit int) ([]RecordedEvent, error) {
	q := url.Values{"backward": {"true"}, "limit": {strconv.Itoa(limit)}}
	evs, _, err := c.read(ctx, "/streams/"+url.PathEscape(stream)+"?"+q.Encode())
	return evs, err
}

// ReadAll returns up to limit events of every stream matching the pattern
// streams ('*' any run of characters; empty: all) and of types (none: all),
// from global position from, and the position the next page starts at
// (-1: the end).
func (c *Client) ReadAll(ctx context.Context, from uint64, streams string, types []string, limit int) ([]RecordedEvent, int64, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "limit": {strconv.Itoa(limit)}}
	if streams != "" {
		q.Set("streams", streams)
	}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	return c.read(ctx, "/all?"+q.Encode())
}

func (c *Client) read(ctx context.Context, path string) ([]RecordedEvent, int64, error) {
	var res apitype.ReadResponse
	if err := c.do(ctx, http.MethodGet, path, nil, &res); err != nil {
		return nil, -1, err
	}
	next := int64(-1)
	if res.Next != nil {
		next = *res.Next
	}
	return res.Events, next, nil
}

// LatestSnapshot returns stream's newest snapshot, or nil when it has none.
func (c *Client) LatestSnapshot(ctx context.Context, stream string) (*Snapshot, error) {
	var snap Snapshot
	err := c.do(ctx, http.MethodGet, "/streams/"+url.PathEscape(stream)+"/snapshot", nil, &snap)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &snap, nil
}

// Load returns what an aggregate is made of: stream's latest snapshot (nil
// if none) and the events after it, and the stream's version (-1 when it
// has no event), to append the aggregate's next events with
// Version(version).
func (c *Client) Load(ctx context.Context, stream string) (snap *Snapshot, evs []RecordedEvent, version int64, err error) {
	snap, err = c.LatestSnapshot(ctx, stream)
	if err != nil {
		return nil, nil, -1, err
	}
	from, version := int64(0), int64(-1)
	if snap != nil {
		from, version = snap.Version+1, snap.Version
	}
	for from >= 0 {
		page, next, err := c.Read(ctx, stream, from, 1000)
		if err != nil {
			return nil, nil, -1, err
		}
		evs = append(evs, page...)
		if n := len(page); n > 0 {
			version = page[n-1].Version
		}
		from = next
	}
	return snap, evs, version, nil
}

// Subscribe follows the events of streams matching the pattern streams
// and of types, from global position from (catching up on the stored
// ones, then as they are appended), until ctx is done or the connection
// ends; a broken connection ends the sequence with its error. To resume,
// subscribe again from the last event's Position+1.
func (c *Client) Subscribe(ctx context.Context, from uint64, streams string, types ...string) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		q := url.Values{"from": {strconv.FormatUint(from, 10)}}
		if streams != "" {
			q.Set("streams", streams)
		}
		if len(types) > 0 {
			q.Set("types", strings.Join(types, ","))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/subscribe?"+q.Encode(), nil)
		if err != nil {
			yield(RecordedEvent{}, err)
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				yield(RecordedEvent{}, fmt.Errorf("nubo eventstore: subscribe: %w", err))
			}
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			yield(RecordedEvent{}, readError(resp))
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), maxAnswer)
		kind := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data := []byte(strings.TrimPrefix(line, "data: "))
				if kind == "error" {
					var msg string
					_ = json.Unmarshal(data, &msg)
					yield(RecordedEvent{}, fmt.Errorf("nubo eventstore: subscription: %s", msg))
					return
				}
				var ev RecordedEvent
				if err := json.Unmarshal(data, &ev); err != nil {
					yield(RecordedEvent{}, fmt.Errorf("nubo eventstore: subscription: %w", err))
					return
				}
				if !yield(ev, nil) {
					return
				}
			}
		}
		if ctx.Err() == nil {
			err := sc.Err()
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			yield(RecordedEvent{}, fmt.Errorf("nubo eventstore: subscription ended: %w", err))
		}
	}
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, v any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("nubo eventstore: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(v); err != nil {
		return fmt.Errorf("nubo eventstore: %s %s: undecodable answer: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var wv apitype.WrongVersion
	if json.Unmarshal(data, &wv) != nil || wv.Error == "" {
		return &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	if resp.StatusCode == http.StatusConflict && bytes.Contains(data, []byte(`"currentVersion"`)) {
		stream, _ := url.PathUnescape(strings.TrimPrefix(resp.Request.URL.Path, "/v1/eventstore/streams/"))
		return &WrongVersionError{Stream: stream, Current: wv.CurrentVersion, Message: wv.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: wv.Error}
}
