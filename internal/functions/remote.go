package functions

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Remote reaches functions that run elsewhere over HTTP, with the same
// invocation protocol as the local pools (a CloudEvent in binary mode, a
// batch in structured mode, a 2xx answer is success): `nubo serve` uses it
// for the Knative Services `nubo render` makes of functions. Retries and
// dead letters are Knative's and the dispatcher's there.
type Remote struct {
	// URL returns the base URL of a function; required.
	URL func(function string) string
	// Client sends the invocations; default a client with a 5 minute
	// timeout (Knative's default request timeout).
	Client *http.Client
	// MaxResultBytes bounds an answer; default DefaultMaxResultBytes.
	MaxResultBytes int64
}

// Invoke invokes a function once with e.
func (r Remote) Invoke(ctx context.Context, name string, e event.Event) (Result, error) {
	pl, err := eventPayload(name, e)
	if err != nil {
		return Result{}, err
	}
	return r.send(ctx, name, pl)
}

// DeliverToFunction delivers one event, or a batch, and succeeds on a 2xx
// answer.
func (r Remote) DeliverToFunction(ctx context.Context, name string, evs []*event.Event) error {
	var pl payload
	var err error
	if len(evs) == 1 {
		pl, err = eventPayload(name, *evs[0])
	} else {
		batch := make([]event.Event, len(evs))
		for i, e := range evs {
			batch[i] = *e
		}
		pl, err = batchPayload(name, batch)
	}
	if err != nil {
		return err
	}
	res, err := r.send(ctx, name, pl)
	if err != nil {
		return err
	}
	if !statusOK(res.Status) {
		return &Error{Function: name, Kind: ErrFunction, Status: res.Status, Detail: errorText(res.Body)}
	}
	return nil
}

func (r Remote) send(ctx context.Context, name string, pl payload) (Result, error) {
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Minute}
	}
	limit := r.MaxResultBytes
	if limit <= 0 {
		limit = DefaultMaxResultBytes
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL(name), bytes.NewReader(pl.body))
	if err != nil {
		return Result{}, fmt.Errorf("function %q: %w", name, err)
	}
	for k, v := range pl.header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("function %q: %w", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Result{}, fmt.Errorf("function %q: read the answer: %w", name, err)
	}
	if int64(len(body)) > limit {
		return Result{Status: resp.StatusCode}, &Error{Function: name, Kind: ErrTooLarge, Detail: fmt.Sprintf("the answer is larger than %d bytes", limit)}
	}
	return Result{
		Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: answerHeader(resp.Header),
		Body: body, Duration: time.Since(start),
	}, nil
}
