package functions

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/nubo-dev/nubo/sdk/function"
)

// HTTPEventSource is the CloudEvents source of http trigger invocations.
const HTTPEventSource = "nubo/http"

// NewHTTPEvent turns an HTTP request into the event an http trigger invokes
// a function with: type nubo.http.request, the request's path as subject,
// and the request (sdk/function.HTTPRequest) as JSON data. Path parameters
// are the wildcards of the request's ServeMux pattern. It reads the body.
func NewHTTPEvent(r *http.Request) (event.Event, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return event.Event{}, fmt.Errorf("read the request body: %w", err)
	}
	req := function.HTTPRequest{
		Method:     r.Method,
		Path:       r.URL.Path,
		Headers:    r.Header,
		RemoteAddr: r.RemoteAddr,
	}
	if q := r.URL.Query(); len(q) > 0 {
		req.Query = q
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			req.Body = string(body)
		} else {
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	for _, name := range patternWildcards(r.Pattern) {
		if req.PathParameters == nil {
			req.PathParameters = map[string]string{}
		}
		req.PathParameters[name] = r.PathValue(name)
	}
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetType(function.HTTPRequestType)
	e.SetSource(HTTPEventSource)
	e.SetSubject(r.URL.Path)
	e.SetTime(time.Now())
	if err := e.SetData(event.ApplicationJSON, req); err != nil {
		return event.Event{}, fmt.Errorf("encode the request: %w", err)
	}
	return e, nil
}

// patternWildcards returns the names of a ServeMux pattern's {wildcards}.
func patternWildcards(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[i+1:i+j], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[i+j+1:]
	}
}
