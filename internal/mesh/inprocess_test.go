package mesh

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubo-dev/nubo/internal/spec"
)

// TestTransportInProcess: a request through Transport to a service URL
// gets what the same request over the listener gets: the caller's
// identity under policy, the body, trailers, and the caller's metrics.
func TestTransportInProcess(t *testing.T) {
	srv := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "%s %s host=%s body=%s", r.Method, r.URL.RequestURI(), r.Host, b)
		w.Header().Set("X-Sum", "7")
	})
	eps := newFakeEndpoints()
	eps.set("users", srv...)
	eps.set("payments", srv...)
	cfg := baseConfig(t, "users", "payments")
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	cfg.Mesh.Policies = []*spec.Policy{
		{Name: "no-gateway-payments", To: "payments", Action: "deny", From: spec.PolicySource{Principals: []string{"gateway"}}},
	}
	m := startMesh(t, cfg, eps)
	usersURL, err := m.ServiceURL("gateway", "users")
	if err != nil {
		t.Fatal(err)
	}
	paymentsURL, err := m.ServiceURL("gateway", "payments")
	if err != nil {
		t.Fatal(err)
	}
	rt := m.Transport("gateway")

	req, _ := http.NewRequest("POST", usersURL+"/a?b=1", strings.NewReader("hello"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "POST /a?b=1 host=users body=hello" {
		t.Fatalf("in process: %d %q", resp.StatusCode, b)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "7" {
		t.Errorf("trailer X-Sum %q, want 7", got)
	}
	// The same request over the listener answers the same.
	resp2, err := http.Post(usersURL+"/a?b=1", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if string(b2) != string(b) {
		t.Errorf("over the listener %q, in process %q", b2, b)
	}

	// The caller's identity: the deny policy applies to it.
	req, _ = http.NewRequest("GET", paymentsURL+"/", nil)
	resp, err = rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("denied caller: %d, want 403", resp.StatusCode)
	}
	if n := requestsTotal(t, reg, map[string]string{"source_workload": "gateway", "destination_workload": "users", "reporter": "source"}); n != 2 {
		t.Errorf("%v requests from gateway to users in the metrics, want 2", n)
	}

	// A URL that is none of the caller's listeners is refused.
	req, _ = http.NewRequest("GET", srv[0].URL+"/", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Error("a request to a URL outside the mesh's listeners went through")
	}
	// So is another caller's listener: the identity is the transport's.
	other, _ := m.ServiceURL("web", "users")
	req, _ = http.NewRequest("GET", other+"/", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Error("a request to another caller's listener went through")
	}
}

// TestTransportInProcessStreams: a streamed answer is handed over as it
// comes, not when the replica is done.
// inProcessUsers starts a mesh with one replica of users serving h, and
// returns it with users' URL for the gateway.
func inProcessUsers(t *testing.T, h func(int, http.ResponseWriter, *http.Request)) (*Mesh, string) {
	t.Helper()
	srv := backends(t, 1, h)
	eps := newFakeEndpoints()
	eps.set("users", srv...)
	m := startMesh(t, baseConfig(t, "users"), eps)
	u, err := m.ServiceURL("gateway", "users")
	if err != nil {
		t.Fatal(err)
	}
	return m, u
}

func TestTransportInProcessStreams(t *testing.T) {
	release := make(chan struct{})
	srv := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: two\n\n")
	})
	eps := newFakeEndpoints()
	eps.set("events", srv...)
	m := startMesh(t, baseConfig(t, "events"), eps)
	u, err := m.ServiceURL("gateway", "events")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", u+"/", nil)
	resp, err := m.Transport("gateway").RoundTrip(req)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(resp.Body, buf, len("data: one\n\n"))
	if err != nil || string(buf[:n]) != "data: one\n\n" {
		close(release)
		t.Fatalf("first event: %q %v", buf[:n], err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: two\n\n" {
		t.Fatalf("second event: %q", rest)
	}
}

// TestTransportInProcessShortAnswers: a short answer handed over whole
// (its headers taken as the handler left them, not copied) has the
// replica's headers, answers in turn on the same warm worker do not share
// them, and a streamed one's undeclared trailers are in Trailer only.
func TestTransportInProcessShortAnswers(t *testing.T) {
	m, u := inProcessUsers(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, "short")
		if r.URL.Path == "/trailer" {
			// Chunked, so that the replica sends the trailer.
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}
	})
	rt := m.Transport("gateway")
	for _, path := range []string{"/trailer", "/a", "/b"} {
		req, _ := http.NewRequest("GET", u+path, nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "short" || resp.Header.Get("X-Path") != path {
			t.Fatalf("%s: %q, X-Path %q", path, b, resp.Header.Get("X-Path"))
		}
		for k := range resp.Header {
			if strings.HasPrefix(k, http.TrailerPrefix) || k == "X-Late" || k == "Trailer" {
				t.Errorf("%s: header %s: a trailer among the headers", path, k)
			}
		}
		want := ""
		if path == "/trailer" {
			want = "yes"
		}
		if got := resp.Trailer.Get("X-Late"); got != want {
			t.Errorf("%s: trailer X-Late %q, want %q", path, got, want)
		}
	}
}

// TestTransportInProcessHeaders: RoundTrip leaves the caller's header map
// as it was; RoundTripTakingHeader lets the handler edit it; the replica
// gets the same request either way.
func TestTransportInProcessHeaders(t *testing.T) {
	m, usersURL := inProcessUsers(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "keep=%q hop=%q connection=%q", r.Header.Get("X-Keep"), r.Header.Get("X-Hop"), r.Header.Get("Connection"))
	})
	rt := m.Transport("gateway")
	taker, ok := rt.(interface {
		RoundTripTakingHeader(*http.Request) (*http.Response, error)
	})
	if !ok {
		t.Fatal("the in-process transport has no RoundTripTakingHeader")
	}
	const want = `keep="2" hop="" connection=""`
	for _, take := range []bool{false, true} {
		req, _ := http.NewRequest("GET", usersURL+"/", nil)
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "1")
		req.Header.Set("X-Keep", "2")
		var resp *http.Response
		var err error
		if take {
			resp, err = taker.RoundTripTakingHeader(req)
		} else {
			resp, err = rt.RoundTrip(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("taking the header %v: the replica saw %s, want %s", take, b, want)
		}
		if !take && (req.Header.Get("X-Hop") != "1" || req.Header.Get("Connection") != "X-Hop") {
			t.Errorf("RoundTrip changed the caller's header: %v", req.Header)
		}
	}
}

// TestTransportInProcessWorkersEnd: the worker goroutines that serve
// in-process requests end once idle, and new ones serve what comes next.
func TestTransportInProcessWorkersEnd(t *testing.T) {
	m, usersURL := inProcessUsers(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	tr := m.Transport("gateway").(*inProcess)
	tr.idleFor = 20 * time.Millisecond
	get := func() {
		t.Helper()
		req, _ := http.NewRequest("GET", usersURL+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("answer %q", b)
		}
	}
	for round := 0; round < 2; round++ {
		get()
		get()
		deadline := time.Now().Add(10 * time.Second)
		for tr.workers.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d workers still running 10 s after the last request", round, tr.workers.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
