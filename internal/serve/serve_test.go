package serve_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/broker/brokertest"
	"github.com/nubo-dev/nubo/internal/serve"
	"github.com/nubo-dev/nubo/internal/spec"
)

// TestServeEventStore runs `nubo serve eventstore` against a NATS server
// by URL (the embedded one's TCP listener, a server new enough for the
// store): the store's API answers on the component's listener, and
// /readyz says ready.
func TestServeEventStore(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := brokertest.StartEmbedded(t)

	app := &spec.App{Name: "shop", Namespace: "shop", EventStore: &spec.EventStore{}}
	if _, err := serve.New(serve.Config{App: &spec.App{Name: "shop"}, Components: []string{"eventstore"}, NATSURL: b.ClientURL()}); err == nil ||
		!strings.Contains(err.Error(), "no eventStore section") {
		t.Fatalf("serve eventstore of a spec without one: %v", err)
	}
	s, err := serve.New(serve.Config{App: app, Components: []string{"eventstore"}, NATSURL: b.ClientURL(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	base := "http://" + s.Addr()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	resp, err = http.Post(base+"/v1/eventstore/streams/user-1", "application/json", strings.NewReader(`{"expectedVersion":"no_stream","events":[{"type":"UserCreated"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var res apitype.AppendResponse
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || res.LastVersion != 0 {
		t.Fatalf("append through nubo serve: %d %+v %v", resp.StatusCode, res, err)
	}
}
