package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/nubo-dev/nubo/internal/metrics"
)

// promServer is nubo's Prometheus API over a real store, recording the
// queries it is asked.
type promServer struct {
	store *metrics.Store
	srv   *httptest.Server
	mu    sync.Mutex
	asks  []string
}

func startPromServer(t *testing.T) *promServer {
	t.Helper()
	store, err := metrics.OpenStore(metrics.StoreOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p := &promServer{store: store}
	api := metrics.NewAPI(store, nil, nil, nil)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.asks = append(p.asks, r.URL.Path+" "+r.URL.RawQuery)
		p.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// add writes one sample of a series.
func (p *promServer) add(t *testing.T, lset labels.Labels, at int64, v float64) {
	t.Helper()
	app := p.store.Appender(context.Background())
	if _, err := app.Append(0, lset, 0, at*1000, v, nil, nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (p *promServer) last() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, _ := url.ParseQuery(strings.SplitN(p.asks[len(p.asks)-1], " ", 2)[1])
	return q
}

func (p *promServer) addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func TestQueryCommand(t *testing.T) {
	t.Parallel()
	p := startPromServer(t)
	const end = 1_700_000_000
	p.add(t, labels.FromStrings("__name__", "up", "job", "users", "instance", "127.0.0.1:41000"), end, 1)
	p.add(t, labels.FromStrings("__name__", "up", "job", "nubo", "instance", "127.0.0.1:4500"), end, 1)
	for i := range 6 {
		p.add(t, labels.FromStrings("__name__", "x", "service", "users"), end-300+60*int64(i), float64(i+1))
	}

	r := runInProcess(t, "query", "up", "--time", "1700000000", "--addr", p.addr())
	if want := "SERIES VALUE\n" +
		`up{instance="127.0.0.1:41000", job="users"} 1` + "\n" +
		`up{instance="127.0.0.1:4500", job="nubo"} 1` + "\n"; r.code != 0 || collapse(r.stdout) != want {
		t.Errorf("instant query:\n%s\nwant stdout:\n%s", r, want)
	}
	if q := p.last(); q.Get("query") != "up" || q.Get("time") != "1700000000" {
		t.Errorf("asked %v", q)
	}

	r = runInProcess(t, "query", "x", "--range", "2m", "--step", "1m", "--time", "2023-11-14T22:13:20Z", "--addr", p.addr())
	at := time.Unix(end, 0).Local()
	want := "x{service=\"users\"}\n" +
		" " + at.Add(-2*time.Minute).Format("15:04:05") + " 4\n" +
		" " + at.Add(-time.Minute).Format("15:04:05") + " 5\n" +
		" " + at.Format("15:04:05") + " 6\n"
	if r.code != 0 || collapse(r.stdout) != want {
		t.Errorf("range query:\n%s\nwant stdout:\n%s", r, want)
	}
	if q := p.last(); q.Get("start") != "1699999880" || q.Get("end") != "1700000000" || q.Get("step") != "60" {
		t.Errorf("range query asked %v", q)
	}
	runInProcess(t, "query", "x", "--range", "1h", "--addr", p.addr())
	if q := p.last(); q.Get("step") != "60" {
		t.Errorf("--range 1h asked step %q, want RANGE/60", q.Get("step"))
	}

	if r := runInProcess(t, "query", "1 + 1", "--addr", p.addr()); r.code != 0 || r.stdout != "2\n" {
		t.Errorf("scalar:\n%s", r)
	}
	if r := runInProcess(t, "query", `"nubo"`, "--addr", p.addr()); r.code != 0 || r.stdout != "nubo\n" {
		t.Errorf("string:\n%s", r)
	}
	r = runInProcess(t, "query", "rate(x[10m])", "--time", "1700000000", "--addr", p.addr())
	if r.code != 0 || !strings.Contains(r.stdout, `{service="users"}`) || !strings.Contains(r.stderr, "warning: PromQL info: metric might not be a counter") {
		t.Errorf("a result with an info:\n%s", r)
	}
	if r := runInProcess(t, "query", "nothing_here", "--addr", p.addr()); r.code != 0 || r.stdout != "" || r.stderr != "no series\n" {
		t.Errorf("empty result:\n%s", r)
	}
	r = runInProcess(t, "query", "up", "-o", "json", "--time", "1700000000", "--addr", p.addr())
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); r.code != 0 || err != nil || doc["status"] != "success" || !strings.Contains(r.stdout, "\n  \"data\": {") {
		t.Errorf("-o json: %v\n%s", err, r)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"parse error", []string{"query", "sum("}, 1, `nubo: invalid parameter "query": 1:5: parse error: unclosed left parenthesis`},
		{"step without range", []string{"query", "up", "--step", "1m"}, 2, "nubo: --step needs --range"},
		{"bad range", []string{"query", "up", "--range", "-1h"}, 2, `nubo: --range "-1h": want a duration`},
		{"bad time", []string{"query", "up", "--time", "noon"}, 2, `nubo: --time "noon": want RFC 3339`},
		{"no expression", []string{"query"}, 2, "accepts 1 arg"},
	}
	for _, tt := range tests {
		r := runInProcess(t, append(tt.args, "--addr", p.addr())...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: nubo %v:\n%s\nwant exit %d, stderr with %q", tt.name, tt.args, r, tt.code, tt.stderr)
		}
	}
}

// collapse turns the runs of spaces tabwriter pads with into one space.
func collapse(s string) string {
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ")
}
