package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/netguard"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// TestFloodLeavesTheBrokerWorking is the flood on a whole engine:
// thousands of clients that open a request to the gateway, promise a body
// and stall, as many as the machine's open-file limit allows in a few
// seconds (the flood's clients run in this process, so they spend the
// engine's descriptors too). While they stand, an event published through
// the platform API is accepted and delivered to a function by the broker;
// once they are gone, `nubo status` shows the broker ok (it may have been
// degraded and healed, never left degraded) and publishes succeed.
//
// Before the listeners' connection caps, 8,000 such clients took the
// engine's 20,000 descriptors (each accepted connection and its upstream)
// and the broker refused writes until a restart.
//
// Not parallel: it takes most of the process's descriptors.
//
// The flood is sized for the open-file limit, 20,000; under
// another, the test runs itself in a child process with that limit.
func TestFloodLeavesTheBrokerWorking(t *testing.T) {
	limit := netguard.FileLimit()
	if limit != floodLimit && os.Getenv("NUBO_TEST_FLOOD_CHILD") == "" {
		// Another limit floods differently (a million takes more than a
		// few seconds to reach): run the test again in a child process
		// with the limit. Raising a hard limit needs root.
		cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" -test.run='^TestFloodLeavesTheBrokerWorking$' -test.count=1 -test.v`, floodLimit), os.Args[0])
		cmd.Env = append(os.Environ(), "NUBO_TEST_FLOOD_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the test under an open-file limit of %d (this process has %d): %v\n%s", floodLimit, limit, err, out)
		}
		t.Logf("run under an open-file limit of %d:\n%s", floodLimit, out)
		return
	}
	// Enough clients to take every descriptor of the process without
	// caps (at least two each: the client's and the accepted one), as
	// many as loopback dials in a few seconds. With caps, those beyond
	// the cap and the listener's backlog time out dialling.
	flood := min(12000, limit/2+1000)
	if flood < 1000 {
		t.Fatalf("open-file limit %d: too low for a flood", limit)
	}
	dir := t.TempDir()
	app := writeSpec(t, dir, `
name: flood
services:
  api: {run: CHILD -serve, port: 8080}
functions:
  on-event:
    run: FUNCTION
    triggers: [{event: {source: flood, type: ping}}]
gateway:
  routes:
    - {path: /upload, methods: [POST], integration: {type: service, service: api, path: /upload}}
local: {gateway: "127.0.0.1:0"}
`)
	e := startEngine(t, app)
	waitReady(t, e)
	gw := e.gateway.g.Addr()
	console := "http://" + e.admin.Addr()
	if code, body := upload(gw); code != 200 {
		t.Fatalf("before the flood: %d %s", code, body)
	}
	publish := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, console+"/v1/events",
			strings.NewReader(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"flood","type":"ping"}`, id)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	}
	invocations := func() uint64 {
		st, err := e.fns.cur.Load().FunctionStatus("on-event")
		if err != nil {
			t.Fatal(err)
		}
		return st.Invocations
	}

	conns, failed := slowBodies(gw, flood, 15*time.Second)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t.Logf("flood: %d slow-body connections open, %d dials failed (open-file limit %d, gateway cap %d)",
		len(conns), failed, limit, netguard.BudgetFor(limit).Gateway)
	if len(conns) < netguard.BudgetFor(limit).Gateway {
		t.Fatalf("only %d connections for a gateway cap of %d: the flood did not reach the cap", len(conns), netguard.BudgetFor(limit).Gateway)
	}

	// While the flood stands.
	before := invocations()
	if err := publish("during"); err != nil {
		t.Errorf("POST /v1/events during the flood: %v", err)
	}
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if invocations() == before {
			return fmt.Errorf("the event published during the flood has not reached the function")
		}
		return nil
	})
	if h := brokerState(t, e); h != "ok" {
		t.Errorf("during the flood the broker is %s", h)
	}

	// The flood ends.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	nubotest.WaitFor(t, 60*time.Second, func() error {
		if s := brokerState(t, e); s != "ok" {
			return fmt.Errorf("after the flood the broker is %s", s)
		}
		return publish("after")
	})
	if code, body := upload(gw); code != 200 {
		t.Errorf("gateway after the flood: %d %s", code, body)
	}
}

// floodLimit is the open-file limit of the machine the issue was found
// on.
const floodLimit = 20000

// upload posts a small body through the gateway's /upload.
func upload(gw string) (int, string) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post("http://"+gw+"/upload", "text/plain", strings.NewReader("hello"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// slowBodies opens up to n connections to addr, each sending a request
// that promises 512 KiB and one byte of it, within d. Dials beyond the
// listener's backlog time out; they count as failed.
func slowBodies(addr string, n int, d time.Duration) ([]net.Conn, int) {
	var (
		mu     sync.Mutex
		conns  []net.Conn
		failed int
		wg     sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialer := net.Dialer{Timeout: time.Second}
			for range next {
				if time.Now().After(deadline) {
					return
				}
				c, err := dialer.Dial("tcp", addr)
				if err == nil {
					_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
					_, err = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: flood\r\nContent-Length: 524288\r\n\r\nx")
					if err != nil {
						c.Close()
					}
				}
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, failed
}

// brokerState is broker.state of the engine's status (`nubo status`).
func brokerState(t *testing.T, e *testEngine) string {
	t.Helper()
	var st struct {
		Broker *struct {
			State string `json:"state"`
		} `json:"broker"`
	}
	if err := json.Unmarshal([]byte(getJSON(t, e, "/admin/v1/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Broker == nil {
		return "absent"
	}
	return st.Broker.State
}
