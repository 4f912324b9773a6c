package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

// The crash test runs the broker and the dispatcher in a child process
// (this test binary, run again as TestCrashChild), kills it with SIGKILL
// while events are being published and delivered, starts it again on the
// same state directory, and checks that every publish that was
// acknowledged is delivered.

const crashSpec = `
name: crash
queues:
  work: {visibility: 2s}
topics:
  news:
    subscriptions:
      - endpoint: {{sink}}/news
`

const (
	envChildState = "NUBO_EVENTS_CRASH_STATE"
	envChildSink  = "NUBO_EVENTS_CRASH_SINK"
	envChildAddr  = "NUBO_EVENTS_CRASH_ADDR"
)

// TestCrashChild is the child process of TestAtLeastOnceAcrossKill; run
// alone it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envChildState)
	if dir == "" {
		t.Skip("the child process of TestAtLeastOnceAcrossKill")
	}
	app := parseSpec(t, crashSpec, map[string]string{"sink": os.Getenv(envChildSink)})
	b, err := broker.New(broker.Config{StateDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(app, b)
	cfg.DeliveryTimeout = time.Second
	d, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrFile := os.Getenv(envChildAddr)
	if err := os.WriteFile(addrFile+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		t.Fatal(err)
	}
	_ = http.Serve(ln, d.Handler()) // until killed
}

// child is a running TestCrashChild.
type child struct {
	cmd    *exec.Cmd
	api    string
	exited chan error
}

func startChild(t *testing.T, state, sinkURL string) *child {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildState+"="+state, envChildSink+"="+sinkURL, envChildAddr+"="+addrFile)
	if os.Getenv("NUBO_TEST_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := &child{cmd: cmd, exited: exited}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	nubotest.WaitFor(t, 60*time.Second, func() error {
		select {
		case err := <-exited:
			t.Fatalf("child exited: %v", err)
		default:
		}
		data, err := os.ReadFile(addrFile)
		if err != nil {
			return err
		}
		c.api = "http://" + string(data)
		return nil
	})
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.exited
}

func TestAtLeastOnceAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Parallel()
	var mu sync.Mutex
	delivered := map[string]int{}
	slow := true
	s := newSink(t, func(r sinkRequest, _ int) int {
		mu.Lock()
		pause := slow
		mu.Unlock()
		if pause { // the first child dies with deliveries in flight
			time.Sleep(200 * time.Millisecond)
		}
		mu.Lock()
		delivered[r.ceID()]++
		mu.Unlock()
		return http.StatusOK
	})
	state := t.TempDir()
	first := startChild(t, state, s.url)

	// Publishers run until the child dies under them.
	var (
		ackMu      sync.Mutex
		ackedTopic []string
		ackedQueue []string
		wg         sync.WaitGroup
		killOnce   sync.Once
		killed     = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				path := "/v1/topics/news"
				if i%2 == 1 {
					path = "/v1/queues/work"
				}
				body, _ := json.Marshal(map[string]any{"type": "Crash", "id": id, "data": map[string]int{"i": i}})
				resp, err := http.Post(first.api+path, "application/cloudevents+json", bytes.NewReader(body))
				if err != nil {
					return // the child is gone
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					continue
				}
				ackMu.Lock()
				if path == "/v1/queues/work" {
					ackedQueue = append(ackedQueue, id)
				} else {
					ackedTopic = append(ackedTopic, id)
				}
				n := len(ackedQueue) + len(ackedTopic)
				ackMu.Unlock()
				if n >= 400 {
					killOnce.Do(func() {
						first.kill(t)
						close(killed)
					})
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("publishing 400 events took over a minute")
	}
	wg.Wait()
	ackMu.Lock()
	topicIDs, queueIDs := append([]string(nil), ackedTopic...), append([]string(nil), ackedQueue...)
	ackMu.Unlock()
	mu.Lock()
	before := len(delivered)
	slow = false
	mu.Unlock()
	t.Logf("killed after %d acknowledged publishes; %d of %d topic events delivered before the kill", len(topicIDs)+len(queueIDs), before, len(topicIDs))
	if before >= len(topicIDs) {
		t.Fatal("every topic event was delivered before the kill: the test tests nothing")
	}

	second := startChild(t, state, s.url)
	// Every acknowledged topic event reaches the subscription...
	nubotest.WaitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for _, id := range topicIDs {
			if delivered[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d acknowledged topic events not delivered, e.g. %s", len(missing), strings.Join(missing[:min(3, len(missing))], ", "))
		}
		return nil
	})
	// ... and every acknowledged queue event is in the queue.
	inQueue := map[string]bool{}
	nubotest.WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(second.api + "/v1/queues/work/messages?max=100&wait=1s")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var raw struct {
			Messages []struct {
				ID    string          `json:"id"`
				Event json.RawMessage `json:"event"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			return err
		}
		for _, m := range raw.Messages {
			inQueue[decodeStructured(t, m.Event).ID()] = true
			if code, body := call(t, "POST", second.api+"/v1/queues/work/messages/"+m.ID+"/ack", nil, nil, nil); code != http.StatusNoContent {
				return fmt.Errorf("ack: %d %s", code, body)
			}
		}
		var missing int
		for _, id := range queueIDs {
			if !inQueue[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged queue events not received", missing, len(queueIDs))
		}
		return nil
	})
}
