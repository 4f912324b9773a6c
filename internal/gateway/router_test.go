package gateway

import (
	"net/http"
	"slices"
	"testing"
)

// TestRouterMatch checks the trie alone: precedence (literal, then
// {param}, then {proxy+}), backtracking out of a dead end, trailing
// slashes and the values collected.
func TestRouterMatch(t *testing.T) {
	t.Parallel()
	root := &node{}
	templates := []string{"/", "/users", "/users/me", "/users/{id}", "/users/{id}/orders/{order}", "/files/{path+}", "/a/{x}/c", "/a/b/{y}", "/{any+}"}
	for i, tmpl := range templates {
		params, err := checkTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if err := root.insert(&route{index: i, path: tmpl, params: params, anyMethod: true}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path, route string
		vals        []string
	}{
		{"/", "/", nil},
		{"/users", "/users", nil},
		{"/users/", "/users", nil},
		{"/users/me", "/users/me", nil},
		{"/users/42", "/users/{id}", []string{"42"}},
		{"/users/42/orders/7", "/users/{id}/orders/{order}", []string{"42", "7"}},
		{"/users/me/orders/7", "/users/{id}/orders/{order}", []string{"me", "7"}}, // backtracks out of /users/me
		{"/files/a/b/c.txt", "/files/{path+}", []string{"a/b/c.txt"}},
		{"/files/x", "/files/{path+}", []string{"x"}},
		{"/a/b/c", "/a/b/{y}", []string{"c"}}, // literal b first
		{"/a/z/c", "/a/{x}/c", []string{"z"}},
		{"/users/42/nothing", "/{any+}", []string{"users/42/nothing"}},
		{"/files", "/{any+}", []string{"files"}}, // {path+} needs a segment
	}
	for _, tt := range tests {
		n, vals := root.match(tt.path, nil)
		if n == nil {
			t.Errorf("%s: no match, want %s", tt.path, tt.route)
			continue
		}
		if got := n.any.path; got != tt.route || !slices.Equal(vals, tt.vals) {
			t.Errorf("%s: %s %q, want %s %q", tt.path, got, vals, tt.route, tt.vals)
		}
	}

	// Without the catch-all, dead ends are no match.
	small := &node{}
	for _, tmpl := range []string{"/users/{id}", "/files/{p+}"} {
		params, _ := checkTemplate(tmpl)
		_ = small.insert(&route{path: tmpl, params: params, anyMethod: true})
	}
	for _, p := range []string{"/users", "/users/1/x", "/files", "/files/", "/nothing", "/users//"} {
		if n, _ := small.match(p, nil); n != nil {
			t.Errorf("%s matched %s", p, n.any.path)
		}
	}
}

// TestRouterClash checks that New refuses two routes answering one method
// on one path, parameters named differently or not.
func TestRouterClash(t *testing.T) {
	t.Parallel()
	root := &node{}
	add := func(tmpl string, methods ...string) error {
		params, _ := checkTemplate(tmpl)
		return root.insert(&route{path: tmpl, params: params, methods: methods, anyMethod: len(methods) == 0})
	}
	if err := add("/users/{id}", "GET"); err != nil {
		t.Fatal(err)
	}
	if err := add("/users/{userId}", "DELETE"); err != nil {
		t.Fatalf("another method on the same shape: %v", err)
	}
	if err := add("/users/{x}", "GET"); err == nil {
		t.Error("GET twice on /users/{id} accepted")
	}
	if err := add("/users/{x}"); err == nil {
		t.Error("ANY on top of GET accepted")
	}
	for _, bad := range []string{"users", "/a/{b}c", "/a/{p+}/b", "/a/{x}/{x}", "/a/{}"} {
		if _, err := checkTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

const routingSpec = `
name: shop
services:
  users: {image: users:1}
  users-v2: {image: users:2}
gateway:
  stages:
    prod: {variables: {svc: users}}
    dev: {variables: {svc: users-v2}}
  routes:
    - path: /users/{id}
      methods: [GET, PUT]
      integration: {type: service, service: "${stage.svc}", path: "/v1/users/{id}"}
    - path: /files/{path+}
      integration: {type: service, service: users, path: "/static/{path+}"}
    - path: /passthrough/{rest+}
      methods: [GET]
      integration: {type: service, service: users}
    - path: /status
      methods: [GET]
      integration: {type: mock, status: 200, body: '{"ok":true}', headers: {content-type: application/json}}
`

// TestRouting checks stages as prefixes with their variables, path
// templates filled into backend paths, 404 and 405 with Allow.
func TestRouting(t *testing.T) {
	t.Parallel()
	users, v2 := newEchoBackend(t), newEchoBackend(t)
	tg := startGateway(t, routingSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL, "users-v2": v2.URL})
	})
	tests := []struct {
		method, path string
		status       int
		backend      *echoBackend
		backendPath  string
		query        string
	}{
		{"GET", "/prod/users/42", 200, users, "/v1/users/42", ""},
		{"GET", "/dev/users/42?x=1&y=2", 200, v2, "/v1/users/42", "x=1&y=2"},
		{"PUT", "/prod/users/a%20b", 200, users, "/v1/users/a b", ""},
		{"DELETE", "/prod/users/42", 405, nil, "", ""},
		{"GET", "/prod/files/css/site.css", 200, users, "/static/css/site.css", ""},
		{"POST", "/dev/files/x", 200, users, "/static/x", ""},
		{"GET", "/prod/passthrough/a/b", 200, users, "/passthrough/a/b", ""},
		{"GET", "/users/42", 404, nil, "", ""}, // no $default stage
		{"GET", "/test/users/42", 404, nil, "", ""},
		{"GET", "/prod/nothing", 404, nil, "", ""},
		{"GET", "/prod/status", 200, nil, "", ""},
	}
	for _, tt := range tests {
		before := int64(0)
		if tt.backend != nil {
			before = tt.backend.hits.Load()
		}
		r := call(t, tt.method, tg.url+tt.path, "")
		if r.status != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			continue
		}
		if tt.backend == nil {
			continue
		}
		if tt.backend.hits.Load() != before+1 {
			t.Errorf("%s %s: went to the wrong backend", tt.method, tt.path)
		}
		s := r.seen(t)
		if s.Path != tt.backendPath || s.Query != tt.query || s.Method != tt.method {
			t.Errorf("%s %s: backend got %s %s ?%s, want %s ?%s", tt.method, tt.path, s.Method, s.Path, s.Query, tt.backendPath, tt.query)
		}
		if got := s.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", got)
		}
	}
	r := call(t, "DELETE", tg.url+"/prod/users/42", "")
	if got := r.header.Get("Allow"); got != "GET, PUT" {
		t.Errorf("405 Allow %q, want GET, PUT", got)
	}
	if r := call(t, "GET", tg.url+"/prod/status", ""); r.body != `{"ok":true}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("mock: %q %v", r.body, r.header)
	}
}

// TestDefaultStage checks that a spec without stages serves its routes
// without a prefix, and that $default sits beside prefixed stages.
func TestDefaultStage(t *testing.T) {
	t.Parallel()
	tg := startGateway(t, `
name: shop
gateway:
  routes:
    - {path: /ping, methods: [GET], integration: {type: mock, body: pong}}
`, nil, nil)
	if r := call(t, "GET", tg.url+"/ping", ""); r.status != 200 || r.body != "pong" {
		t.Errorf("no stages: %d %q", r.status, r.body)
	}
	tg = startGateway(t, `
name: shop
gateway:
  stages:
    $default: {variables: {word: plain}}
    beta: {variables: {word: beta}}
  routes:
    - {path: /ping, methods: [GET], integration: {type: mock, body: "${stage.word}"}}
`, nil, nil)
	for path, want := range map[string]string{"/ping": "plain", "/beta/ping": "beta"} {
		if r := call(t, "GET", tg.url+path, ""); r.status != http.StatusOK || r.body != want {
			t.Errorf("%s: %d %q, want %q", path, r.status, r.body, want)
		}
	}
}
