package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/eventstore"
	"github.com/nubo-dev/nubo/internal/functions"
	"github.com/nubo-dev/nubo/internal/spec"
)

// startEventStore serves a real event store's API on a loopback port and
// returns its address.
func startEventStore(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := brokertest.StartEmbedded(t)
	// A service that takes every delivery, for replay.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(sink.Close)
	s, err := eventstore.New(eventstore.Config{App: &spec.App{Name: "shop", EventStore: &spec.EventStore{}}, Broker: b, Handlers: sinkHandlers{sink.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// sinkHandlers reaches every service at one URL; there are no functions.
type sinkHandlers struct{ url string }

func (h sinkHandlers) ServiceURL(string) (string, error) { return h.url, nil }
func (h sinkHandlers) DeliverToFunction(context.Context, string, []*event.Event) error {
	return errors.New("no functions here")
}
func (h sinkHandlers) Invoke(context.Context, string, event.Event) (functions.Result, error) {
	return functions.Result{}, errors.New("no functions here")
}

func TestEventStoreCommands(t *testing.T) {
	t.Parallel()
	addr := startEventStore(t)
	r := runInProcess(t, "eventstore", "append", "user-42", "--type", "UserCreated", "--data", `{"name":"Ann"}`, "--expected-version", "no_stream", "--id", "e1", "--addr", addr)
	if r.code != 0 || r.stdout != "user-42: version 0 (position 1)\n" {
		t.Fatalf("append:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "append", "user-42", "--type", "UserCreated", "--data", `{"name":"Ann"}`, "--expected-version", "no_stream", "--id", "e1", "--addr", addr)
	if r.code != 0 || r.stdout != "user-42: already stored at version 0 (position 1)\n" {
		t.Fatalf("append again:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "append", "user-42", "--type", "UserRenamed", "--expected-version", "5", "--addr", addr)
	if r.code == 0 || !strings.Contains(r.stderr, "expected version 5, but the stream is at version 0") {
		t.Fatalf("append with a wrong version:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "append", "user-42", "--type", "UserRenamed", "--data", `{"name":"Bo"}`, "--expected-version", "0", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("append at 0:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "read", "user-42", "--addr", addr)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^VERSION +POSITION +TIME +TYPE +ID +DATA\n`),
		regexp.MustCompile(`(?m)^0 +1 +\S+ +UserCreated +e1 +\{"name":"Ann"\}$`),
		regexp.MustCompile(`(?m)^1 +2 +\S+ +UserRenamed +\S+ +\{"name":"Bo"\}$`),
	} {
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("read does not match %s:\n%s", want, r)
		}
	}
	r = runInProcess(t, "eventstore", "read", "user-42", "--backward", "--limit", "1", "-o", "json", "--addr", addr)
	if r.code != 0 || !strings.Contains(r.stdout, `"version": 1`) || strings.Contains(r.stdout, `"version": 0`) {
		t.Errorf("read --backward --limit 1 -o json:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "streams", "--addr", addr)
	if r.code != 0 || !regexp.MustCompile(`(?m)^user-42 +1 +2 `).MatchString(r.stdout) || !strings.Contains(r.stdout, "1 streams, 2 events") {
		t.Errorf("streams:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "append", "user-42", "--addr", addr)
	if r.code != 2 {
		t.Errorf("append without --type:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "replay", "--target", "service:sink/x", "--types", "UserRenamed", "--batch", "5", "--addr", addr)
	if r.code != 0 || r.stdout != "replayed 1 events in 1 batches to service:sink/x; 0 batches failed\n" {
		t.Errorf("replay:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "replay", "--target", "service:sink/x", "--from", "yesterday", "--addr", addr)
	if r.code != 2 {
		t.Errorf("replay --from yesterday:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "replay", "--target", "queue:jobs", "--addr", addr)
	if r.code == 0 || !strings.Contains(r.stderr, "want function:NAME or service:NAME/path") {
		t.Errorf("replay to a queue:\n%s", r)
	}
	r = runInProcess(t, "eventstore", "projections", "--addr", addr)
	if r.code != 0 || r.stdout != "no projections\n" {
		t.Errorf("projections:\n%s", r)
	}
}
