package console

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestShellCarriesTokenAndAssets serves the console's page: the token is in
// it, its assets are under a content-hashed path that is cached for good,
// and an asset of another version is a 404 that says to reload.
func TestShellCarriesTokenAndAssets(t *testing.T) {
	s := startServer(t, Config{Backend: newTestBackend(), Token: "tok-123"})
	base := "http://" + s.Addr()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<meta name="nubo-token" content="tok-123">`) {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	m := regexp.MustCompile(`src="(/ui/[0-9a-f]{12})/js/app.js"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("no versioned app.js in the page:\n%s", page)
	}
	for _, path := range []string{"/js/app.js", "/js/pages/resources.js", "/vendor/uplot/uPlot.esm.js", "/vendor/uplot/LICENSE", "/app.css"} {
		resp, err := http.Get(base + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	a := do(t, "GET", base+"/ui/000000000000/js/app.js", nil)
	if a.code != 404 || !strings.Contains(errorOf(t, a), "reload the page") {
		t.Errorf("old asset: %d %s", a.code, a.body)
	}
}

// TestTokenRequired covers which requests need the token.
func TestTokenRequired(t *testing.T) {
	b := newTestBackend()
	s := startServer(t, Config{Backend: b, Token: "tok"})
	base := "http://" + s.Addr()
	for _, c := range []struct {
		name, method, path string
		header             http.Header
		want               int
	}{
		{"GET needs none", "GET", "/admin/v1/status", nil, 200},
		{"POST without", "POST", "/admin/v1/services/users/restart", nil, 403},
		{"POST with", "POST", "/admin/v1/services/users/restart", http.Header{TokenHeader: {"tok"}}, 202},
		{"POST with bearer", "POST", "/admin/v1/services/users/restart", http.Header{"Authorization": {"Bearer tok"}}, 202},
		{"POST wrong", "POST", "/admin/v1/services/users/restart", http.Header{TokenHeader: {"tok2"}}, 403},
		{"platform API from a process", "POST", "/v1/nothing", nil, 404},
		{"platform API from a browser", "POST", "/v1/nothing", http.Header{"Sec-Fetch-Mode": {"cors"}}, 403},
		{"console API without", "POST", "/console/v1/call", nil, 403},
		// A function's http trigger is the system's own API, not nubo's:
		// its callers hold no token (404: no such trigger here).
		{"a system's own endpoint", "POST", "/hello", nil, 404},
		{"a system's own endpoint from a browser", "POST", "/hello", http.Header{"Origin": {"http://" + s.Addr()}}, 404},
	} {
		if a := do(t, c.method, base+c.path, c.header); a.code != c.want {
			t.Errorf("%s: %s %s: %d %s, want %d", c.name, c.method, c.path, a.code, a.body, c.want)
		}
	}
}

// TestWriteReadToken writes the token file for the user only and reads it
// back, the environment first.
func TestWriteReadToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, TokenFile)
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := NewToken()
	if err != nil || len(tok) != 64 {
		t.Fatalf("NewToken: %q %v", tok, err)
	}
	if err := WriteToken(dir, tok); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if got := ReadToken(dir); got != tok {
		t.Errorf("ReadToken: %q, want %q", got, tok)
	}
	t.Setenv(TokenEnv, "from-env")
	if got := ReadToken(dir); got != "from-env" {
		t.Errorf("ReadToken with $%s: %q", TokenEnv, got)
	}
	t.Setenv(TokenEnv, "")
	if got := ReadToken(""); got != "" {
		t.Errorf("ReadToken of no dir: %q", got)
	}
}

// TestStream reads the console's server-sent events: the status first,
// then the kept lines and a new one of the followed service only.
func TestStream(t *testing.T) {
	store := logs.New(0)
	store.Add(logs.Line{Time: time.Now(), Service: "users", Stream: "stdout", Text: "kept"})
	store.Add(logs.Line{Time: time.Now(), Service: "orders", Stream: "stdout", Text: "other service"})
	s := startServer(t, Config{Backend: newTestBackend(), Logs: store})
	resp, err := http.Get("http://" + s.Addr() + "/console/v1/stream?logs=users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan [2]string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				events <- [2]string{name, v}
			}
		}
		close(events)
	}()
	next := func() [2]string {
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return [2]string{}
	}
	var got []string
	for len(got) < 2 {
		ev := next()
		switch ev[0] {
		case "status":
			var st apitype.Status
			if err := json.Unmarshal([]byte(ev[1]), &st); err != nil || st.App != "shop" {
				t.Errorf("status event: %v %s", err, ev[1])
			}
			got = append(got, "status")
		case "log":
			var l logs.Line
			_ = json.Unmarshal([]byte(ev[1]), &l)
			got = append(got, l.Text)
		}
	}
	if strings.Join(got, ",") != "kept,status" {
		t.Errorf("first events %v, want the kept line then the status", got)
	}
	store.Add(logs.Line{Time: time.Now(), Service: "orders", Stream: "stdout", Text: "not followed"})
	store.Add(logs.Line{Time: time.Now(), Service: "users", Stream: "stdout", Text: "new"})
	for {
		ev := next()
		if ev[0] != "log" {
			continue // the status again only when it changes; not here
		}
		var l logs.Line
		_ = json.Unmarshal([]byte(ev[1]), &l)
		if l.Text != "new" {
			t.Fatalf("log event %q, want the new line of users", l.Text)
		}
		break
	}
	if a := do(t, "GET", "http://"+s.Addr()+"/console/v1/stream?level=loud", nil); a.code != 400 {
		t.Errorf("bad level: %d", a.code)
	}
}

// TestSpecGraph draws the shop example: a node per service, the gateway's
// routes and the functions' triggers as edges.
func TestSpecGraph(t *testing.T) {
	app, err := spec.Load("../../examples/shop/nubo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := SpecGraph(app)
	nodes := map[string]bool{}
	for _, n := range g.Nodes {
		if nodes[n.ID] {
			t.Errorf("node %s twice", n.ID)
		}
		nodes[n.ID] = true
	}
	for name := range app.Services {
		if !nodes["service:"+name] {
			t.Errorf("no node for service %s", name)
		}
	}
	kinds := map[string]int{}
	for _, e := range g.Edges {
		if !nodes[e.From] || !nodes[e.To] {
			t.Errorf("edge %s -> %s names a missing node", e.From, e.To)
		}
		kinds[e.Kind]++
	}
	for _, k := range []string{"route", "trigger", "dependsOn"} {
		if kinds[k] == 0 {
			t.Errorf("no %s edge in the shop's graph: %v", k, kinds)
		}
	}
}

// TestCall sends an API explorer call through to a gateway.
func TestCall(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") == "" || r.Header.Get("X-Api-Key") != "k" {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path":"`+r.URL.RequestURI()+`"}`)
	}))
	defer gw.Close()
	b := newTestBackend()
	b.status.Addresses = map[string]string{"gateway": gw.URL}
	s := startServer(t, Config{Backend: b})
	body := `{"method":"GET","path":"/dev/users/1?x=2","headers":{"x-api-key":"k"}}`
	resp, err := http.Post("http://"+s.Addr()+"/console/v1/call", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apitype.CallResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || r.Body != `{"path":"/dev/users/1?x=2"}` || len(r.TraceID) != 32 {
		t.Errorf("call: %+v", r)
	}
	for _, bad := range []string{`{"path":"http://evil/"}`, `{"path":"//evil/x"}`, `nope`} {
		resp, err := http.Post("http://"+s.Addr()+"/console/v1/call", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("call %s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
