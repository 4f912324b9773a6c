package sdk

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// apiServer is a stand-in for the platform API's publishing routes: it
// reads each request as the HTTP binding says, and refuses what it is told
// to.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex
	got  []string // "POST /path type"
	last event.Event
}

func newAPI(t *testing.T) *apiServer {
	a := &apiServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, `{"error":"not a CloudEvent"}`, http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.got = append(a.got, r.Method+" "+r.URL.Path+" "+e.Type())
		a.last = *e
		a.mu.Unlock()
		switch {
		case e.Type() == "refused":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"data: missing property email"}`)
		case strings.HasSuffix(r.URL.Path, "/invoke"):
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Nubo-Cold-Start", "true")
			w.Header().Set("Nubo-Duration-Ms", "1.5")
			io.WriteString(w, `{"ok":true}`)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func TestClient(t *testing.T) {
	t.Setenv("NUBO_FUNCTION", "")
	t.Setenv("NUBO_SERVICE", "users")
	api := newAPI(t)
	t.Setenv(APIEnv, api.URL)
	c, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := NewEvent("com.shop.user.created", map[string]string{"email": "ada@shop.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() == "" || e.Time().IsZero() || e.Source() != "users" || e.DataContentType() != event.ApplicationJSON {
		t.Errorf("NewEvent: %s", e)
	}
	for _, send := range []func() error{
		func() error { return c.Publish(ctx, e) },
		func() error { return c.SendToQueue(ctx, "user events", e) },
		func() error { return c.PublishToTopic(ctx, "notify", e) },
	} {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Invoke(ctx, "send-welcome", e)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"ok":true}` || !res.ColdStart || res.Duration.Microseconds() != 1500 || res.Status != 200 {
		t.Errorf("Invoke: %+v", res)
	}
	api.mu.Lock()
	got := strings.Join(api.got, "\n")
	var data map[string]string
	_ = json.Unmarshal(api.last.Data(), &data)
	api.mu.Unlock()
	want := strings.Join([]string{
		"POST /v1/events com.shop.user.created",
		"POST /v1/queues/user events com.shop.user.created",
		"POST /v1/topics/notify com.shop.user.created",
		"POST /v1/functions/send-welcome/invoke com.shop.user.created",
	}, "\n")
	if got != want || data["email"] != "ada@shop.localhost" {
		t.Errorf("the API got:\n%s\nwant:\n%s\ndata %v", got, want, data)
	}

	refused, _ := NewEvent("refused", nil)
	err = c.Publish(ctx, refused)
	if !IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "data: missing property email") {
		t.Errorf("a refused publish: %v, want an APIError 400 with the API's message", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	t.Setenv(APIEnv, "")
	if _, err := NewClient(); err == nil || !strings.Contains(err.Error(), "NUBO_API is not set") {
		t.Errorf("NewClient without NUBO_API: %v", err)
	}
	if _, err := NewClientFor("localhost:4500", nil); err == nil {
		t.Error("NewClientFor accepted a URL without a scheme")
	}
}

func TestServiceURL(t *testing.T) {
	t.Setenv("NUBO_SERVICE_ORDERS_V2_URL", "http://127.0.0.1:5001/")
	if got := ServiceURL("orders-v2"); got != "http://127.0.0.1:5001" {
		t.Errorf("ServiceURL with a mesh listener = %q", got)
	}
	if got := ServiceURL("users"); got != "http://users" {
		t.Errorf("ServiceURL = %q, want http://users", got)
	}
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(b))
	}))
	t.Cleanup(users.Close)
	t.Setenv("NUBO_SERVICE_USERS_URL", users.URL)
	resp, err := CallService(context.Background(), http.MethodPost, "users", "/users", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `POST /users application/json {"a":"b"}` {
		t.Errorf("CallService reached the service with %q", b)
	}
}
