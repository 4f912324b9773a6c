// Package cloudevent reads the CloudEvents nubo delivers to the shop's programs
// and publishes new ones through nubo's platform API.
//
// nubo invokes a function (and a service endpoint that a topic, a rule or a
// projection targets) with a POST in the CloudEvents HTTP binding: binary mode
// (ce-* headers, the body is the data) for one event, or a JSON array of
// structured events for a batch. Publishing is a POST of a structured event to
// $NUBO_API/v1/events. Only the standard library is used, so that the example
// needs nothing but a Go toolchain; nubo's Go SDK will replace this package.
package cloudevent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// maxBody bounds what a program reads from one invocation.
const maxBody = 1 << 20

// HTTPRequestType is the type of the event nubo invokes a function with for
// an HTTP request (an http trigger's, or the gateway's function
// integration's). Its data is the request, as AWS API Gateway hands one to
// Lambda; nubo's sdk/function.HTTPRequest describes it.
const HTTPRequestType = "nubo.http.request"

// httpRequest is the part of an HTTPRequestType event's data the shop reads.
type httpRequest struct {
	Method          string `json:"method"`
	Path            string `json:"path"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// Event is a CloudEvent 1.0 in its structured JSON form.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// Read returns the events of one delivery and whether it was a batch. A
// request with a ce-id header is one event in binary mode; a body of
// content type application/cloudevents+json is one structured event; any other
// JSON array is a batch of structured events.
func Read(r *http.Request) ([]Event, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, false, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return nil, false, fmt.Errorf("body is larger than %d bytes", maxBody)
	}
	if id := r.Header.Get("ce-id"); id != "" {
		e := Event{
			SpecVersion:     r.Header.Get("ce-specversion"),
			ID:              id,
			Source:          r.Header.Get("ce-source"),
			Type:            r.Header.Get("ce-type"),
			Subject:         r.Header.Get("ce-subject"),
			Time:            r.Header.Get("ce-time"),
			DataContentType: r.Header.Get("Content-Type"),
		}
		if e.Type == "" || e.Source == "" {
			return nil, false, errors.New("binary-mode event without ce-type or ce-source")
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if !json.Valid(body) {
				return nil, false, fmt.Errorf("event %s: data is not JSON", id)
			}
			e.Data = body
		}
		return []Event{e}, false, nil
	}
	trimmed := bytes.TrimSpace(body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents+json") {
		var e Event
		if err := json.Unmarshal(trimmed, &e); err != nil {
			return nil, false, fmt.Errorf("structured event: %w", err)
		}
		return []Event{e}, false, nil
	}
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []Event
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return nil, false, fmt.Errorf("batch: %w", err)
		}
		return batch, true, nil
	}
	return nil, false, errors.New("not a CloudEvent: send ce-id, ce-type and ce-source headers, a structured event or a JSON array of them")
}

// DataAs decodes the event's data into v.
func (e Event) DataAs(v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("event %s has no data", e.ID)
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %s: data: %w", e.ID, err)
	}
	return nil
}

// Payload returns what the event asks of the program: for an
// HTTPRequestType event, the body of the HTTP request it carries (after the
// gateway route's request transform, when it has one); for any other event,
// its data.
func (e Event) Payload() ([]byte, error) {
	if e.Type != HTTPRequestType {
		if len(e.Data) == 0 {
			return nil, fmt.Errorf("event %s has no data", e.ID)
		}
		return e.Data, nil
	}
	var r httpRequest
	if err := e.DataAs(&r); err != nil {
		return nil, err
	}
	if !r.IsBase64Encoded {
		return []byte(r.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		return nil, fmt.Errorf("event %s: body of %s %s: %w", e.ID, r.Method, r.Path, err)
	}
	return b, nil
}

// Publisher publishes events through nubo's platform API.
type Publisher struct {
	api    string // $NUBO_API; empty when the program runs outside nubo
	source string
	client *http.Client
	log    *slog.Logger
}

// NewPublisher returns a publisher for events of the given source. Without
// $NUBO_API (a program started by hand) Publish only logs what it would send.
func NewPublisher(source string, log *slog.Logger) *Publisher {
	return &Publisher{
		api:    strings.TrimSuffix(os.Getenv("NUBO_API"), "/"),
		source: source,
		client: &http.Client{Timeout: 5 * time.Second},
		log:    log,
	}
}

// Publish sends an event of type typ about subject with data as JSON. nubo
// validates data against the schema nubo.yaml declares for typ and refuses
// it when it does not match.
func (p *Publisher) Publish(ctx context.Context, typ, subject string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("publish %s: encode data: %w", typ, err)
	}
	e := Event{
		SpecVersion:     "1.0",
		ID:              newID(),
		Source:          p.source,
		Type:            typ,
		Subject:         subject,
		Time:            time.Now().UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            raw,
	}
	if p.api == "" {
		p.log.Info("NUBO_API is not set: event not published", "type", typ, "subject", subject, "id", e.ID)
		return nil
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.api+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("publish %s: %s: %s", typ, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// newID returns a random event id; nubo deduplicates deliveries by it.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
