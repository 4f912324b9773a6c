package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

func newEvent(id, typ string, data any) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("test")
	e.SetType(typ)
	if data != nil {
		_ = e.SetData(event.ApplicationJSON, data)
	}
	return e
}

// handler answers by the event's type, to show each kind of result.
func handler(ctx context.Context, e event.Event) (any, error) {
	switch e.Type() {
	case "json":
		var in map[string]any
		if err := e.DataAs(&in); err != nil {
			return nil, err
		}
		return map[string]any{"id": e.ID(), "in": in}, nil
	case "nil":
		return nil, nil
	case "text":
		return "plain", nil
	case "bytes":
		return []byte{1, 2}, nil
	case "response":
		return &Response{Status: http.StatusCreated, Header: http.Header{"Location": {"/x/1"}}, Body: map[string]int{"n": 1}}, nil
	case "error":
		return nil, errors.New("it broke")
	case "bad":
		return nil, Errorf(http.StatusUnprocessableEntity, "event %s is bad", e.ID())
	case "panic":
		panic("oh no")
	case "deadline":
		d, ok := ctx.Deadline()
		return map[string]any{"ok": ok, "deadline": d.UTC().Format(time.RFC3339)}, nil
	}
	return nil, Errorf(http.StatusBadRequest, "unknown type %s", e.Type())
}

func TestHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler(handler))
	t.Cleanup(srv.Close)
	send := func(t *testing.T, e event.Event, header http.Header) (*http.Response, string) {
		t.Helper()
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	tests := []struct {
		typ, body, contentType string
		status                 int
	}{
		{"json", `{"id":"e1","in":{"a":1}}` + "\n", "application/json", 200},
		{"nil", "", "", 204},
		{"text", "plain", "text/plain; charset=utf-8", 200},
		{"bytes", "\x01\x02", "application/octet-stream", 200},
		{"response", `{"n":1}` + "\n", "application/json", 201},
		{"error", `{"error":"it broke"}` + "\n", "application/json", 500},
		{"bad", `{"error":"event e1 is bad"}` + "\n", "application/json", 422},
		{"panic", `{"error":"handler panicked: oh no"}` + "\n", "application/json", 500},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			resp, body := send(t, newEvent("e1", tt.typ, map[string]int{"a": 1}), nil)
			if resp.StatusCode != tt.status || body != tt.body || resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("%s: %d %q (%s), want %d %q (%s)", tt.typ, resp.StatusCode, body, resp.Header.Get("Content-Type"), tt.status, tt.body, tt.contentType)
			}
		})
	}
	t.Run("response headers", func(t *testing.T) {
		resp, _ := send(t, newEvent("e1", "response", nil), nil)
		if resp.Header.Get("Location") != "/x/1" {
			t.Errorf("Location %q", resp.Header.Get("Location"))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		d := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		_, body := send(t, newEvent("e1", "deadline", nil), http.Header{DeadlineHeader: {d.Format(time.RFC3339Nano)}})
		var got struct {
			OK       bool   `json:"ok"`
			Deadline string `json:"deadline"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || !got.OK || got.Deadline != d.Format(time.RFC3339) {
			t.Errorf("deadline answer %s, want %s", body, d.Format(time.RFC3339))
		}
	})
	t.Run("batch", func(t *testing.T) {
		events := []event.Event{newEvent("b1", "json", map[string]int{"a": 1}), newEvent("b2", "text", nil)}
		req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), srv.URL, events)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != `[{"id":"b1","in":{"a":1}},"plain"]`+"\n" {
			t.Errorf("batch: %d %s", resp.StatusCode, b)
		}
		events[1] = newEvent("b2", "bad", nil)
		req, _ = cehttp.NewHTTPRequestFromEvents(context.Background(), srv.URL, events)
		resp, err = srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != 422 || !strings.Contains(string(b), "event b2: event b2 is bad") {
			t.Errorf("batch with a bad event: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("not a CloudEvent", func(t *testing.T) {
		resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a body without CloudEvents attributes: %s, want 400", resp.Status)
		}
		resp, err = srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %s, want 405", resp.Status)
		}
	})
}

// TestServe: Serve answers on its address until its context ends, then
// returns.
func TestServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, handler) }()
	nubotest.WaitFor(t, 10*time.Second, func() error {
		req, _ := cehttp.NewHTTPRequestFromEvent(context.Background(), "http://"+addr, newEvent("s1", "text", nil))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestReadHTTPRequest(t *testing.T) {
	t.Parallel()
	e := newEvent("h1", HTTPRequestType, HTTPRequest{Method: "GET", Path: "/x", Body: "aGk=", IsBase64Encoded: true})
	r, err := ReadHTTPRequest(e)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.BodyBytes(); err != nil || string(b) != "hi" || r.Method != "GET" {
		t.Errorf("request %+v, body %q (%v)", r, b, err)
	}
	if _, err := ReadHTTPRequest(newEvent("h2", "other", nil)); err == nil {
		t.Error("an event of another type read as an HTTP request")
	}
}
