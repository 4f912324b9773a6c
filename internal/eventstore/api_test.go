package eventstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
)

func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil, nil, nil, "")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	base := srv.URL + "/v1/eventstore"

	resp, body := post(t, base+"/streams/user-1", `{"expectedVersion":"no_stream","events":[{"id":"e1","type":"UserCreated","data":{"name":"ann"}}]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("append: %s %s", resp.Status, body)
	}
	resp, body = post(t, base+"/streams/user-1", `{"expectedVersion":"no_stream","events":[{"id":"e1","type":"UserCreated","data":{"name":"ann"}}]}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"duplicate":true`) {
		t.Fatalf("retried append: %s %s, want 200 and a duplicate", resp.Status, body)
	}
	resp, body = post(t, base+"/streams/user-1", `{"expectedVersion":5,"events":[{"type":"UserRenamed"}]}`)
	var wv apitype.WrongVersion
	if err := json.Unmarshal(body, &wv); err != nil || resp.StatusCode != http.StatusConflict || wv.CurrentVersion != 0 || wv.Error == "" {
		t.Fatalf("append expecting 5: %s %s, want 409 with currentVersion 0", resp.Status, body)
	}
	resp, body = post(t, base+"/streams/user.1", `{"events":[{"type":"T"}]}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `stream \"user.1\"`) {
		t.Fatalf("append to a bad name: %s %s", resp.Status, body)
	}
	post(t, base+"/streams/user-1", `{"expectedVersion":0,"events":[{"type":"UserRenamed","data":{"name":"bo"}}]}`)

	var read apitype.ReadResponse
	if code := getJSON(t, base+"/streams/user-1?backward=true&limit=1", &read); code != 200 || len(read.Events) != 1 || read.Events[0].Version != 1 || read.Next == nil || *read.Next != 0 {
		t.Fatalf("read backward: %d %+v", code, read)
	}
	var all apitype.ReadResponse
	if code := getJSON(t, base+"/all?streams=user-*&types=UserRenamed", &all); code != 200 || len(all.Events) != 1 || string(all.Events[0].Data) != `{"name":"bo"}` {
		t.Fatalf("read all: %d %+v", code, all)
	}
	var streams apitype.StreamsResponse
	if code := getJSON(t, base+"/streams", &streams); code != 200 || len(streams.Streams) != 1 || streams.Events != 2 {
		t.Fatalf("streams: %d %+v", code, streams)
	}
	var e struct{ Error string }
	if code := getJSON(t, base+"/nope", &e); code != 404 || !strings.Contains(e.Error, "docs/eventstore.md") {
		t.Fatalf("unknown route: %d %+v", code, e)
	}

	// Server-sent events: the two stored, then one appended live; a
	// client resuming with Last-Event-ID starts after it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/subscribe?streams=user-*", nil)
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if ct := sresp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("subscribe: content type %q", ct)
	}
	sc := bufio.NewScanner(sresp.Body)
	nextEvent := func() (id, typ string, ev apitype.RecordedEvent) {
		t.Helper()
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
					t.Fatal(err)
				}
			case line == "" && id != "":
				return id, typ, ev
			}
		}
		t.Fatalf("subscription ended: %v", sc.Err())
		return
	}
	if id, typ, _ := nextEvent(); id != "1" || typ != "UserCreated" {
		t.Fatalf("first event: id %s type %s", id, typ)
	}
	if id, _, _ := nextEvent(); id != "2" {
		t.Fatalf("second event: id %s", id)
	}
	post(t, base+"/streams/user-2", `{"events":[{"id":"live","type":"UserCreated"}]}`)
	if id, _, got := nextEvent(); id != "3" || got.ID != "live" || got.Stream != "user-2" {
		t.Fatalf("live event: id %s %+v", id, got)
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/subscribe", nil)
	req.Header.Set("Last-Event-ID", "2")
	rresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rresp.Body.Close()
	sc = bufio.NewScanner(rresp.Body)
	if id, _, _ := nextEvent(); id != "3" {
		t.Fatalf("resumed after 2: first id %s, want 3", id)
	}
}
