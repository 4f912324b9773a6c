package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/sdk/function"
)

const responseSpec = `
name: shop
services:
  users: {image: users:1}
functions:
  user-processor: {run: ./fn}
gateway:
  routes:
    - path: /users/{id}
      methods: [GET]
      integration: {type: service, service: users, path: "/users/{id}"}
      response:
        transform: '{id: .id, email: .email}'
        headers: {x-api-version: "1.0", cache-control: no-store}
        statusCodes:
          - {pattern: "^NotFound", status: 404}
          - {pattern: "Invalid.*", status: 400}
          - {pattern: "503 Service Unavailable", status: 502}
    - path: /raw/{id}
      methods: [GET]
      integration: {type: service, service: users, path: "/users/{id}"}
    - path: /fn
      methods: [POST]
      integration: {type: function, function: user-processor}
      response:
        transform: '{result: .}'
        statusCodes:
          - {pattern: "^NotFound", status: 404}
          - {pattern: "too many invocations", status: 503}
    - path: /maintenance
      methods: [GET]
      integration: {type: mock, status: 503, body: '{"message":"InMaintenance until noon"}'}
      response:
        statusCodes: [{pattern: "^InMaintenance", status: 500}]
`

// usersBackend answers /users/ID by the ID: ok, missing (404 with an
// error field), bad (500 with a message field), text (500 in plain text),
// down (503, empty), or html (200, not JSON).
func usersBackend(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		switch id {
		case "missing":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":"NotFound: user missing"}`)
		case "bad":
			w.WriteHeader(500)
			fmt.Fprint(w, `{"message":"Invalid id \"bad\""}`)
		case "text":
			w.WriteHeader(500)
			fmt.Fprint(w, "NotFound in the database")
		case "down":
			w.WriteHeader(503)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<p>hello</p>")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Backend", "users")
			fmt.Fprintf(w, `{"id":%q,"email":"ada@example.com","passwordHash":"secret"}`, id)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestResponse checks the response transform, headers and statusCodes
// over services, functions and mocks.
func TestResponse(t *testing.T) {
	t.Parallel()
	users := usersBackend(t)
	fns := &fakeFunctions{handle: func(name string, e event.Event) (functions.Result, error) {
		req, err := function.ReadHTTPRequest(e)
		if err != nil {
			return functions.Result{}, err
		}
		switch {
		case strings.Contains(req.Body, "missing"):
			body := []byte(`{"error":"NotFound: no such order"}`)
			return functions.Result{Status: 500, Body: body, ContentType: "application/json"},
				&functions.Error{Function: name, Kind: functions.ErrFunction, Status: 500, Detail: "500"}
		case strings.Contains(req.Body, "busy"):
			return functions.Result{}, &functions.Error{Function: name, Kind: functions.ErrThrottled}
		}
		return jsonResult(map[string]any{"ok": true}), nil
	}}
	tg := startGateway(t, responseSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.Functions = fns
	})
	tests := []struct {
		name, method, path, body string
		status                   int
		wantBody                 string
	}{
		{"transformed", "GET", "/users/7", "", 200, `{"email":"ada@example.com","id":"7"}`},
		{"mapped by error field", "GET", "/users/missing", "", 404, `{"error":"NotFound: user missing"}`},
		{"mapped by message field", "GET", "/users/bad", "", 400, `{"message":"Invalid id \"bad\""}`},
		{"mapped by plain text", "GET", "/users/text", "", 404, "NotFound in the database"},
		{"mapped by status line", "GET", "/users/down", "", 502, ""},
		{"not JSON to transform", "GET", "/users/html", "", 502, `{"message":"Bad Gateway"}`},
		{"no response part", "GET", "/raw/missing", "", 404, `{"error":"NotFound: user missing"}`},
		{"function transformed", "POST", "/fn", `{"x":1}`, 200, `{"result":{"ok":true}}`},
		{"function error mapped", "POST", "/fn", `{"missing":1}`, 404, `{"error":"NotFound: no such order"}`},
		{"function throttled mapped", "POST", "/fn", `{"busy":1}`, 503, `{"message":"Too Many Requests"}`},
		{"mock mapped", "GET", "/maintenance", "", 500, `{"message":"InMaintenance until noon"}`},
	}
	for _, tt := range tests {
		r := call(t, tt.method, tg.url+tt.path, tt.body)
		if r.status != tt.status || r.body != tt.wantBody {
			t.Errorf("%s: %d %q, want %d %q", tt.name, r.status, r.body, tt.status, tt.wantBody)
		}
	}
	r := call(t, "GET", tg.url+"/users/7", "")
	for h, want := range map[string]string{"X-Api-Version": "1.0", "Cache-Control": "no-store", "X-Backend": "users", "Content-Type": "application/json", "Content-Length": fmt.Sprint(len(r.body))} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	if r := call(t, "GET", tg.url+"/users/missing", ""); r.header.Get("X-Api-Version") != "1.0" {
		t.Error("response headers missing on an error answer")
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(call(t, "GET", tg.url+"/raw/7", "").body), &doc); err != nil || doc["passwordHash"] != "secret" {
		t.Errorf("a route without a transform changed the answer: %v", doc)
	}
}
