package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/broker"
	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/spec"
)

// eventsSpec has a type with a schema, a queue that dead-letters after one
// delivery, a topic and a rule that both deliver into the queue audit.
const eventsSpec = `name: shop
events:
  UserCreated:
    source: user-service
    schema:
      type: object
      required: [id, email]
      properties:
        id: {type: string}
        email: {type: string, format: email}
queues:
  user-events:
    deadLetter: {queue: user-events-dlq, maxReceive: 1}
  user-events-dlq: {}
  audit: {}
topics:
  notifications:
    subscriptions:
      - endpoint: queue:audit
rules:
  audit-bus:
    filter: {exact: {type: Audited}}
    target: queue:audit
`

// startEventsEngine runs a real broker and events dispatcher for
// eventsSpec, with the platform API mounted on a console as the engine
// mounts it, and returns the console's address.
func startEventsEngine(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	app, err := spec.Parse(filepath.Join(dir, "nubo.yaml"), []byte(eventsSpec))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := broker.New(broker.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	d, err := events.New(events.Config{App: app, Broker: b, DeliveryTimeout: 5 * time.Second, BatchWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last in, first out: the console stops before the
	// dispatcher, the dispatcher before the broker.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop the dispatcher: %v", err)
		}
	})
	e := &testEngine{logs: logs.New(0)}
	srv, err := console.New(console.Config{Addr: "127.0.0.1:0", Backend: e, Logs: e.logs,
		Routes: []console.Route{{Pattern: "/v1/", Handler: d.Handler()}}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv.Addr()
}

// apiCall calls the platform API at addr, fails the test on an answer
// other than want, and decodes a JSON answer into out when it is not nil.
func apiCall(t *testing.T, addr, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

// receiveOne pulls one event from a queue, waiting for it, and acks it.
func receiveOne(t *testing.T, addr, queue string) events.Delivery {
	t.Helper()
	var ans events.DeliveriesResponse
	apiCall(t, addr, http.MethodGet, "/v1/queues/"+queue+"/messages?wait=20s", nil, http.StatusOK, &ans)
	if len(ans.Messages) != 1 {
		t.Fatalf("queue %s: %d messages, want 1", queue, len(ans.Messages))
	}
	apiCall(t, addr, http.MethodPost, "/v1/queues/"+queue+"/messages/"+ans.Messages[0].ID+"/ack", nil, http.StatusNoContent, nil)
	return ans.Messages[0]
}

// runWithStdin runs the command tree in this process with stdin.
func runWithStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestPublishCommand(t *testing.T) {
	t.Parallel()
	addr := startEventsEngine(t)

	// Accepted: the event is in the queue as given, with the type's
	// declared source filled in.
	r := runInProcess(t, "publish", "queue", "user-events", "--addr", addr, "--type", "UserCreated",
		"--subject", "user-1", "--id", "u-1", "--data", `{"id": "user-1", "email": "ada@example.com"}`)
	if r.code != 0 || r.stdout != "published event u-1 to queue user-events, sequence 1\n" || r.stderr != "" {
		t.Fatalf("publish queue:\n%s", r)
	}
	dl := receiveOne(t, addr, "user-events")
	if ev := dl.Event; ev.ID() != "u-1" || ev.Type() != "UserCreated" || ev.Source() != "user-service" || ev.Subject() != "user-1" ||
		string(ev.Data()) != `{"id":"user-1","email":"ada@example.com"}` || ev.DataContentType() != "application/json" {
		t.Errorf("the queue holds %s", ev)
	}

	// The same source and id again: a duplicate, not stored again.
	r = runInProcess(t, "publish", "queue", "user-events", "--addr", addr, "--type", "UserCreated",
		"--id", "u-1", "--data", `{"id": "user-1", "email": "ada@example.com"}`)
	if r.code != 0 || r.stdout != "event u-1 is a duplicate in queue user-events (sequence 1): not stored again\n" {
		t.Errorf("publish a duplicate:\n%s", r)
	}

	// Refused by the schema: the server's message, exit 1.
	r = runInProcess(t, "publish", "queue", "user-events", "--addr", addr, "--type", "UserCreated",
		"--data", `{"id": "user-2", "email": "nope"}`)
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, `nubo: event type "UserCreated" id "`) ||
		!strings.Contains(r.stderr, "data does not match the schema of UserCreated") || !strings.Contains(r.stderr, "/email") {
		t.Errorf("publish data that breaks the schema:\n%s", r)
	}

	// A topic, from a file, with its subscription delivering into audit.
	file := writeFile(t, t.TempDir(), "event.json", `{"from": "file"}`+"\n")
	r = runInProcess(t, "publish", "topic", "notifications", "--addr", addr, "--type", "Noted", "--source", "cli-test", "--data", "@"+file)
	if !regexp.MustCompile(`^published event [0-9a-f-]{36} to topic notifications, sequence 1\n$`).MatchString(r.stdout) || r.code != 0 {
		t.Errorf("publish topic:\n%s", r)
	}
	if ev := receiveOne(t, addr, "audit").Event; ev.Type() != "Noted" || ev.Source() != "cli-test" || string(ev.Data()) != `{"from":"file"}` {
		t.Errorf("the topic's subscription delivered %s", ev)
	}

	// The bus, from stdin, with the rule delivering into audit; and the
	// API's answer as JSON.
	r = runWithStdin(t, `{"from": "stdin"}`, "publish", "event", "--addr", addr, "--type", "Audited", "--id", "b-1", "--data", "-", "-o", "json")
	var ans events.PublishResponse
	if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil || r.code != 0 {
		t.Fatalf("publish event -o json: %v\n%s", err, r)
	}
	if len(ans.Events) != 1 || ans.Events[0].ID != "b-1" || ans.Events[0].Sequence != 1 || ans.Events[0].Duplicate {
		t.Errorf("publish event -o json: %+v", ans)
	}
	if ev := receiveOne(t, addr, "audit").Event; ev.ID() != "b-1" || ev.Source() != "nubo" || string(ev.Data()) != `{"from":"stdin"}` {
		t.Errorf("the rule delivered %s", ev)
	}

	// An event without data.
	if r := runInProcess(t, "publish", "event", "--addr", addr, "--type", "Ping"); r.code != 0 || !strings.HasPrefix(r.stdout, "published event ") {
		t.Errorf("publish without data:\n%s", r)
	}

	// Unknown names: the server lists the known ones.
	r = runInProcess(t, "publish", "queue", "usr-events", "--addr", addr, "--type", "X")
	if r.code != 1 || !strings.Contains(r.stderr, `no queue "usr-events"`) || !strings.Contains(r.stderr, "user-events") {
		t.Errorf("publish to an unknown queue:\n%s", r)
	}
}

// TestPublishUsageErrors: mistakes in the flags are found before the
// engine is asked (nothing listens at the address: an attempt to ask
// would exit 1).
func TestPublishUsageErrors(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	dir := t.TempDir()
	notJSON := writeFile(t, dir, "bad.json", "hello")
	tests := []struct {
		args   []string
		stdin  string
		stderr string
	}{
		{[]string{"publish", "queue", "q", "--data", "{}"}, "", "--type is required"},
		{[]string{"publish", "queue", "q", "--type", "T", "--data", "hello"}, "", `--data "hello" is not JSON`},
		{[]string{"publish", "topic", "t", "--type", "T", "--data", "@" + filepath.Join(dir, "none.json")}, "", "none.json: no such file"},
		{[]string{"publish", "topic", "t", "--type", "T", "--data", "@" + notJSON}, "", "--data @" + notJSON + " is not JSON"},
		{[]string{"publish", "event", "--type", "T", "--data", "-"}, "{", "--data from stdin is not JSON"},
		{[]string{"publish", "queue", "--type", "T"}, "", "accepts 1 arg(s), received 0"},
		{[]string{"publish", "event", "extra", "--type", "T"}, "", `unknown command "extra"`},
		{[]string{"publish", "queue", "q", "--type", "T", "-o", "yaml"}, "", `--output "yaml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runWithStdin(t, tt.stdin, append(tt.args, "--addr", addr)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.stderr) || r.stdout != "" {
				t.Errorf("nubo %v:\n%s\nwant exit 2 and %q on stderr", tt.args, r, tt.stderr)
			}
		})
	}
	if r := runInProcess(t, "publish", "event", "--type", "T", "--addr", addr); r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("no nubo engine is running at %s", addr)) {
		t.Errorf("publish without an engine:\n%s", r)
	}
}
