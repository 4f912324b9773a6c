package functions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/sdk/function"
)

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{&Error{Function: "f", Kind: ErrNotFound}, 404},
		{&Error{Function: "f", Kind: ErrBadEvent}, 400},
		{&Error{Function: "f", Kind: ErrThrottled}, 429},
		{&Error{Function: "f", Kind: ErrTimeout}, 504},
		{&Error{Function: "f", Kind: ErrStopped}, 503},
		{&Error{Function: "f", Kind: ErrCrashed}, 502},
		{&Error{Function: "f", Kind: ErrOOMKilled}, 502},
		{&Error{Function: "f", Kind: ErrStart}, 502},
		{&Error{Function: "f", Kind: ErrFunction, Status: 422}, 422},
		{&Error{Function: "f", Kind: ErrFunction}, 502},
		{&DeliveryError{Function: "f", Attempts: 2, Last: &Error{Function: "f", Kind: ErrTimeout}}, 504},
		{fmt.Errorf("wrapped: %w", context.Canceled), 500},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.err); got != tt.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	err := &Error{Function: "send-welcome", Instance: 2, Kind: ErrTimeout, Detail: "no answer within 10s"}
	if got := err.Error(); got != `function "send-welcome": instance 2: timed out: no answer within 10s` {
		t.Errorf("Error() = %q", got)
	}
	de := &DeliveryError{Function: "f", Attempts: 3, DeadLetterQueue: "dlq", Last: err}
	if !errors.Is(de, ErrDeadLettered) || !errors.Is(de, ErrTimeout) {
		t.Error("a dead-lettered DeliveryError does not match ErrDeadLettered and its last error")
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, want string }{
		{`{"error":"bad email"}`, "bad email"},
		{"  plain text\n", "plain text"},
		{"", "(no body)"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		if got := errorText([]byte(tt.body)); got != tt.want {
			t.Errorf("errorText(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestPatternWildcards(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		want    []string
	}{
		{"POST /orders", nil},
		{"GET /users/{id}/orders/{order}", []string{"id", "order"}},
		{"GET /files/{path...}", []string{"path"}},
		{"GET /{$}", nil},
	}
	for _, tt := range tests {
		if got := patternWildcards(tt.pattern); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("patternWildcards(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

// TestNewHTTPEvent: the event of an http trigger carries the request, with
// a binary body in base64.
func TestNewHTTPEvent(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var got function.HTTPRequest
	mux.HandleFunc("PUT /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		e, err := NewHTTPEvent(r)
		if err != nil {
			t.Error(err)
			return
		}
		if e.Type() != function.HTTPRequestType || e.Source() != HTTPEventSource || e.Subject() != "/files/a.bin" || e.ID() == "" {
			t.Errorf("event attributes %s", e)
		}
		got, err = function.ReadHTTPRequest(e)
		if err != nil {
			t.Error(err)
		}
	})
	req := httptest.NewRequest(http.MethodPut, "/files/a.bin?v=2", strings.NewReader("\xff\xfe"))
	req.Header.Set("X-Trace", "t1")
	mux.ServeHTTP(httptest.NewRecorder(), req)
	body, err := got.BodyBytes()
	if err != nil || string(body) != "\xff\xfe" || !got.IsBase64Encoded {
		t.Errorf("body %q (base64 %v, %v), want the binary body", body, got.IsBase64Encoded, err)
	}
	if got.Method != "PUT" || got.PathParameters["name"] != "a.bin" || got.Query["v"][0] != "2" || got.Header().Get("X-Trace") != "t1" {
		t.Errorf("request %+v", got)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	var tl tail
	if tl.String() != "" {
		t.Errorf("empty tail %q", tl.String())
	}
	for _, l := range []string{"one", "", "two", "three", "four"} {
		tl.add([]byte(l))
	}
	if got := tl.String(); got != "two | three | four" {
		t.Errorf("tail %q, want the last 3 non-empty lines", got)
	}
}
