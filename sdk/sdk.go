// Package sdk is nubo's Go SDK for the services and functions a spec runs:
// it publishes events and invokes functions through the platform API
// ($NUBO_API), and calls services by name. Package sdk/function turns a Go
// func into a function.
//
//	api, err := sdk.NewClient()
//	...
//	e, err := sdk.NewEvent("com.shop.user.created", user)
//	err = api.Publish(ctx, e)                  // the event bus: rules, event triggers
//	err = api.SendToQueue(ctx, "order-jobs", e) // a queue
//	err = api.PublishToTopic(ctx, "orders", e)  // a topic's subscriptions
//	res, err := api.Invoke(ctx, "send-welcome", e)
//	resp, err := sdk.CallService(ctx, http.MethodGet, "users", "/users/1", nil)
//
// Everything is plain HTTP and CloudEvents underneath (docs/functions.md),
// so code in any language does the same with its own HTTP client.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/internal/cebinding"
)

// APIEnv is the variable holding the platform API's base URL; nubo sets it
// on every service and function.
const APIEnv = "NUBO_API"

// maxAnswer bounds an answer read from the platform API.
const maxAnswer = 64 << 20

// Client talks to the platform API of the nubo running this process. It is
// safe for concurrent use.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a client of the API in $NUBO_API.
func NewClient() (*Client, error) {
	api := os.Getenv(APIEnv)
	if api == "" {
		return nil, fmt.Errorf("nubo sdk: $%s is not set: run this program under nubo up, or set it to the engine's console URL", APIEnv)
	}
	return NewClientFor(api, nil)
}

// NewClientFor returns a client of the API at base (e.g.
// http://127.0.0.1:4500). A nil httpClient uses one that does not go
// through a proxy: the API is nubo itself, not a service of the mesh.
func NewClientFor(base string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nubo sdk: API URL %q: want http://HOST:PORT", base)
	}
	if httpClient == nil {
		httpClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}
	}
	return &Client{base: u, http: httpClient}, nil
}

// NewEvent returns a CloudEvent of type typ with data as JSON, a fresh id,
// the current time, and this program as its source: $NUBO_FUNCTION or
// $NUBO_SERVICE, as nubo sets them. A nil data leaves the event without
// data.
func NewEvent(typ string, data any) (event.Event, error) {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(typ)
	e.SetTime(time.Now())
	e.SetSource(Source())
	if data != nil {
		if err := e.SetData(event.ApplicationJSON, data); err != nil {
			return e, fmt.Errorf("event %s: set data: %w", typ, err)
		}
	}
	return e, nil
}

// Source is the CloudEvents source of events this program publishes: the
// function or service nubo runs it as, else the program's name.
func Source() string {
	for _, k := range []string{"NUBO_FUNCTION", "NUBO_SERVICE"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if len(os.Args) > 0 {
		return filepathBase(os.Args[0])
	}
	return "nubo-sdk"
}

func filepathBase(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Publish puts e on the event bus (POST /v1/events), where rules and event
// triggers see it.
func (c *Client) Publish(ctx context.Context, e event.Event) error {
	return c.post(ctx, "/v1/events", e)
}

// SendToQueue sends e to a queue (POST /v1/queues/{queue}).
func (c *Client) SendToQueue(ctx context.Context, queue string, e event.Event) error {
	return c.post(ctx, "/v1/queues/"+url.PathEscape(queue), e)
}

// PublishToTopic publishes e to a topic's subscriptions (POST
// /v1/topics/{topic}).
func (c *Client) PublishToTopic(ctx context.Context, topic string, e event.Event) error {
	return c.post(ctx, "/v1/topics/"+url.PathEscape(topic), e)
}

func (c *Client) post(ctx context.Context, path string, e event.Event) error {
	resp, err := c.send(ctx, path, e)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	return resp.Body.Close()
}

// InvokeResult is a function's answer to an invocation.
type InvokeResult struct {
	// Status is the function's HTTP status (2xx).
	Status int
	// ContentType is the type of Body.
	ContentType string
	// Body is the function's result.
	Body []byte
	// Duration is how long the function ran.
	Duration time.Duration
	// ColdStart says whether the invocation waited for an instance to
	// start.
	ColdStart bool
}

// Invoke invokes a function with e and waits for its result (POST
// /v1/functions/{name}/invoke). A function that fails answers an *APIError
// with its status and message.
func (c *Client) Invoke(ctx context.Context, function string, e event.Event) (*InvokeResult, error) {
	resp, err := c.send(ctx, "/v1/functions/"+url.PathEscape(function)+"/invoke", e)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("nubo sdk: invoke %s: read the answer: %w", function, err)
	}
	res := &InvokeResult{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body,
		ColdStart: resp.Header.Get("Nubo-Cold-Start") == "true"}
	if ms, err := strconv.ParseFloat(resp.Header.Get("Nubo-Duration-Ms"), 64); err == nil {
		res.Duration = time.Duration(ms * float64(time.Millisecond))
	}
	return res, nil
}

// send POSTs e in binary mode and returns a 2xx answer, or an *APIError.
func (c *Client) send(ctx context.Context, path string, e event.Event) (*http.Response, error) {
	if e.ID() == "" {
		e.SetID(uuid.NewString())
	}
	if e.Source() == "" {
		e.SetSource(Source())
	}
	if e.Time().IsZero() {
		e.SetTime(time.Now())
	}
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, c.base.String()+path, e)
	if err != nil {
		return nil, fmt.Errorf("nubo sdk: POST %s: %w", path, err)
	}
	cebinding.EncodeHeaders(req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("nubo sdk: POST %s: %w", path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readAPIError(resp, "POST "+path)
}

// APIError is an error answer of the platform API, or of a function
// invoked through it.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Message is the error's text: the API's "error" field, or the body.
	Message string
	// Body is the whole answer (a function's own error document).
	Body []byte
	// Request names what was asked, e.g. "POST /v1/queues/jobs".
	Request string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("nubo sdk: %s: %d %s: %s", e.Request, e.Status, http.StatusText(e.Status), e.Message)
}

func readAPIError(resp *http.Response, what string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var doc struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &doc) == nil && doc.Error != "" {
		msg = doc.Error
	}
	if msg == "" {
		msg = "(no message)"
	}
	return &APIError{Status: resp.StatusCode, Message: msg, Body: body, Request: what}
}

// IsStatus reports whether err is an *APIError with the given status: 400
// for an event its schema refused, 404 for an unknown name, 429 when a
// function is at its limits.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// ServiceURL returns the URL that reaches a service (or function) by name:
// $NUBO_SERVICE_<NAME>_URL when nubo set one (a listener of the mesh for
// code that ignores HTTP_PROXY), else http://NAME, which the mesh resolves
// through HTTP_PROXY, as Kubernetes resolves it through DNS.
func ServiceURL(name string) string {
	key := "NUBO_SERVICE_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name)) + "_URL"
	if v := os.Getenv(key); v != "" {
		return strings.TrimRight(v, "/")
	}
	return "http://" + name
}

// CallService sends a request to a service by name, through the mesh (see
// ServiceURL), with http.DefaultClient, which honours HTTP_PROXY. path
// starts with "/". A non-nil body is sent as JSON unless it is an io.Reader
// or []byte.
func CallService(ctx context.Context, method, service, path string, body any) (*http.Response, error) {
	var r io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("nubo sdk: call %s: encode the body: %w", service, err)
		}
		r, contentType = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, ServiceURL(service)+path, r)
	if err != nil {
		return nil, fmt.Errorf("nubo sdk: call %s: %w", service, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("nubo sdk: call %s: %w", service, err)
	}
	return resp, nil
}
