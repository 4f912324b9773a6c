package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const requestSpec = `
name: shop
services:
  users: {image: users:1}
secrets:
  partner-keys: {keys: [acme, globex]}
gateway:
  authorizers:
    partners: {type: apiKey, identitySource: header.x-api-key, keys: {secret: partner-keys}}
  models:
    CreateUser:
      schema:
        type: object
        required: [email]
        additionalProperties: false
        properties:
          email: {type: string, format: email}
          age: {type: integer, minimum: 0}
          tags: {type: array, items: {type: string}}
  stages:
    prod: {variables: {tier: gold}}
  routes:
    - path: /users
      methods: [POST]
      request: {model: CreateUser, required: {headers: [x-request-id], query: [source]}}
      integration: {type: service, service: users}
    - path: /users/{id}/notes
      methods: [POST]
      authorizer: partners
      request:
        maxBodySize: 64
        transform: '{note: ., user: $request.path.id, requestId: $request.headers["x-request-id"], lang: $request.query.lang, stage: $request.stage, tier: $request.stageVariables.tier, partner: $request.authorizer.principal, method: $request.method}'
      integration: {type: service, service: users}
    - path: /upload
      methods: [POST]
      request: {maxBodySize: 16}
      integration: {type: service, service: users}
`

// TestRequestValidation checks models (400 naming the failing place),
// required headers and query parameters, content types and body sizes.
func TestRequestValidation(t *testing.T) {
	t.Parallel()
	users := newEchoBackend(t)
	tg := startGateway(t, requestSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.Secrets = partnerSecrets
	})
	ok := []string{"X-Request-Id", "r1", "Content-Type", "application/json"}
	tests := []struct {
		name, path, body string
		headers          []string
		status           int
		message, at      string
	}{
		{"valid", "/prod/users?source=web", `{"email":"ada@example.com","age":36}`, ok, 200, "", ""},
		{"bad email", "/prod/users?source=web", `{"email":"nope"}`, ok, 400, "does not fit model CreateUser", "/email"},
		{"missing email", "/prod/users?source=web", `{"age":3}`, ok, 400, "CreateUser", "/"},
		{"negative age", "/prod/users?source=web", `{"email":"a@b.co","age":-1}`, ok, 400, "minimum", "/age"},
		{"bad tag", "/prod/users?source=web", `{"email":"a@b.co","tags":["x",3]}`, ok, 400, "", "/tags/1"},
		{"extra field", "/prod/users?source=web", `{"email":"a@b.co","admin":true}`, ok, 400, "admin", "/"},
		{"not JSON", "/prod/users?source=web", `{"email":`, ok, 400, "not JSON", ""},
		{"empty", "/prod/users?source=web", ``, ok, 400, "empty", ""},
		{"missing header", "/prod/users?source=web", `{"email":"a@b.co"}`, []string{"Content-Type", "application/json"}, 400, "X-Request-Id", ""},
		{"missing query", "/prod/users", `{"email":"a@b.co"}`, ok, 400, "source", ""},
		{"wrong content type", "/prod/users?source=web", `{"email":"a@b.co"}`, []string{"X-Request-Id", "r1", "Content-Type", "text/plain"}, 415, "application/json", ""},
		{"no content type", "/prod/users?source=web", `{"email":"a@b.co"}`, []string{"X-Request-Id", "r1"}, 200, "", ""},
		{"charset", "/prod/users?source=web", `{"email":"a@b.co"}`, []string{"X-Request-Id", "r1", "Content-Type", "application/json; charset=utf-8"}, 200, "", ""},
		{"small enough", "/prod/upload", `0123456789abcdef`, nil, 200, "", ""},
		{"too large", "/prod/upload", `0123456789abcdefg`, nil, 413, "16 bytes", ""},
	}
	for _, tt := range tests {
		before := users.hits.Load()
		r := call(t, "POST", tg.url+tt.path, tt.body, tt.headers...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		if reached := users.hits.Load() > before; reached != (tt.status == 200) {
			t.Errorf("%s: reached the backend: %v", tt.name, reached)
		}
		if tt.status == 200 {
			if got := r.seen(t).Body; got != tt.body {
				t.Errorf("%s: backend got %q", tt.name, got)
			}
			continue
		}
		doc := r.json(t)
		msg, _ := doc["message"].(string)
		if !strings.Contains(msg, tt.message) {
			t.Errorf("%s: message %q lacks %q", tt.name, msg, tt.message)
		}
		if tt.at != "" {
			b, _ := json.Marshal(doc["errors"])
			if !strings.Contains(string(b), `"path":"`+tt.at+`"`) {
				t.Errorf("%s: errors %s do not name %s", tt.name, b, tt.at)
			}
		}
	}
	// A chunked body over the limit is cut off too.
	req, _ := http.NewRequest("POST", tg.url+"/prod/upload", strings.NewReader(strings.Repeat("z", 100)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d", resp.StatusCode)
	}
}

// TestRequestTransform checks the jq transform with $request: path,
// query, headers, stage, stage variables, authorizer and method.
func TestRequestTransform(t *testing.T) {
	t.Parallel()
	users := newEchoBackend(t)
	tg := startGateway(t, requestSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
		c.Secrets = partnerSecrets
	})
	r := call(t, "POST", tg.url+"/prod/users/u7/notes?lang=fr", `{"text":"hi","n":12345678901234567890}`,
		"X-Request-Id", "req-1", "X-Api-Key", "acme-key-0123456789", "Content-Type", "text/plain")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	s := r.seen(t)
	var got map[string]any
	d := json.NewDecoder(strings.NewReader(s.Body))
	d.UseNumber()
	if err := d.Decode(&got); err != nil {
		t.Fatalf("backend body %q: %v", s.Body, err)
	}
	want := map[string]string{"user": "u7", "requestId": "req-1", "lang": "fr", "stage": "prod", "tier": "gold", "partner": "acme", "method": "POST"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %q", k, got[k], v)
		}
	}
	if note, _ := got["note"].(map[string]any); note["text"] != "hi" || note["n"] != json.Number("12345678901234567890") {
		t.Errorf("note %v: the body or its big number was not kept", got["note"])
	}
	if ct := s.Headers["Content-Type"]; len(ct) != 1 || ct[0] != "application/json" {
		t.Errorf("Content-Type after the transform: %q", ct)
	}
	// The transform's limit applies before it runs; a body that is not
	// JSON is 400.
	if r := call(t, "POST", tg.url+"/prod/users/u7/notes", strings.Repeat("x", 65), "X-Api-Key", "acme-key-0123456789"); r.status != 413 {
		t.Errorf("over maxBodySize: %d", r.status)
	}
	if r := call(t, "POST", tg.url+"/prod/users/u7/notes", "not json", "X-Api-Key", "acme-key-0123456789"); r.status != 400 {
		t.Errorf("not JSON: %d", r.status)
	}
}
