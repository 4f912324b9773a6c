package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestMetricsAndAlertsRun checks the wiring of observability in nubo up: the
// engine's own series are scraped into the store and answer PromQL on the
// console, and an alert rule over them fires to a webhook.
func TestMetricsAndAlertsRun(t *testing.T) {
	var mu sync.Mutex
	var payloads []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		payloads = append(payloads, string(b))
		mu.Unlock()
	}))
	defer hook.Close()

	dir := t.TempDir()
	app := writeSpec(t, dir, fmt.Sprintf(`
name: obs
services:
  api: {run: CHILD -serve, port: 8080, replicas: 2}
observability:
  metrics: {interval: 200ms}
  alerts:
    - name: TooFewReplicas
      expr: 'nubo_service_replicas_ready{service="api"} < 5'
      severity: warning
      annotations: {summary: "only {{ $value }} replicas"}
      channels: [hook]
  channels:
    hook: {type: webhook, url: %s}
`, hook.URL))
	e := startEngine(t, app)
	waitReady(t, e)
	q := url.QueryEscape(`nubo_service_replicas_ready{service="api"}`)
	nubotest.WaitFor(t, 30*time.Second, func() error {
		body := getJSON(t, e, "/api/v1/query?query="+q)
		var res struct {
			Status string
			Data   struct {
				Result []struct{ Value []any }
			}
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			return err
		}
		if res.Status != "success" || len(res.Data.Result) != 1 || res.Data.Result[0].Value[1] != "2" {
			return fmt.Errorf("query answered %s", body)
		}
		return nil
	})
	nubotest.WaitFor(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range payloads {
			if strings.Contains(p, `"status":"firing"`) && strings.Contains(p, `"alertname":"TooFewReplicas"`) && strings.Contains(p, `"version":"4"`) {
				return nil
			}
		}
		return fmt.Errorf("no firing notification yet (%d payloads)", len(payloads))
	})
}
