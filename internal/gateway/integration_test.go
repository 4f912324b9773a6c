package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/mesh"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/sdk/function"
)

const meshSpec = `
name: shop
services:
  users: {image: users:1}
  orders: {image: orders:1}
mesh:
  policies:
    - name: gateway-reads-users
      to: users
      action: allow
      from: {principals: [cluster.local/ns/shop/sa/gateway]}
      when: [{key: request.method, values: [GET]}]
ingress:
  - name: web
    paths: [{path: /api, to: gateway}]
local:
  ingress: {http: "127.0.0.1:0"}
gateway:
  stages:
    api: {}
  routes:
    - {path: "/users/{id}", methods: [GET, DELETE], integration: {type: service, service: users, path: "/users/{id}"}}
    - {path: /orders, methods: [GET], integration: {type: http, url: "http://orders/v2/orders?src=gw"}}
`

// TestServiceThroughMesh runs the gateway on the real mesh: service
// integrations go through the gateway's own listener, so the services'
// authorization policies see the principal "gateway"; an http URL naming
// a service goes through the mesh too; and the ingress's to: gateway paths
// reach the gateway.
func TestServiceThroughMesh(t *testing.T) {
	t.Parallel()
	users, orders := newEchoBackend(t), newEchoBackend(t)
	app, _ := loadSpec(t, meshSpec, nil)
	eps := map[string]string{"users": users.Listener.Addr().String(), "orders": orders.Listener.Addr().String()}
	mcfg := mesh.ConfigFromSpec(app)
	mcfg.Logger = testLogger(&strings.Builder{})
	m, err := mesh.New(mcfg, mesh.EndpointsFunc(func(s string) []mesh.Endpoint {
		return []mesh.Endpoint{{ID: s + "-0", Addr: eps[s], Ready: true}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	// The engine's adapter, as it wires the gateway.
	tg := startGateway(t, meshSpec, nil, func(c *Config) {
		c.Services = ServicesFunc(func(name string) (string, error) { return m.ServiceURL("gateway", name) })
	})
	m.SetGateway(tg.g.Handler())

	r := call(t, "GET", tg.url+"/api/users/7", "")
	if r.status != 200 || r.seen(t).Path != "/users/7" {
		t.Fatalf("through the mesh: %d %s", r.status, r.body)
	}
	if r := call(t, "DELETE", tg.url+"/api/users/7", ""); r.status != 403 || !strings.Contains(r.body, "RBAC: access denied") {
		t.Errorf("a method the policy does not allow: %d %q, want the mesh's 403", r.status, r.body)
	}
	r = call(t, "GET", tg.url+"/api/orders?page=2", "")
	if s := r.seen(t); r.status != 200 || s.Path != "/v2/orders" || s.Query != "src=gw&page=2" {
		t.Errorf("http integration to a service name: %d %+v", r.status, s)
	}
	ingress, _ := m.IngressAddrs()
	r = call(t, "GET", "http://"+ingress+"/api/users/9", "")
	if s := r.seen(t); r.status != 200 || s.Path != "/users/9" {
		t.Errorf("ingress to the gateway: %d %s", r.status, r.body)
	}
}

const backendsSpec = `
name: shop
services:
  slow: {image: slow:1}
  gone: {image: gone:1}
  stream: {image: stream:1}
functions:
  user-processor: {run: ./fn}
gateway:
  stages:
    v1: {variables: {fn: user-processor}}
  routes:
    - {path: /slow, methods: [GET], integration: {type: service, service: slow, timeout: 100ms}}
    - {path: /gone, methods: [GET], integration: {type: service, service: gone}}
    - {path: /unknown, methods: [GET], integration: {type: http, url: "http://127.0.0.1:1/x"}}
    - {path: /stream, methods: [GET], integration: {type: service, service: stream}}
    - path: /orders/{id}/items/{rest+}
      methods: [POST]
      integration: {type: function, function: "${stage.fn}", timeout: 2s}
`

// TestBackends checks function integrations (the event an http trigger
// gets), timeouts, unreachable backends and streamed answers.
func TestBackends(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers only when the gateway gives up
	}))
	t.Cleanup(slow.Close)
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "first")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprintln(w, "second")
	}))
	t.Cleanup(stream.Close)
	goneURL := "http://" + nubotest.RefusedAddr(t)
	fns := &fakeFunctions{handle: func(name string, e event.Event) (functions.Result, error) {
		req, err := function.ReadHTTPRequest(e)
		if err != nil {
			return functions.Result{}, err
		}
		b, _ := json.Marshal(req)
		return functions.Result{Status: 201, Body: b, ContentType: "application/json",
			Header: http.Header{"Content-Type": {"application/json"}, "X-Fn": {"yes"}, "Nubo-Instance": {"1"}}}, nil
	}}
	tg := startGateway(t, backendsSpec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"slow": slow.URL, "gone": goneURL, "stream": stream.URL})
		c.Functions = fns
	})

	r := call(t, "POST", tg.url+"/v1/orders/42/items/a/b?x=1", `{"qty":2}`, "Content-Type", "application/json")
	if r.status != 201 || r.header.Get("X-Fn") != "yes" || r.header.Get("Nubo-Instance") != "" {
		t.Fatalf("function: %d %v %s", r.status, r.header, r.body)
	}
	var req function.HTTPRequest
	if err := json.Unmarshal([]byte(r.body), &req); err != nil {
		t.Fatal(err)
	}
	if req.Method != "POST" || req.Path != "/orders/42/items/a/b" || req.Body != `{"qty":2}` || strings.Join(req.Query["x"], ",") != "1" ||
		req.PathParameters["id"] != "42" || req.PathParameters["rest"] != "a/b" {
		t.Errorf("the function got %+v", req)
	}
	if fns.last().Type() != function.HTTPRequestType || fns.count("user-processor") != 1 {
		t.Errorf("event type %q, %d calls", fns.last().Type(), fns.count("user-processor"))
	}

	// The backend answers only once the gateway gives up, so a 504 is the
	// integration's timeout at work; no clock is read.
	if r := call(t, "GET", tg.url+"/v1/slow", ""); r.status != http.StatusGatewayTimeout {
		t.Errorf("slow backend: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/v1/gone", "/v1/unknown"} {
		if r := call(t, "GET", tg.url+p, ""); r.status != http.StatusBadGateway {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	mustContain(t, "access log", tg.logs.String(), "timed out after 100ms")

	// The first chunk arrives before the backend has finished.
	resp, err := http.Get(tg.url + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(release)
	if line, _ := br.ReadString('\n'); line != "second\n" {
		t.Errorf("second chunk: %q", line)
	}
}

// TestUpdate checks hot reload: a new configuration is swapped in, and a
// broken one is refused with the running one kept.
func TestUpdate(t *testing.T) {
	t.Parallel()
	v1 := "name: shop\ngateway:\n  routes:\n    - {path: /v, methods: [GET], integration: {type: mock, body: one}}\n"
	tg := startGateway(t, v1, nil, nil)
	if r := call(t, "GET", tg.url+"/v", ""); r.body != "one" {
		t.Fatalf("v1: %q", r.body)
	}
	app, _ := loadSpec(t, strings.Replace(v1, "one", "two", 1), nil)
	if err := tg.g.Update(app); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", tg.url+"/v", ""); r.body != "two" {
		t.Errorf("after the update: %q", r.body)
	}
	// A key set file that does not parse: refused, "two" stays.
	broken, _ := loadSpec(t, `
name: shop
gateway:
  authorizers:
    jwt: {type: jwt, issuer: https://auth.test/, jwksFile: jwks.json}
  routes:
    - {path: /v, methods: [GET], authorizer: jwt, integration: {type: mock, body: three}}
`, map[string]string{"jwks.json": "not json"})
	if err := tg.g.Update(broken); err == nil || !strings.Contains(err.Error(), "jwt") {
		t.Errorf("broken update: %v", err)
	}
	if r := call(t, "GET", tg.url+"/v", ""); r.body != "two" {
		t.Errorf("after a refused update: %q", r.body)
	}
	mustContain(t, "log", tg.logs.String(), "reload refused")
	// Removing the section: every path is 404.
	none, _ := loadSpec(t, "name: shop\n", nil)
	if err := tg.g.Update(none); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", tg.url+"/v", ""); r.status != 404 {
		t.Errorf("without a gateway section: %d", r.status)
	}
}

// TestUpstreamConnectionReused checks that bodyless GETs to a service go
// through the gateway's upstream client on one kept-alive connection, not
// through the Transport, while a request with a body still does.
func TestUpstreamConnectionReused(t *testing.T) {
	t.Parallel()
	users := httptest.NewUnstartedServer(nil)
	echo := newEchoBackend(t)
	users.Config.Handler = echo.Config.Handler
	var conns atomic.Int32
	users.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	users.Start()
	t.Cleanup(users.Close)
	const spec = `
name: shop
services:
  users: {image: users:1}
gateway:
  routes:
    - {path: "/users/{id}", methods: [GET, POST], integration: {type: service, service: users, path: "/users/{id}"}}
`
	tg := startGateway(t, spec, nil, func(c *Config) {
		c.Services = servicesOf(map[string]string{"users": users.URL})
	})
	get := func(i int) {
		t.Helper()
		r := call(t, "GET", tg.url+"/users/"+strconv.Itoa(i), "", "Connection", "X-Hop", "X-Hop", "1", "X-Kept", "2")
		s := r.seen(t)
		if r.status != 200 || s.Path != "/users/"+strconv.Itoa(i) || s.Method != "GET" {
			t.Fatalf("GET %d: %d %+v", i, r.status, s)
		}
		if s.Headers["X-Hop"] != nil || strings.Join(s.Headers["X-Kept"], ",") != "2" || len(s.Headers["X-Forwarded-For"]) != 1 {
			t.Errorf("GET %d: the service got the headers %v", i, s.Headers)
		}
	}
	for i := range 5 {
		get(i)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 GETs in a row opened %d connections to the service, want 1", n)
	}
	// The Transport's idle connections closed, the GETs' connection stays:
	// it is the upstream client's.
	tg.g.h1.CloseIdleConnections()
	get(5)
	if n := conns.Load(); n != 1 {
		t.Errorf("a GET after the Transport closed its idle connections opened a connection (%d in all), want the same one", n)
	}
	// A body of a known, small length goes through the upstream client
	// too (issue 17), on the same connection.
	r := call(t, "POST", tg.url+"/users/9", `{"a":1}`, "Content-Type", "application/json")
	if s := r.seen(t); r.status != 200 || s.Method != "POST" || s.Body != `{"a":1}` {
		t.Errorf("POST: %d %+v", r.status, s)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections after a POST, want 1 (the upstream client's)", n)
	}
}
