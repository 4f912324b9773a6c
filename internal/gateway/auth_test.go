package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/functions"
)

const apiKeySpec = `
name: shop
services:
  orders: {image: orders:1}
secrets:
  partner-keys: {keys: [acme, globex]}
gateway:
  authorizers:
    partners:
      type: apiKey
      identitySource: header.x-api-key
      keys: {secret: partner-keys}
    partners-q:
      type: apiKey
      identitySource: query.key
      keys: {secret: partner-keys}
  routes:
    - {path: /orders, methods: [GET], authorizer: partners, integration: {type: service, service: orders}}
    - {path: /feed, methods: [GET], authorizer: partners-q, integration: {type: service, service: orders}}
`

func partnerSecrets(name, key string) (string, bool) {
	vals := map[string]string{"partner-keys/acme": "acme-key-0123456789", "partner-keys/globex": "globex-key-9876543210"}
	v, ok := vals[name+"/"+key]
	return v, ok
}

// TestAPIKey checks the apiKey authorizer: the key's name in its secret is
// the principal; an unknown key is 403, none 401; keys in the query work;
// neither key reaches the log.
func TestAPIKey(t *testing.T) {
	t.Parallel()
	orders := newEchoBackend(t)
	tg := startGateway(t, apiKeySpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"orders": orders.URL})
		c.Secrets = partnerSecrets
	})
	tests := []struct {
		name, path string
		headers    []string
		status     int
		principal  string
	}{
		{"acme", "/orders", []string{"X-Api-Key", "acme-key-0123456789"}, 200, "acme"},
		{"globex", "/orders", []string{"x-api-key", "globex-key-9876543210"}, 200, "globex"},
		{"unknown", "/orders", []string{"X-Api-Key", "acme-key-0123456788"}, 403, ""},
		{"prefix of a key", "/orders", []string{"X-Api-Key", "acme-key"}, 403, ""},
		{"none", "/orders", nil, 401, ""},
		{"in the header of a query authorizer", "/feed", []string{"X-Api-Key", "acme-key-0123456789"}, 401, ""},
		{"query", "/feed?key=globex-key-9876543210", nil, 200, "globex"},
	}
	for _, tt := range tests {
		r := call(t, "GET", tg.url+tt.path, "", tt.headers...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		if tt.status == 200 {
			if got := r.seen(t).Headers["Nubo-Principal"]; len(got) != 1 || got[0] != tt.principal {
				t.Errorf("%s: principal %q, want %q", tt.name, got, tt.principal)
			}
		}
	}
	logs := tg.logs.String()
	mustContain(t, "logs", logs, "unknown API key")
	if strings.Contains(logs, "acme-key") || strings.Contains(logs, "globex-key") {
		t.Errorf("an API key reached the log:\n%s", logs)
	}

	// A secret without a value for a declared key fails New.
	app, _ := loadSpec(t, apiKeySpec, nil)
	_, err := New(Config{App: app, Secrets: func(name, key string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), `secret "partner-keys" has no value for key "acme"`) {
		t.Errorf("missing key value: %v", err)
	}
}

const fnAuthSpec = `
name: shop
services:
  users: {image: users:1}
functions:
  check-token: {run: ./check}
gateway:
  authorizers:
    custom:
      type: function
      function: check-token
      identitySource: header.Authorization
      resultTtl: 60s
    nocache:
      type: function
      function: check-token
      identitySource: header.x-token
      resultTtl: 0s
  routes:
    - {path: /users, methods: [GET, POST], authorizer: custom, integration: {type: service, service: users}}
    - {path: /fresh, methods: [GET], authorizer: nocache, integration: {type: service, service: users}}
`

// TestFunctionAuthorizer checks the function authorizer with a counting
// stand-in for the functions component (the engine wires the real one):
// its answer is cached per identity for resultTtl, denials too; its
// context reaches the backend; a failing function is 503 and not cached.
func TestFunctionAuthorizer(t *testing.T) {
	t.Parallel()
	users := newEchoBackend(t)
	fns := &fakeFunctions{handle: func(name string, e event.Event) (functions.Result, error) {
		var req AuthorizeRequest
		if err := json.Unmarshal(e.Data(), &req); err != nil {
			return functions.Result{}, err
		}
		switch req.Identity {
		case "Bearer alice":
			return jsonResult(map[string]any{"allow": true, "principal": "alice", "context": map[string]any{"tier": "gold", "limit": 5, "admin": false}}), nil
		case "Bearer broken":
			return functions.Result{}, &functions.Error{Function: name, Kind: functions.ErrCrashed, Detail: "exit 2"}
		case "Bearer garbage":
			return functions.Result{Status: 200, Body: []byte("yes")}, nil
		}
		return jsonResult(map[string]any{"allow": false}), nil
	}}
	tg := startGateway(t, fnAuthSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.Functions = fns
	})
	get := func(path, header, cred string) reply {
		return call(t, "GET", tg.url+path, "", header, cred)
	}
	r := get("/users", "Authorization", "Bearer alice")
	if r.status != 200 {
		t.Fatalf("alice: %d %s", r.status, r.body)
	}
	h := r.seen(t).Headers
	for name, want := range map[string]string{"Nubo-Principal": "alice", "Nubo-Context-Tier": "gold", "Nubo-Context-Limit": "5", "Nubo-Context-Admin": "false", "Nubo-Authorizer": "custom"} {
		if got := strings.Join(h[name], ","); got != want {
			t.Errorf("backend got %s %q, want %q", name, got, want)
		}
	}
	var req AuthorizeRequest
	_ = json.Unmarshal(fns.last().Data(), &req)
	if fns.last().Type() != AuthorizeEventType || req.Identity != "Bearer alice" || req.Route != "/users" || req.Method != "GET" || req.Stage != "$default" {
		t.Errorf("the function got %s %+v", fns.last().Type(), req)
	}
	// Cached for resultTtl, across methods of the route.
	for range 3 {
		if r := get("/users", "Authorization", "Bearer alice"); r.status != 200 {
			t.Errorf("alice again: %d", r.status)
		}
	}
	if r := call(t, "POST", tg.url+"/users", "{}", "Authorization", "Bearer alice"); r.status != 200 {
		t.Errorf("alice POST: %d", r.status)
	}
	if n := fns.count("check-token"); n != 1 {
		t.Errorf("%d invocations within the TTL, want 1", n)
	}
	// Denied, and the denial is cached too.
	for range 2 {
		if r := get("/users", "Authorization", "Bearer mallory"); r.status != 403 {
			t.Errorf("mallory: %d, want 403", r.status)
		}
	}
	if n := fns.count("check-token"); n != 2 {
		t.Errorf("%d invocations after mallory twice, want 2", n)
	}
	// After the TTL the function is asked again.
	tg.clock.Advance(61 * time.Second)
	if r := get("/users", "Authorization", "Bearer alice"); r.status != 200 {
		t.Errorf("alice after the TTL: %d", r.status)
	}
	if n := fns.count("check-token"); n != 3 {
		t.Errorf("%d invocations after the TTL, want 3", n)
	}
	// resultTtl 0s asks every time.
	for range 2 {
		get("/fresh", "X-Token", "Bearer alice")
	}
	if n := fns.count("check-token"); n != 5 {
		t.Errorf("%d invocations with resultTtl 0s, want 5", n)
	}
	// No credential: 401 without asking; a failing function: 503, asked
	// again next time.
	if r := call(t, "GET", tg.url+"/users", ""); r.status != 401 {
		t.Errorf("no credential: %d", r.status)
	}
	for range 2 {
		if r := get("/users", "Authorization", "Bearer broken"); r.status != http.StatusServiceUnavailable {
			t.Errorf("broken function: %d, want 503", r.status)
		}
	}
	if r := get("/users", "Authorization", "Bearer garbage"); r.status != http.StatusServiceUnavailable {
		t.Errorf("answer that is not JSON: %d, want 503", r.status)
	}
	if n := fns.count("check-token"); n != 8 {
		t.Errorf("%d invocations, want 8 (failures are not cached)", n)
	}
	if strings.Contains(tg.logs.String(), "Bearer alice") {
		t.Error("a credential reached the log")
	}
}
