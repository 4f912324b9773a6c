package engine

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestGatewayRoutesToServicesAndFunctions checks the gateway's wiring in nubo
// up: a service integration through the mesh, a function integration through
// the functions component, and a mock.
func TestGatewayRoutesToServicesAndFunctions(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: gw
services:
  api: {run: CHILD -serve, port: 8080}
functions:
  fn: {run: FUNCTION}
gateway:
  routes:
    - {path: /api/health, methods: [GET], integration: {type: service, service: api, path: /health}}
    - {path: /fn, methods: [POST], integration: {type: function, function: fn}}
    - {path: /status, methods: [GET], integration: {type: mock, status: 200, body: '{"ok":true}'}}
local: {gateway: "127.0.0.1:0"}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	base := "http://" + e.gateway.g.Addr()
	get := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		if code, body := get("GET", "/api/health", ""); code != 200 {
			return fmt.Errorf("service integration: %d %s", code, body)
		}
		return nil
	})
	if code, body := get("POST", "/fn", `{"a":1}`); code/100 != 2 {
		t.Errorf("function integration: %d %s", code, body)
	}
	if code, body := get("GET", "/status", ""); code != 200 || body != `{"ok":true}` {
		t.Errorf("mock: %d %s", code, body)
	}
	if code, _ := get("DELETE", "/status", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("405 expected for a method the route does not take, got %d", code)
	}
}
