package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// childEnv makes the test binary a store server: an embedded broker with
// its state in the directory the variable names, the store's API on a
// loopback port written to DIR/addr. It runs until killed.
const childEnv = "NUBO_EVENTSTORE_TEST_CHILD"

// sinkEnv gives the child a projection of every event to this URL.
const sinkEnv = "NUBO_EVENTSTORE_TEST_SINK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := runChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

func runChild(dir string) error {
	ctx := context.Background()
	b, err := broker.New(broker.Config{StateDir: dir})
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	es, h := &spec.EventStore{}, Handlers(nil)
	if sink := os.Getenv(sinkEnv); sink != "" {
		// A projection of every event to the test's service.
		es = projectionSpec(5, 10)
		es.Projections["user-summary"].Query = spec.ProjectionQuery{}
		h = serviceHandlers{"users": sink}
	}
	// A sole writer, as nubo up runs it.
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: es}, Broker: b, Handlers: h, SoleWriter: true})
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "addr.tmp")
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "addr")); err != nil {
		return err
	}
	return http.Serve(ln, s.Handler())
}

// startChild starts a store server on dir and returns its API's base URL.
func startChild(t *testing.T, dir string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	_ = os.Remove(filepath.Join(dir, "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var addr string
	nubotest.WaitFor(t, 30*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "addr"))
		addr = string(b)
		return err
	})
	return cmd, "http://" + addr + "/v1/eventstore"
}

// appendVersion appends event eN at version N (expecting N-1) over HTTP;
// it reports whether the store acknowledged it.
func appendVersion(client *http.Client, base string, n int) (bool, error) {
	exp := `"no_stream"`
	if n > 0 {
		exp = fmt.Sprint(n - 1)
	}
	body := fmt.Sprintf(`{"expectedVersion":%s,"events":[{"id":"e%d","type":"Counted","data":{"n":%d}}]}`, exp, n, n)
	resp, err := client.Post(base+"/streams/counter", "application/json", strings.NewReader(body))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return false, fmt.Errorf("append e%d: %s: %s", n, resp.Status, e.Error)
	}
	return true, nil
}

// TestKill9LosesNoAcknowledgedAppend kills the store's process with
// SIGKILL while a client appends as fast as it can, restarts it on the
// same state, retries the append that was in flight, and checks that every
// acknowledged event is there, once, in order.
func TestKill9LosesNoAcknowledgedAppend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, base := startChild(t, dir)
	client := &http.Client{Timeout: 30 * time.Second}

	var mu sync.Mutex
	acked := 0 // events e0 .. e(acked-1) are acknowledged
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			ok, _ := appendVersion(client, base, n)
			if !ok {
				return // the process is gone
			}
			mu.Lock()
			acked = n + 1
			mu.Unlock()
		}
	}()
	nubotest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if acked < 200 {
			return fmt.Errorf("%d appends acknowledged, waiting for 200", acked)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = cmd.Wait()
	mu.Lock()
	n := acked
	mu.Unlock()

	_, base = startChild(t, dir)
	// The append in flight at the kill may or may not have been stored:
	// retried with the same id and version it is stored once either way.
	if ok, err := appendVersion(client, base, n); !ok {
		t.Fatalf("retry of the append in flight: %v", err)
	}
	// The last acknowledged one again, with any: the restarted store
	// knows its id from the stream (sole.go), and does not store it twice.
	resp, body := post(t, base+"/streams/counter", fmt.Sprintf(`{"expectedVersion":"any","events":[{"id":"e%d","type":"Counted","data":{"n":%d}}]}`, n-1, n-1))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"duplicate":true`) {
		t.Fatalf("e%d again with any after the restart: %s %s, want 200 and a duplicate", n-1, resp.Status, body)
	}
	var got []apitype.RecordedEvent
	for from := 0; ; {
		var page apitype.ReadResponse
		if code := getJSON(t, fmt.Sprintf("%s/streams/counter?from=%d&limit=1000", base, from), &page); code != 200 {
			t.Fatalf("read: %d", code)
		}
		got = append(got, page.Events...)
		if page.Next == nil {
			break
		}
		from = int(*page.Next)
	}
	if len(got) != n+1 {
		t.Fatalf("after the kill the stream holds %d events, want the %d acknowledged and the retried one", len(got), n)
	}
	for i, e := range got {
		if e.Version != int64(i) || e.ID != fmt.Sprint("e", i) {
			t.Fatalf("event %d is %s at version %d, want e%d at %d", i, e.ID, e.Version, i, i)
		}
	}
	t.Logf("%d appends acknowledged before kill -9; all there once after restart", n)
}

// TestKill9ProjectionResumesFromCheckpoint holds a projection on a
// failing handler, kills the store's process with SIGKILL, makes the
// handler work and restarts the store on the same state: the handler gets
// every event in order, at least once; after the restart it starts again
// no later than the event it had not taken.
func TestKill9ProjectionResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	m, _ := startReadModel(t)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cmd, base := startChild(t, dir, sinkEnv+"="+srv.URL)
	client := &http.Client{Timeout: 30 * time.Second}
	appendN := func(from, to int) {
		for i := from; i < to; i++ {
			body := fmt.Sprintf(`{"events":[{"id":"e%d","type":"T","data":{"i":%d}}]}`, i, i)
			resp, err := client.Post(fmt.Sprintf("%s/streams/s-%d", base, i%7), "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("append e%d: %s", i, resp.Status)
			}
		}
	}
	const taken, n = 33, 100
	appendN(0, taken)
	waitPositions(t, m, seq(1, taken))
	m.setFailing(true)
	appendN(taken, n)
	// The projection retries the batch after the last it took.
	nubotest.WaitFor(t, 30*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if last := m.batches[len(m.batches)-1]; last[0] != taken+1 {
			return fmt.Errorf("the last delivery started at %d", last[0])
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	m.setFailing(false)
	startChild(t, dir, sinkEnv+"="+srv.URL)
	var got []uint64
	nubotest.WaitFor(t, 60*time.Second, func() error {
		got = m.positions()
		if last := got[len(got)-1]; last != n {
			return fmt.Errorf("the handler has taken up to %d, want %d", last, n)
		}
		return nil
	})
	// 1..taken before the kill, then from a restart point r <= taken+1
	// (the checkpoint is at or behind taken) on to n, each in order.
	if fmt.Sprint(got[:taken]) != fmt.Sprint(seq(1, taken)) {
		t.Fatalf("before the kill the handler took %v", got[:taken])
	}
	after := got[taken:]
	if r := after[0]; r > taken+1 {
		t.Fatalf("after the restart the handler got %d first, having taken up to %d: events skipped", r, taken)
	}
	if fmt.Sprint(after) != fmt.Sprint(seq(int(after[0]), n)) {
		t.Fatalf("after the restart the handler took %v, want %d to %d in order", after, after[0], n)
	}
	t.Logf("resumed at %d after kill -9 (%d events delivered again)", after[0], taken+1-int(after[0]))
}

// seq is from, from+1, ..., to.
func seq(from, to int) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, uint64(i))
	}
	return out
}
