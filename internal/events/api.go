package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/cebinding"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Limits of the platform API.
const (
	maxAPIBody     = 8 << 20
	maxReceive     = 100
	maxReceiveWait = 60 * time.Second
	defaultListMax = 100
)

// Handler serves the platform API (docs/platform-api.md) under /v1/: the
// engine mounts it on the console's server, whose address user code gets
// as NUBO_API.
func (d *Dispatcher) Handler() http.Handler { return d.api }

func (d *Dispatcher) routesAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/queues/{name}", d.apiPublish(ToQueue))
	mux.HandleFunc("POST /v1/topics/{name}", d.apiPublish(ToTopic))
	mux.HandleFunc("POST /v1/events", d.apiPublish(ToBus))
	mux.HandleFunc("GET /v1/queues", d.apiQueues)
	mux.HandleFunc("GET /v1/queues/{name}/messages", d.apiReceive)
	mux.HandleFunc("POST /v1/queues/{name}/messages/{id}/ack", d.apiAck)
	mux.HandleFunc("POST /v1/queues/{name}/messages/{id}/nack", d.apiNack)
	mux.HandleFunc("GET /v1/deadletters/{name}", d.apiDeadLetters)
	mux.HandleFunc("GET /v1/deadletters/{name}/{id}", d.apiDeadLetter)
	mux.HandleFunc("POST /v1/deadletters/{name}/redrive", d.apiRedrive)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		if _, pattern := mux.Handler(r); pattern == "" {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such route of the platform API (see docs/platform-api.md)", r.Method, r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// PublishResponse is apitype.PublishResponse: the wire type lives there, so that the API
// changes only where it is declared.
type PublishResponse = apitype.PublishResponse

func (d *Dispatcher) apiPublish(kind DestinationKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		to := Destination{Kind: kind, Name: r.PathValue("name")}
		evs, err := d.readEvents(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		span := d.startPublishSpan(r, to, evs)
		out, err := d.Publish(r.Context(), to, evs...)
		d.endPublishSpan(span, err)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, PublishResponse{Events: out})
	}
}

// badRequest is a request the API cannot read.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

// readEvents reads the CloudEvents of a request: structured mode
// (application/cloudevents+json), a batch (application/cloudevents-batch+json)
// or binary mode (ce-* headers, data as the body). Absent id, time,
// specversion and source are filled in, as Publish does.
func (d *Dispatcher) readEvents(r *http.Request) ([]*event.Event, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case event.ApplicationCloudEventsJSON:
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		ev, err := d.structuredEvent(body)
		if err != nil {
			return nil, badRequest{"structured event: " + err.Error()}
		}
		return []*event.Event{ev}, nil
	case event.ApplicationCloudEventsBatchJSON:
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, badRequest{"batch: not a JSON array of events: " + err.Error()}
		}
		// An empty batch is a batch (the HTTP binding allows it): it
		// publishes nothing.
		evs := make([]*event.Event, len(items))
		for i, item := range items {
			ev, err := d.structuredEvent(item)
			if err != nil {
				return nil, badRequest{fmt.Sprintf("batch: event %d: %v", i, err)}
			}
			evs[i] = ev
		}
		return evs, nil
	}
	if r.Header.Get("ce-type") == "" {
		return nil, badRequest{"no CloudEvent: send one in structured mode (Content-Type: application/cloudevents+json), " +
			"a batch (application/cloudevents-batch+json), or in binary mode with a ce-type header and data as the body"}
	}
	h := r.Header
	if err := cebinding.DecodeHeaders(h); err != nil {
		return nil, badRequest{"binary-mode event: " + err.Error()}
	}
	if err := cebinding.CheckBinary(h); err != nil {
		return nil, badRequest{"binary-mode event: " + err.Error()}
	}
	if h.Get("ce-specversion") == "" {
		h.Set("ce-specversion", event.CloudEventsVersionV1)
	}
	if h.Get("ce-id") == "" {
		h.Set("ce-id", uuid.NewString())
	}
	if h.Get("ce-source") == "" {
		h.Set("ce-source", d.defaultSource(h.Get("ce-type")))
	}
	if h.Get("ce-time") == "" {
		h.Set("ce-time", time.Now().UTC().Format(time.RFC3339Nano))
	}
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest{"binary-mode event: " + strings.TrimSpace(err.Error())}
	}
	return []*event.Event{ev}, nil
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// structuredEvent parses an event in the CloudEvents JSON format, filling
// what it leaves out; data without a datacontenttype is JSON. What the
// format forbids is refused, naming the attribute, never rewritten.
func (d *Dispatcher) structuredEvent(raw []byte) (*event.Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("not a JSON object")
	}
	if err := cebinding.CheckStructured(fields); err != nil {
		return nil, err
	}
	// A null member is an absent attribute (the JSON format's own
	// example has "subject": null).
	for k, v := range fields {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(fields, k)
		}
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(fields[k], &s)
		return s
	}
	// Only absent attributes are filled: CheckStructured has refused
	// present ones that are not non-empty strings.
	fill := func(k, v string) {
		if _, ok := fields[k]; !ok {
			fields[k], _ = json.Marshal(v)
		}
	}
	fill("specversion", event.CloudEventsVersionV1)
	fill("id", uuid.NewString())
	fill("time", time.Now().UTC().Format(time.RFC3339Nano))
	fill("source", d.defaultSource(str("type")))
	if _, hasData := fields["data"]; hasData {
		fill("datacontenttype", event.ApplicationJSON)
	}
	full, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	ev := event.New()
	if err := json.Unmarshal(full, &ev); err != nil {
		return nil, errors.New(strings.TrimSpace(err.Error()))
	}
	return &ev, nil
}

// DeliveriesResponse is apitype.DeliveriesResponse: the wire type lives there, so that the API
// changes only where it is declared.
type DeliveriesResponse = apitype.DeliveriesResponse

// Receive hands out up to max events of a queue, waiting up to wait for
// the first one. Each must be acknowledged with Ack, or given back with
// Nack, by its ID before the queue's visibility timeout.
func (d *Dispatcher) Receive(ctx context.Context, queueName string, max int, wait time.Duration) ([]Delivery, error) {
	q, err := d.queue(queueName)
	if err != nil {
		return nil, err
	}
	if max < 1 {
		max = 1
	}
	return q.receive(ctx, max, wait)
}

// Ack acknowledges a delivery of a queue: the event leaves the queue.
func (d *Dispatcher) Ack(ctx context.Context, queueName, id string) error {
	q, err := d.queue(queueName)
	if err != nil {
		return err
	}
	return q.ack(ctx, id)
}

// Nack gives a delivery back to its queue, to be delivered again after
// delay; reason is recorded as the last error should the event be
// dead-lettered (this was its last allowed delivery).
func (d *Dispatcher) Nack(ctx context.Context, queueName, id, reason string, delay time.Duration) error {
	q, err := d.queue(queueName)
	if err != nil {
		return err
	}
	return q.nack(ctx, id, reason, delay)
}

func (d *Dispatcher) queue(name string) (*queue, error) {
	if _, err := d.jetStream(); err != nil {
		return nil, err
	}
	q, ok := d.queues[name]
	if !ok {
		return nil, notFoundf("no queue %q%s", name, known("queues", sortedKeys(d.queues)))
	}
	return q, nil
}

func (d *Dispatcher) apiReceive(w http.ResponseWriter, r *http.Request) {
	max, err := intParam(r, "max", 1, 1, maxReceive)
	if err != nil {
		writeErr(w, err)
		return
	}
	wait := time.Duration(0)
	if s := r.URL.Query().Get("wait"); s != "" {
		wait, err = spec.ParseDuration(s)
		if err != nil || wait > maxReceiveWait {
			writeErr(w, badRequest{fmt.Sprintf("wait=%s: write a duration up to %s, e.g. 5s", s, maxReceiveWait)})
			return
		}
	}
	out, err := d.Receive(r.Context(), r.PathValue("name"), max, wait)
	if err != nil {
		writeErr(w, err)
		return
	}
	if out == nil {
		out = []Delivery{}
	}
	writeJSON(w, http.StatusOK, DeliveriesResponse{Messages: out})
}

func (d *Dispatcher) apiAck(w http.ResponseWriter, r *http.Request) {
	if err := d.Ack(r.Context(), r.PathValue("name"), r.PathValue("id")); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// NackRequest is apitype.NackRequest: the wire type lives there, so that the API
// changes only where it is declared.
type NackRequest = apitype.NackRequest

func (d *Dispatcher) apiNack(w http.ResponseWriter, r *http.Request) {
	var req NackRequest
	body, err := readBody(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeErr(w, badRequest{"nack: body: " + err.Error()})
			return
		}
	}
	var delay time.Duration
	if req.Delay != "" {
		if delay, err = spec.ParseDuration(req.Delay); err != nil {
			writeErr(w, badRequest{"nack: delay: " + err.Error()})
			return
		}
	}
	if err := d.Nack(r.Context(), r.PathValue("name"), r.PathValue("id"), req.Error, delay); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// QueuesResponse is apitype.QueuesResponse: the wire type lives there, so
// that the API changes only where it is declared.
type QueuesResponse = apitype.QueuesResponse

func (d *Dispatcher) apiQueues(w http.ResponseWriter, r *http.Request) {
	out, err := d.Queues(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, QueuesResponse{Queues: out})
}

// DeadLettersResponse is apitype.DeadLettersResponse: the wire type lives there, so that the API
// changes only where it is declared.
type DeadLettersResponse = apitype.DeadLettersResponse

func (d *Dispatcher) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	max, err := intParam(r, "max", defaultListMax, 0, 1<<20)
	if err != nil {
		writeErr(w, err)
		return
	}
	out, err := d.DeadLetters(r.Context(), r.PathValue("name"), max)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, DeadLettersResponse{DeadLetters: out})
}

func (d *Dispatcher) apiDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeErr(w, badRequest{fmt.Sprintf("dead letter id %q: not a number (nubo dlq list shows the ids)", r.PathValue("id"))})
		return
	}
	out, err := d.DeadLetter(r.Context(), r.PathValue("name"), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// RedriveResponse is apitype.RedriveResponse: the wire type lives there, so that the API
// changes only where it is declared.
type RedriveResponse = apitype.RedriveResponse

func (d *Dispatcher) apiRedrive(w http.ResponseWriter, r *http.Request) {
	var req RedriveRequest
	body, err := readBody(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeErr(w, badRequest{`redrive: body: write {"ids": [1, 2]} or {"all": true}, with "to": "QUEUE" to send them elsewhere: ` + err.Error()})
		return
	}
	if !req.All && len(req.IDs) == 0 {
		writeErr(w, badRequest{`redrive: name the dead letters: {"ids": [1, 2]} or {"all": true}`})
		return
	}
	out, err := d.Redrive(r.Context(), r.PathValue("name"), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RedriveResponse{Redriven: out})
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest{fmt.Sprintf("%s=%s: write a number from %d to %d", name, s, lo, hi)}
	}
	return n, nil
}

// errorBody is every error answer: {"error": "..."}, as the admin API's.
type errorBody struct {
	Error string `json:"error"`
}

// writeErr answers with the status an error calls for.
func writeErr(w http.ResponseWriter, err error) {
	var (
		invalid *InvalidEventError
		bad     badRequest
		mbe     *http.MaxBytesError
	)
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &invalid), errors.As(err, &bad), errors.Is(err, ErrBadReceipt):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrTooLarge), errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotStarted), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
