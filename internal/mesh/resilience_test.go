package mesh

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestOutlierEjectionAndReturn fails one of two replicas: after
// consecutiveErrors failures it is ejected and gets no traffic; once it
// works again and its ejection time passes, it returns. The other replica
// then fails too, but max ejection percent (50) keeps it in.
func TestOutlierEjectionAndReturn(t *testing.T) {
	t.Parallel()
	var failing [2]atomic.Bool
	failing[1].Store(true)
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 2, func(i int, w http.ResponseWriter, r *http.Request) {
		if failing[i].Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, i)
	})...)
	cfg := baseConfig(t)
	cfg.Services["users"] = traffic(spec.Traffic{CircuitBreaker: &spec.CircuitBreaker{
		ConsecutiveErrors: 3, Interval: dur(20 * time.Millisecond), Timeout: dur(300 * time.Millisecond), MaxEjectionPercent: 50,
	}})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")

	ejected := func(id string) bool {
		for _, e := range m.EndpointStatus("users") {
			if e.ID == id {
				return e.Ejected
			}
		}
		return false
	}
	// Round robin alternates: replica 1 fails its third request at the
	// sixth request at the latest.
	for i := 0; i < 6 && !ejected("users-1"); i++ {
		get(t, c, "http://users/")
	}
	if !ejected("users-1") {
		t.Fatalf("replica 1 not ejected after 3 consecutive 500s: %+v", m.EndpointStatus("users"))
	}
	if got := counts(t, c, "http://users/", 20); got["0"] != 20 {
		t.Errorf("with replica 1 ejected, requests went to %v, want all to replica 0", got)
	}
	failing[1].Store(false)
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if ejected("users-1") {
			return fmt.Errorf("replica 1 still ejected")
		}
		return nil
	})
	if got := counts(t, c, "http://users/", 20); got["1"] != 10 {
		t.Errorf("after its return replica 1 got %v, want half of 20", got)
	}

	// Replica 1 fails again, and so, then, does replica 0: ejecting it too
	// would exceed 50%.
	failing[1].Store(true)
	for i := 0; i < 6 && !ejected("users-1"); i++ {
		get(t, c, "http://users/")
	}
	if !ejected("users-1") {
		t.Fatalf("replica 1 not ejected again")
	}
	failing[0].Store(true)
	for i := 0; i < 10; i++ {
		get(t, c, "http://users/")
	}
	if ejected("users-0") {
		t.Errorf("replica 0 ejected although half the replicas already are")
	}
}

// TestEjectionMultiplier drives Envoy's ejection time arithmetic with
// ejection times moved into the past instead of waiting: each ejection in
// a row lasts one base time longer, up to the maximum, and the multiplier
// decays by one per interval a replica stays healthy.
func TestEjectionMultiplier(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.setRaw("users", Endpoint{ID: "a", Addr: "127.0.0.1:1", Ready: true}, Endpoint{ID: "b", Addr: "127.0.0.1:2", Ready: true})
	cl := newCluster("users", eps, testLogger(t, nil))
	cl.setPolicy(clusterPolicy{outlier: &outlierPolicy{consecutive: 2, interval: time.Hour, base: time.Second, max: 2 * time.Second, maxPercent: 100}}, false)
	cl.refresh()
	cl.mu.Lock()
	cl.running = true
	a := cl.members["a"]
	cl.mu.Unlock()
	defer cl.stop()
	state := func(ejectedFor time.Duration) (bool, int) {
		cl.mu.Lock()
		if ejectedFor > 0 {
			a.ejectedAt = time.Now().Add(-ejectedFor)
		}
		cl.mu.Unlock()
		cl.sweep()
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return a.ejected, a.ejectBackoff
	}
	fail := func() {
		cl.report(a, true)
		cl.report(a, true)
	}
	cl.report(a, true)
	cl.report(a, false) // a success resets the count
	cl.report(a, true)
	if ej, _ := state(0); ej {
		t.Fatal("ejected after non-consecutive failures")
	}
	for i, tc := range []struct {
		wait     time.Duration
		ejected  bool
		backoff  int
		healthy  bool
		snapshot int
	}{
		{0, true, 1, false, 1},
		{1500 * time.Millisecond, false, 1, true, 2},
		{0, true, 2, false, 1},
		{1500 * time.Millisecond, true, 2, false, 1},
		{2500 * time.Millisecond, false, 2, true, 2},
		{0, true, 3, false, 1},
		{2500 * time.Millisecond, false, 3, true, 2}, // capped at max (2s)
		{0, true, 3, false, 1},                       // the multiplier stays below max+base
	} {
		if !tc.healthy && tc.wait == 0 {
			fail()
		}
		ej, bo := state(tc.wait)
		if ej != tc.ejected || bo != tc.backoff || len(cl.snap.Load().eps) != tc.snapshot {
			t.Fatalf("step %d: ejected %v multiplier %d with %d healthy, want %v %d %d", i, ej, bo, len(cl.snap.Load().eps), tc.ejected, tc.backoff, tc.snapshot)
		}
	}
	// Healthy for an interval after returning: the multiplier decays.
	state(2500 * time.Millisecond)
	for want := 2; want >= 0; want-- {
		cl.mu.Lock()
		a.unejectedAt = time.Now().Add(-2 * time.Hour)
		cl.mu.Unlock()
		if _, bo := state(0); bo != want {
			t.Fatalf("decay: multiplier %d, want %d", bo, want)
		}
	}
}

func TestNoReadyReplica(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.setRaw("users", Endpoint{ID: "u0", Addr: "127.0.0.1:1", Ready: false})
	m := startMesh(t, baseConfig(t, "users"), eps)
	code, body := get(t, proxyClient(t, m, "orders"), "http://users/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `service "users"`) {
		t.Errorf("no ready replica: %d %q, want 503 naming the service", code, body)
	}
	// A replica becoming ready is seen at once through EndpointsChanged.
	eps.set("users", backends(t, 1, whoami)...)
	m.EndpointsChanged("users")
	if code, _ := get(t, proxyClient(t, m, "orders"), "http://users/"); code != http.StatusOK {
		t.Errorf("after EndpointsChanged: %d, want 200", code)
	}
}

// flaky fails the first n requests it sees (with status), then answers
// with the request body.
type flaky struct {
	mu     sync.Mutex
	n      int
	status int
	hits   int
	bodies []string
}

func (f *flaky) serve(i int, w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.hits++
	f.bodies = append(f.bodies, string(b))
	fail := f.hits <= f.n
	f.mu.Unlock()
	if fail {
		http.Error(w, "flaky", f.status)
		return
	}
	fmt.Fprintf(w, "ok:%s", b)
}

func (f *flaky) stats() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits, append([]string(nil), f.bodies...)
}

func TestRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		retry    spec.Retry
		fails    int
		status   int
		body     string
		buffer   int64
		wantCode int
		wantHits int
	}{
		{"5xx retried until success", spec.Retry{Attempts: 2, On: []string{"5xx"}}, 2, 503, "", 0, 200, 3},
		{"attempts exhausted", spec.Retry{Attempts: 1, On: []string{"5xx"}}, 5, 500, "", 0, 500, 2},
		{"gateway-error skips 500", spec.Retry{Attempts: 2, On: []string{"gateway-error"}}, 1, 500, "", 0, 500, 1},
		{"gateway-error retries 503", spec.Retry{Attempts: 2, On: []string{"gateway-error"}}, 1, 503, "", 0, 200, 2},
		{"connect-failure does not retry a 503", spec.Retry{Attempts: 2, On: []string{"connect-failure"}}, 1, 503, "", 0, 503, 1},
		{"retriable-4xx retries 409", spec.Retry{Attempts: 1, On: []string{"retriable-4xx"}}, 1, 409, "", 0, 200, 2},
		{"body replayed", spec.Retry{Attempts: 2, On: []string{"5xx"}}, 1, 503, "hello body", 0, 200, 2},
		{"body over the buffer is not retried", spec.Retry{Attempts: 2, On: []string{"5xx"}}, 1, 503, strings.Repeat("x", 100), 10, 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &flaky{n: tc.fails, status: tc.status}
			eps := newFakeEndpoints()
			eps.set("users", backends(t, 1, f.serve)...)
			cfg := baseConfig(t)
			cfg.RetryBuffer = tc.buffer
			cfg.Services["users"] = traffic(spec.Traffic{Retry: &tc.retry})
			m := startMesh(t, cfg, eps)
			method := http.MethodGet
			var body io.Reader
			if tc.body != "" {
				method, body = http.MethodPost, strings.NewReader(tc.body)
			}
			code, got, _ := call(t, proxyClient(t, m, "orders"), method, "http://users/", body)
			hits, bodies := f.stats()
			if code != tc.wantCode || hits != tc.wantHits {
				t.Errorf("got %d (%q) after %d tries, want %d after %d", code, got, hits, tc.wantCode, tc.wantHits)
			}
			for i, b := range bodies {
				if b != tc.body {
					t.Errorf("try %d sent body %q, want %q", i, b, tc.body)
				}
			}
		})
	}
}

// TestRetryConnectFailure retries a request whose replica refuses
// connections onto the other replica.
func TestRetryConnectFailure(t *testing.T) {
	t.Parallel()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	live := backends(t, 1, whoami)[0]
	eps := newFakeEndpoints()
	eps.setRaw("users",
		Endpoint{ID: "a", Addr: deadAddr, Ready: true},
		Endpoint{ID: "b", Addr: strings.TrimPrefix(live.URL, "http://"), Ready: true})
	cfg := baseConfig(t)
	cfg.Services["users"] = traffic(spec.Traffic{Retry: &spec.Retry{Attempts: 2, On: []string{"connect-failure"}}})
	cfg.Services["plain"] = ServiceConfig{}
	eps.setRaw("plain", Endpoint{ID: "a", Addr: deadAddr, Ready: true})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "orders")
	if got := counts(t, c, "http://users/", 10); got["0"] != 10 {
		t.Errorf("with a dead replica and retries: %v, want all 10 answered by the live one", got)
	}
	code, body := get(t, c, "http://plain/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection failure") {
		t.Errorf("without retries: %d %q, want Envoy's 503 connection failure", code, body)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	var slowFirst atomic.Int32
	eps := newFakeEndpoints()
	handler := func(i int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hang") != "" || (r.URL.Query().Get("slowfirst") != "" && slowFirst.Add(1) == 1) {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "ok")
	}
	eps.set("users", backends(t, 1, handler)...)
	eps.set("orders", backends(t, 1, handler)...)
	cfg := baseConfig(t)
	cfg.Services["users"] = traffic(spec.Traffic{
		Timeout: dur(300 * time.Millisecond),
		Retry:   &spec.Retry{Attempts: 2, PerTryTimeout: dur(50 * time.Millisecond), On: []string{"reset"}},
	})
	cfg.Services["orders"] = traffic(spec.Traffic{Timeout: dur(100 * time.Millisecond)})
	m := startMesh(t, cfg, eps)
	c := proxyClient(t, m, "web")

	// The first try hangs until the caller gives up: only the per-try
	// timeout cutting it, and the retry, can answer 200 (without them the
	// overall timeout answers 504). No clock is read: a busy machine must
	// not fail this.
	code, body := get(t, c, "http://users/?slowfirst=1")
	if code != 200 || body != "ok" {
		t.Errorf("per-try timeout then retry: %d %q, want 200 ok", code, body)
	}

	// The replica hangs, so a 504 is the timeout's; it cannot come earlier
	// than the timeout (a lower bound holds on any machine).
	start := time.Now()
	code, body = get(t, c, "http://orders/?hang=1")
	d := time.Since(start)
	if code != http.StatusGatewayTimeout || body != "upstream request timeout" {
		t.Errorf("overall timeout: %d %q, want 504 upstream request timeout", code, body)
	}
	if d < 100*time.Millisecond {
		t.Errorf("overall timeout of 100ms answered after %v", d)
	}

	// Retries stay within the overall timeout: three tries of 50ms at most,
	// then 504 (the replica never answers).
	code, _ = get(t, c, "http://users/?hang=1")
	if code != http.StatusGatewayTimeout {
		t.Errorf("hanging replica with retries: %d, want 504", code)
	}
}

// TestRequestBodyStreams checks that a request body reaches the replica
// while the caller is still sending it, with and without a retry buffer.
func TestRequestBodyStreams(t *testing.T) {
	t.Parallel()
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry=%v", retry), func(t *testing.T) {
			t.Parallel()
			firstChunk := make(chan struct{})
			eps := newFakeEndpoints()
			eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, 5)
				if _, err := io.ReadFull(r.Body, buf); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				close(firstChunk)
				rest, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s%s", buf, rest)
			})...)
			cfg := baseConfig(t, "users")
			if retry {
				cfg.Services["users"] = traffic(spec.Traffic{Retry: &spec.Retry{Attempts: 2}})
			}
			m := startMesh(t, cfg, eps)
			pr, pw := io.Pipe()
			done := make(chan string, 1)
			go func() {
				code, body, _ := call(t, proxyClient(t, m, "orders"), http.MethodPost, "http://users/", pr)
				done <- fmt.Sprint(code, " ", body)
			}()
			pw.Write([]byte("first"))
			select {
			case <-firstChunk:
			case <-time.After(10 * time.Second):
				t.Fatal("the replica did not get the first chunk while the body was still open")
			}
			pw.Write([]byte(" second"))
			pw.Close()
			if got := <-done; got != "200 first second" {
				t.Errorf("response %q, want 200 first second", got)
			}
		})
	}
}

func TestLargeBodyWithRetries(t *testing.T) {
	t.Parallel()
	eps := newFakeEndpoints()
	eps.set("users", backends(t, 1, func(i int, w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})...)
	cfg := baseConfig(t)
	cfg.Services["users"] = traffic(spec.Traffic{Retry: &spec.Retry{Attempts: 2}})
	m := startMesh(t, cfg, eps)
	const size = 4 << 20
	code, body, _ := call(t, proxyClient(t, m, "orders"), http.MethodPost, "http://users/", bytes.NewReader(make([]byte, size)))
	if code != 200 || body != fmt.Sprint(size) {
		t.Errorf("4 MiB body: %d %q, want 200 %d", code, body, size)
	}
}
