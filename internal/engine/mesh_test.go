package engine

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestServicesReachEachOtherByName checks the mesh's wiring: processes get
// their proxy in HTTP_PROXY and NUBO_SERVICE_<NAME>_URL, and a request for
// http://api/ through the caller's proxy reaches a ready replica of api.
func TestServicesReachEachOtherByName(t *testing.T) {
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: names
services:
  api: {run: CHILD -serve, port: 8080, replicas: 2}
  web:
    run: CHILD -serve
    port: 8080
    health:
      readiness: {exec: {command: [sh, -c, 'test -n "$HTTP_PROXY" && test -n "$NUBO_SERVICE_API_URL" && test -n "$NUBO_API"']}, period: 100ms}
`)
	e := startEngine(t, app)
	waitReady(t, e) // web's probe passes only with the platform's environment
	proxy, err := e.mesh.m.ProxyURL("web")
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(proxy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		resp, err := client.Get("http://api/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	metrics := getJSON(t, e, "/metrics")
	if !strings.Contains(metrics, `istio_requests_total{`) || !strings.Contains(metrics, `source_workload="web"`) {
		t.Errorf("the mesh's Istio metrics are not on the engine's /metrics")
	}
}
