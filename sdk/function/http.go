package function

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
)

// HTTPRequestType is the CloudEvents type of an invocation by an http
// trigger or the gateway's function integration; its data is an
// HTTPRequest in JSON.
const HTTPRequestType = "nubo.http.request"

// HTTPRequest is the data of a HTTPRequestType event: the HTTP request that
// invoked the function, as AWS API Gateway hands one to Lambda. The
// function's answer (status, headers and body; see Response) becomes the
// HTTP answer.
type HTTPRequest struct {
	// Method is the request's method.
	Method string `json:"method"`
	// Path is the request's path, as the client sent it.
	Path string `json:"path"`
	// Query holds the query parameters.
	Query map[string][]string `json:"query,omitempty"`
	// Headers holds the request headers, canonicalized.
	Headers map[string][]string `json:"headers,omitempty"`
	// PathParameters holds the values of the route's {wildcards}.
	PathParameters map[string]string `json:"pathParameters,omitempty"`
	// Body is the request body: text as it is, anything else in base64
	// (IsBase64Encoded is then set).
	Body string `json:"body,omitempty"`
	// IsBase64Encoded says that Body is base64.
	IsBase64Encoded bool `json:"isBase64Encoded,omitempty"`
	// RemoteAddr is the client's address as the engine saw it.
	RemoteAddr string `json:"remoteAddr,omitempty"`
}

// BodyBytes returns the request body, decoded from base64 when it is.
func (r HTTPRequest) BodyBytes() ([]byte, error) {
	if !r.IsBase64Encoded {
		return []byte(r.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(r.Body)
	if err != nil {
		return nil, fmt.Errorf("decode the request body: %w", err)
	}
	return b, nil
}

// Header returns the request headers as an http.Header.
func (r HTTPRequest) Header() http.Header { return http.Header(r.Headers) }

// ReadHTTPRequest returns the HTTP request an event of type HTTPRequestType
// carries.
func ReadHTTPRequest(e event.Event) (HTTPRequest, error) {
	if e.Type() != HTTPRequestType {
		return HTTPRequest{}, fmt.Errorf("event %s has type %q, not %q", e.ID(), e.Type(), HTTPRequestType)
	}
	var r HTTPRequest
	if err := e.DataAs(&r); err != nil {
		return HTTPRequest{}, fmt.Errorf("event %s: read the HTTP request: %w", e.ID(), err)
	}
	return r, nil
}
