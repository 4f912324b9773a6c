package browser_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/sdk/nubotest"
)

// svcBin is testdata/svc, built once for all tests.
var svcBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nubo-console-browser")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	svcBin = filepath.Join(dir, "svc")
	if out, err := exec.Command("go", "build", "-o", svcBin, "./testdata/svc").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/svc: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// system is the small system the tests run: two services (web calls api
// through the mesh), a queue with a dead-letter queue, a gateway with a
// mock route and a route to web, and a dashboard.
const system = `name: consoletest
services:
  web:
    run: SVC
    port: 8080
    env: {BACKEND_URL: "${services.api.url}"}
    dependsOn: [api]
  api:
    run: SVC
    port: 8080
queues:
  jobs:
    deadLetter: {queue: jobs-dlq, maxReceive: 1}
  jobs-dlq: {}
gateway:
  models:
    Job:
      contentType: application/json
      schema:
        type: object
        required: [name]
        properties: {name: {type: string}}
  routes:
    - path: /jobs
      methods: [POST]
      request: {model: Job}
      integration: {type: mock, status: 201, body: '{"queued":true}', headers: {content-type: application/json}}
    - path: /status
      methods: [GET]
      integration: {type: mock, status: 200, body: '{"ok":true}', headers: {content-type: application/json}}
    - path: /hello
      methods: [GET]
      integration: {type: service, service: web}
cost: {vcpuHour: 0.04, memoryGiBHour: 0.005, millionRequests: 1}
observability:
  metrics:
    interval: 1s
  dashboards:
    overview:
      title: Overview
      refresh: 10s
      timeRange: {from: now-15m, to: now}
      variables:
        - {name: job, type: query, query: 'label_values(up, job)', multi: true, includeAll: true}
      panels:
        - title: Targets up
          type: timeseries
          targets: [{expr: 'up{job=~"$job"}', legend: "{{job}}"}]
          axes: {left: {label: up, min: 0, max: 1.5}}
        - title: Targets
          type: stat
          targets: [{expr: 'count(up)'}]
        - title: By job
          type: table
          targets: [{expr: 'up'}]
`

func startSystem(t *testing.T) *nubotest.System { return startSystemTB(t) }

func startSystemTB(t testing.TB) *nubotest.System {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nubo.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(system, "SVC", svcBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return nubotest.Up(t, path)
}

// TestConsolePages drives every page of the console in Chromium against
// the running system, as the list of browser tests asks, and logs
// each page's load time.
func TestConsolePages(t *testing.T) {
	chromium(t) // skip before starting the system when there is no browser
	sys := startSystem(t)
	b := newBrowser(t, sys.API())
	loads := map[string]pageLoad{}

	t.Run("resources lists every part and restarts a replica", func(t *testing.T) {
		b.t = t
		loads["resources"] = b.open("resources")
		for _, sel := range []string{`tr[data-service="web"]`, `tr[data-service="api"]`, `#queues`, `#functions, main p`} {
			b.waitFor("resources shows "+sel, 10*time.Second, b.has(sel))
		}
		for _, name := range []string{"jobs", "jobs-dlq"} {
			if !strings.Contains(b.text("#queues"), name) {
				t.Errorf("the queues table misses %s: %q", name, b.text("#queues"))
			}
		}
		b.waitFor("the gateway's routes", 10*time.Second, func() error {
			if s := b.text("#routes"); !strings.Contains(s, "/hello") || !strings.Contains(s, "service web") || !strings.Contains(s, "mock 200") {
				return fmt.Errorf("routes: %q", s)
			}
			return nil
		})
		if gw := sys.Status().Addresses["gateway"]; !strings.Contains(b.text("main"), gw) {
			t.Errorf("the page does not show the gateway's address %s", gw)
		}
		var before int
		for _, s := range sys.Status().Services {
			if s.Name == "api" {
				before = s.Replicas[0].PID
			}
		}
		b.click(`tr[data-service="api"] button[data-action="restart"]`)
		b.waitFor("a new api replica after restart", time.Minute, func() error {
			for _, s := range sys.Status().Services {
				if s.Name == "api" && s.Ready == s.Desired && len(s.Replicas) == 1 && s.Replicas[0].PID != before && s.Replicas[0].PID != 0 {
					return nil
				}
			}
			return fmt.Errorf("api's replica is still pid %d, or not ready", before)
		})
		// The page shows the new pid from the stream.
		b.waitFor("the new pid on the page", 10*time.Second, func() error {
			if strings.Contains(b.text(`tr[data-service="api"]`), fmt.Sprint(before)) {
				return fmt.Errorf("the page still shows pid %d", before)
			}
			return nil
		})
	})

	t.Run("resources publishes a test event", func(t *testing.T) {
		b.t = t
		b.run("fill the publish form", 10*time.Second,
			setValue("#publish-to", "queue:jobs"), setValue("#publish-type", "console.check"), setValue("#publish-body", `{"from": "the console"}`))
		b.click(`#page form:has(#publish-to) button[type=submit]`)
		sys.WaitForEvent("jobs", func(d apitype.Delivery) bool {
			return d.Event.Type() == "console.check" && strings.Contains(string(d.Event.Data()), "the console")
		})
	})

	t.Run("the live tail shows a new log line", func(t *testing.T) {
		b.t = t
		loads["logs"] = b.open("logs")
		b.waitFor("the tail's stream is live", 10*time.Second, func() error {
			if !strings.Contains(b.text("main"), "live") {
				return fmt.Errorf("status: %q", b.text("main [role=status]"))
			}
			return nil
		})
		msg := fmt.Sprintf("hello-from-web-%d", time.Now().UnixNano())
		get(t, sys.URL("service:web")+"/log?msg="+msg)
		b.waitFor("the line in the live tail", 2*time.Second, func() error {
			if !strings.Contains(b.text("#log-lines"), msg) {
				return fmt.Errorf("%s is not in the tail", msg)
			}
			return nil
		})
	})

	t.Run("the PromQL explorer returns up", func(t *testing.T) {
		b.t = t
		loads["metrics"] = b.open("metrics?q=up")
		b.waitFor("up in the table", 30*time.Second, func() error {
			if s := b.text("#promql-table"); !strings.Contains(s, "up{") {
				b.run("execute", 10*time.Second, clickJS(`#page form button[type=submit]`))
				return fmt.Errorf("table: %q", s)
			}
			return nil
		})
		b.waitFor("the graph drawn", 10*time.Second, b.has("#promql-graph canvas"))
	})

	t.Run("the spec's dashboard draws its panels with data", func(t *testing.T) {
		b.t = t
		loads["dashboards"] = b.open("dashboards")
		b.waitFor("three panels", 10*time.Second, b.has(`section.panel[data-panel="By job"]`))
		b.waitFor("every panel drawn", 30*time.Second, func() error {
			if s := b.text("#panels .error"); s != "" {
				return fmt.Errorf("a panel failed: %s", s)
			}
			for _, sel := range []string{`[data-panel="Targets up"] canvas`, `[data-panel="Targets"] .stat`, `[data-panel="By job"] table`} {
				if err := b.has(sel)(); err != nil {
					b.click(`#page .row button`) // refresh now: the first scrapes may not be in yet
					return err
				}
			}
			return nil
		})
		if s := b.text("#panels .error"); s != "" {
			t.Errorf("error text on the dashboard: %s", s)
		}
		var points int
		if err := b.eval(`Number(document.querySelector('[data-panel="Targets"] .stat').innerText)`, &points); err != nil || points < 1 {
			t.Errorf("the stat panel shows %q, want a count of targets", b.text(`[data-panel="Targets"] .stat`))
		}
	})

	t.Run("the service map has a node per service and a live edge", func(t *testing.T) {
		b.t = t
		loads["map"] = b.open("map")
		for _, n := range []string{"service:web", "service:api", "queue:jobs"} {
			b.waitFor("node "+n, 10*time.Second, b.has(fmt.Sprintf(`svg.map a[data-node=%q]`, n)))
		}
		b.waitFor("a live edge from web to api", 90*time.Second, func() error {
			get(t, sys.URL("service:web")+"/call")
			return b.has(`svg.map path.edge.live[data-from="web"][data-to="api"]`)()
		})
		b.shot("map-live")
	})

	t.Run("a dead letter is shown and redriven", func(t *testing.T) {
		b.t = t
		id := sys.Publish("queue:jobs", "job.created", map[string]string{"n": "1"})
		deadLetter(t, sys.API(), id)
		loads["events"] = b.open("events?queue=jobs-dlq")
		b.waitFor("the dead letter on the page", 10*time.Second, func() error {
			if s := b.text("#dead-letters"); !strings.Contains(s, id) || !strings.Contains(s, "worker gave up") {
				return fmt.Errorf("dead letters: %q", s)
			}
			return nil
		})
		b.click(`#dead-letters button[data-action="redrive"]`)
		b.waitFor("no dead letter left", 10*time.Second, b.has("#no-dead-letters"))
		sys.WaitForEvent("jobs", func(d apitype.Delivery) bool { return d.Event.ID() == id })
	})

	t.Run("the API explorer calls a mock route", func(t *testing.T) {
		b.t = t
		loads["api"] = b.open("api")
		var idx string
		if err := b.eval(`[...document.querySelectorAll("#api-route option")].find(o => o.textContent === "GET /status")?.value ?? ""`, &idx); err != nil || idx == "" {
			t.Fatalf("no GET /status in the explorer's routes: %q %v", b.text("#api-route"), err)
		}
		b.run("pick GET /status", 10*time.Second, setValue("#api-route", idx))
		b.click("#api-send")
		b.waitFor("the answer", 10*time.Second, func() error {
			if s := b.text("#api-status"); s != "200" {
				return fmt.Errorf("status %q; %s", s, b.text("#api-answer"))
			}
			return nil
		})
		if !strings.Contains(b.text("#api-response"), `"ok": true`) {
			t.Errorf("answer: %q", b.text("#api-response"))
		}

		// A body is checked against the route's model before it is sent.
		if err := b.eval(`[...document.querySelectorAll("#api-route option")].find(o => o.textContent === "POST /jobs")?.value ?? ""`, &idx); err != nil || idx == "" {
			t.Fatalf("no POST /jobs in the explorer's routes: %q %v", b.text("#api-route"), err)
		}
		b.run("pick POST /jobs", 10*time.Second, setValue("#api-route", idx), setValue("#api-body", `{"title": 1}`))
		b.click("#api-send")
		b.waitFor("the model's complaint", 10*time.Second, func() error {
			if s := b.text("#api-check"); !strings.Contains(s, "required property name is missing") {
				return fmt.Errorf("check: %q", s)
			}
			return nil
		})
		b.run("fix the body", 10*time.Second, setValue("#api-body", `{"name": "nightly"}`))
		b.click("#api-send")
		b.waitFor("201 from the gateway", 10*time.Second, func() error {
			if s := b.text("#api-status"); s != "201" {
				return fmt.Errorf("status %q; %s", s, b.text("#api-answer"))
			}
			return nil
		})
	})

	t.Run("traces finds the publishes and draws one", func(t *testing.T) {
		b.t = t
		loads["traces"] = b.open("traces")
		// The events service's spans: the test events published above.
		b.waitFor("the search", 10*time.Second, func() error {
			if s := b.text("#trace-results"); !strings.Contains(s, "publish queue jobs") {
				return fmt.Errorf("page: %q", b.text("main"))
			}
			return nil
		})
		b.click("#trace-results a")
		b.waitFor("the waterfall", 10*time.Second, b.has("#waterfall tr[data-span]"))
	})

	t.Run("alerts and SLOs", func(t *testing.T) {
		b.t = t
		loads["alerts"] = b.open("alerts")
		b.waitFor("alerts drawn", 10*time.Second, b.has("#alerts p, #alerts table"))
		if s := b.text("#alerts .error"); s != "" {
			t.Errorf("alerts page: %s", s)
		}
	})

	t.Run("cost shows each service at the spec's prices", func(t *testing.T) {
		b.t = t
		// The engine's report, the one nubo cost prints: a service that
		// runs costs something now, once its usage has been sampled.
		var web apitype.CostRow
		b.waitFor("web priced by the engine", 30*time.Second, func() error {
			var rep apitype.CostReport
			getJSON(t, sys.API()+"/admin/v1/cost?since=24h", &rep)
			for _, r := range rep.Rows {
				if r.Kind == "service" && r.Name == "web" && r.PerHour > 0 {
					web = r
					return nil
				}
			}
			return fmt.Errorf("report: %+v", rep.Rows)
		})
		if web.Month != web.PerHour*730 {
			t.Errorf("web's month %g is not 730 hours of %g", web.Month, web.PerHour)
		}
		loads["cost"] = b.open("cost")
		for _, sel := range []string{`tr[data-cost="service/web"]`, `tr[data-cost="service/api"]`, `tr[data-cost="total"]`} {
			b.waitFor(sel, 10*time.Second, b.has(sel))
		}
		if row := b.text(`tr[data-cost="service/web"]`); strings.Count(row, "USD") != 3 {
			t.Errorf("web's row: %q, want three amounts in USD", row)
		}
		b.waitFor("the cost chart", 30*time.Second, b.has("#cost-chart canvas, #cost-chart p"))
	})

	t.Run("audit lists the console's restart and the chain holds", func(t *testing.T) {
		b.t = t
		loads["audit"] = b.open("audit?action=restart")
		b.waitFor("the restart made from the console", 10*time.Second, func() error {
			row := b.text(`#audit-records tr[data-action="restart"]`)
			if !strings.Contains(row, "console") || !strings.Contains(row, "api") || !strings.Contains(row, "ok") {
				return fmt.Errorf("restart row: %q (page %q)", row, b.text("main"))
			}
			return nil
		})
		if s := b.text("#audit-chain"); !strings.Contains(s, "holds") {
			t.Errorf("chain: %q", s)
		}
		if s := b.text("#audit-records"); strings.Contains(s, "publish") {
			t.Errorf("the action filter shows other actions: %q", s)
		}
	})

	t.Run("readable in the light and the dark scheme", func(t *testing.T) {
		b.t = t
		// luminance of the body's background and text, 0 (black) to 1.
		const colors = `(() => { const lum = (c) => { const [r, g, b] = c.match(/\d+/g).map(Number); return (0.2126*r + 0.7152*g + 0.0722*b) / 255; };
			const s = getComputedStyle(document.body); return [lum(s.backgroundColor), lum(s.color)]; })()`
		for _, c := range []struct {
			scheme   string
			darkBack bool
		}{{"light", false}, {"dark", true}} {
			b.run("prefer "+c.scheme, 10*time.Second, colorScheme(c.scheme))
			b.open("resources")
			b.shot("resources-" + c.scheme)
			var lum [2]float64
			if err := b.eval(colors, &lum); err != nil {
				t.Fatal(err)
			}
			back, text := lum[0], lum[1]
			if (back < 0.5) != c.darkBack || abs(back-text) < 0.6 {
				t.Errorf("%s scheme: background luminance %.2f, text %.2f: want a %s background and contrast", c.scheme, back, text, map[bool]string{true: "dark", false: "light"}[c.darkBack])
			}
		}
		b.run("back to light", 10*time.Second, colorScheme("light"))
	})

	for _, p := range []string{"resources", "map", "logs", "traces", "metrics", "dashboards", "alerts", "events", "api", "cost", "audit"} {
		if l, ok := loads[p]; ok {
			t.Logf("page load %-10s load event %6.1f ms, content drawn %6.1f ms", p, l.Load, l.Ready)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// deadLetter receives event id from jobs and nacks it: with maxReceive 1
// it moves to jobs-dlq.
func deadLetter(t *testing.T, api, id string) {
	t.Helper()
	var ans apitype.DeliveriesResponse
	getJSON(t, api+"/v1/queues/jobs/messages?wait=20s", &ans)
	if len(ans.Messages) != 1 || ans.Messages[0].Event.ID() != id {
		t.Fatalf("jobs: %+v, want event %s", ans.Messages, id)
	}
	resp, err := http.Post(api+"/v1/queues/jobs/messages/"+url.PathEscape(ans.Messages[0].ID)+"/nack", "application/json", strings.NewReader(`{"error":"worker gave up"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("nack: %s", resp.Status)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", u, resp.Status, body)
	}
	return string(body)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, u)), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
