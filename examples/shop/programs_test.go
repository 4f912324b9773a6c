package shop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/spec"
)

// startTimeout bounds the wait for a program to listen, and for it to exit.
const startTimeout = 20 * time.Second

// TestPrograms builds every service and function of the example with the go
// command, as the spec's build lines do, then runs the programs as nubo would
// (PORT, NUBO_API, HTTP_PROXY in their environment) and checks them against
// what the spec says about them.
func TestPrograms(t *testing.T) {
	app := loadSpec(t)
	bins := buildPrograms(t)

	t.Run("spec build and run lines", func(t *testing.T) { testBuildLines(t, app) })
	t.Run("users", func(t *testing.T) { t.Parallel(); testUsers(t, app, bins, "") })
	t.Run("users on shop-db", func(t *testing.T) {
		t.Parallel()
		url, _ := startShopDB(t)
		testUsers(t, app, bins, url)
	})
	t.Run("orders through the mesh", func(t *testing.T) { t.Parallel(); testOrders(t, app, bins, "") })
	t.Run("orders on shop-db", func(t *testing.T) {
		t.Parallel()
		_, url := startShopDB(t)
		testOrders(t, app, bins, url)
	})
	t.Run("catalog", func(t *testing.T) { t.Parallel(); testCatalog(t, bins, "", nil) })
	t.Run("catalog with its cache", func(t *testing.T) {
		t.Parallel()
		url, stop := startCache(t)
		testCatalog(t, bins, url, stop)
	})
	t.Run("order-processor", func(t *testing.T) { t.Parallel(); testOrderProcessor(t, app, bins) })
	t.Run("send-welcome", func(t *testing.T) { t.Parallel(); testSendWelcome(t, app, bins) })
	t.Run("devtoken", func(t *testing.T) { t.Parallel(); testDevToken(t, app, bins) })
	t.Run("metrics match the spec's queries", func(t *testing.T) { t.Parallel(); testMetrics(t, app, bins) })
}

// buildPrograms runs a real `go build` of every program into a temporary
// folder and returns it; the binaries are named after their folders.
func buildPrograms(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the example: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goCmd, "build", "-o", dir+string(filepath.Separator), "./services/...", "./functions/...", "./tools/...")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./services/... ./functions/... ./tools/...: %v\n%s", err, out)
	}
	for _, name := range []string{"users", "orders", "catalog", "order-processor", "send-welcome", "devtoken"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("go build made no %s: %v", name, err)
		}
	}
	return dir
}

// testBuildLines checks that every workload's build line builds a package of
// the example into bin/, that its run line runs that binary, so that `nubo up`
// runs what this test built, and that a service's port is its program's
// default.
func testBuildLines(t *testing.T, app *spec.App) {
	type workload struct {
		name, build, run, dir string
		port                  int // the spec's port, for services
	}
	var all []workload
	for name, s := range app.Services {
		all = append(all, workload{"services." + name, s.Build, s.Run, s.Dir, s.Port})
	}
	for name, f := range app.Functions {
		all = append(all, workload{"functions." + name, f.Build, f.Run, f.Dir, 0})
	}
	defaultPort := regexp.MustCompile(`(?m)^const defaultPort = (\d+)$`)
	for _, w := range all {
		if w.build == "" && strings.HasPrefix(w.run, "node ") {
			// A Node function runs its source; there is nothing to build.
			if _, err := os.Stat(filepath.Join(app.Dir, strings.Fields(w.run)[1])); err != nil {
				t.Errorf("%s.run = %q: %v", w.name, w.run, err)
			}
			continue
		}
		f := strings.Fields(w.build)
		if len(f) != 5 || f[0] != "go" || f[1] != "build" || f[2] != "-o" || !strings.HasPrefix(f[3], "bin/") {
			t.Errorf("%s.build = %q, want go build -o bin/NAME ./PACKAGE", w.name, w.build)
			continue
		}
		if w.run != "./"+f[3] {
			t.Errorf("%s.run = %q, want ./%s, the binary its build line makes", w.name, w.run, f[3])
		}
		if w.dir != "" {
			t.Errorf("%s.dir = %q, want it unset: the build lines are relative to the spec", w.name, w.dir)
		}
		src, err := os.ReadFile(filepath.Join(app.Dir, f[4], "main.go"))
		if err != nil {
			t.Errorf("%s.build builds %s, which is not a program of the example: %v", w.name, f[4], err)
			continue
		}
		// Without $PORT (in Kubernetes) a service listens on the spec's port.
		if m := defaultPort.FindSubmatch(src); w.port != 0 && (m == nil || string(m[1]) != strconv.Itoa(w.port)) {
			t.Errorf("%s: port %d, but %s/main.go has no const defaultPort = %d", w.name, w.port, f[4], w.port)
		}
	}
}

// proc is a running program of the example.
type proc struct {
	url    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	mu     sync.Mutex
	stdout []string
	stderr []string
	grown  chan struct{} // closed and replaced whenever a line arrives
}

// start runs bin with PORT=0 and env (and nothing else, so that a proxy set
// on the test machine cannot interfere), and waits until it listens.
func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{}), grown: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append([]string{"PORT=0"}, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	addr := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go p.collect(&readers, stdout, &p.stdout, nil)
	go p.collect(&readers, stderr, &p.stderr, addr)
	go func() {
		readers.Wait() // Wait must not run before the pipes are drained
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), strings.Join(p.lines(&p.stderr), "\n"))
		}
	})
	select {
	case a := <-addr:
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("%s listens on %q: %v", bin, a, err)
		}
		p.url = "http://127.0.0.1:" + port
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", bin, strings.Join(p.lines(&p.stderr), "\n"))
	case <-time.After(startTimeout):
		t.Fatalf("%s did not listen within %s", bin, startTimeout)
	}
	return p
}

// collect keeps the lines of r; on stderr it sends the address of the
// "listening" record to addr.
func (p *proc) collect(wg *sync.WaitGroup, r io.Reader, into *[]string, addr chan<- string) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		*into = append(*into, line)
		close(p.grown)
		p.grown = make(chan struct{})
		p.mu.Unlock()
		var rec struct{ Msg, Addr string }
		if addr != nil && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			addr <- rec.Addr
			addr = nil
		}
	}
}

func (p *proc) lines(which *[]string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), *which...)
}

// logRecords returns the JSON log records of stderr whose msg is msg.
func (p *proc) logRecords(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return records(p.stderr, msg)
}

func records(lines []string, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range lines {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitRecords waits until stderr holds at least n records whose msg is msg,
// and returns them all: a program logs before it answers, but its output
// reaches the test through a pipe, later.
func (p *proc) waitRecords(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.After(startTimeout)
	for {
		p.mu.Lock()
		recs, grown := records(p.stderr, msg), p.grown
		p.mu.Unlock()
		if len(recs) >= n {
			return recs
		}
		select {
		case <-grown:
		case <-p.done:
			t.Fatalf("the program exited with %d %q records, want %d", len(recs), msg, n)
		case <-deadline:
			t.Fatalf("%d %q records after %s, want %d", len(recs), msg, startTimeout, n)
		}
	}
}

// stop sends SIGTERM and returns the exit code once the process has gone.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(startTimeout):
		t.Fatalf("no exit within %s of SIGTERM", startTimeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// event is a CloudEvent as the platform API receives it from a program.
type event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// platform stands in for nubo's platform API: it keeps the events that
// programs publish, or refuses them while failing is set, and serves
// nubo's own event store (on an embedded JetStream) under /v1/eventstore/.
type platform struct {
	url     string
	failing atomic.Bool
	events  chan event
	store   *eventstore.Store
	// storeFailing makes the event store refuse appends; beforeAppend,
	// when set, runs once before the next append is served: another
	// writer getting there first.
	storeFailing atomic.Bool
	beforeAppend atomic.Pointer[func()]
}

func newPlatform(t *testing.T) *platform {
	pl := &platform{events: make(chan event, 64), store: startEventStore(t)}
	store := pl.store.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/eventstore/") {
			if r.Method == http.MethodPost && pl.storeFailing.Load() {
				http.Error(w, "event store unavailable", http.StatusServiceUnavailable)
				return
			}
			if r.Method == http.MethodPost {
				if f := pl.beforeAppend.Swap(nil); f != nil {
					(*f)()
				}
			}
			store.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
			http.Error(w, "want a structured CloudEvent, got "+ct, http.StatusUnsupportedMediaType)
			return
		}
		if pl.failing.Load() {
			http.Error(w, "broker unavailable", http.StatusServiceUnavailable)
			return
		}
		var e event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pl.events <- e
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	pl.url = srv.URL
	return pl
}

// published returns the event a program published during the request that
// has just returned (publishing is synchronous), checked against the spec:
// a CloudEvent 1.0 of a declared type, from the declared source, whose data
// matches the declared schema.
func (pl *platform) published(t *testing.T, app *spec.App, typ string) event {
	t.Helper()
	var e event
	select {
	case e = <-pl.events:
	default:
		t.Fatalf("no event published, want %s", typ)
	}
	if e.Type != typ {
		t.Fatalf("published %s, want %s", e.Type, typ)
	}
	decl, ok := app.Events[typ]
	if !ok {
		t.Fatalf("published %s, which the spec does not declare", typ)
	}
	if e.SpecVersion != "1.0" || e.ID == "" || e.Time == "" || e.DataContentType != "application/json" {
		t.Errorf("event %s: specversion %q, id %q, time %q, datacontenttype %q", typ, e.SpecVersion, e.ID, e.Time, e.DataContentType)
	}
	if e.Source != decl.Source {
		t.Errorf("event %s has source %q, the spec declares %q", typ, e.Source, decl.Source)
	}
	sch, err := spec.CompileSchema("events/"+typ, decl.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var data any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatalf("event %s: data: %v", typ, err)
	}
	if err := sch.Validate(data); err != nil {
		t.Errorf("event %s: data %s does not match the spec's schema: %v", typ, e.Data, err)
	}
	return e
}

// none fails the test if an event was published.
func (pl *platform) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-pl.events:
		t.Errorf("published %s %s, want nothing", e.Type, e.Data)
	default:
	}
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request (with a JSON body when body is not empty).
func call(t *testing.T, method, url string, header map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, raw}
}

// want fails the test unless the answer has the status; then it decodes the
// JSON body into out, when out is not nil.
func (r reply) want(t *testing.T, status int, out any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("answered %d %s, want %d", r.status, r.body, status)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("answer %s: %v", r.body, err)
		}
	}
}

// wantError fails the test unless the answer has the status and a JSON
// {"error": ...} body containing substr: the shape the gateway's
// response.statusCodes patterns match.
func (r reply) wantError(t *testing.T, status int, substr string) {
	t.Helper()
	var e struct{ Error string }
	r.want(t, status, &e)
	if !strings.Contains(e.Error, substr) {
		t.Errorf("error %q, want it to contain %q", e.Error, substr)
	}
}

// binaryEvent returns the headers of a CloudEvent in binary mode.
func binaryEvent(id, typ, source, subject string) map[string]string {
	h := map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-type": typ, "ce-source": source}
	if subject != "" {
		h["ce-subject"] = subject
	}
	return h
}

// startEventStore runs nubo's event store on an embedded JetStream of its
// own until the test ends.
func startEventStore(t *testing.T) *eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := brokertest.StartEmbedded(t)
	s, err := eventstore.New(eventstore.Config{App: &spec.App{Name: "shop", EventStore: &spec.EventStore{}}, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}
