package events_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/events"
	"github.com/nubo-dev/nubo/internal/nubotest"
)

const queueSpec = `
name: q
queues:
  work:
    visibility: 1s
    deadLetter: {queue: work-dlq, maxReceive: 3}
  work-dlq: {}
  other: {}
  ordered:
    type: fifo
    visibility: 2s
    deadLetter: {queue: work-dlq, maxReceive: 2}
`

func TestQueueRedeliversAfterVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
	id := e.publish("/v1/queues/work", map[string]any{"type": "Job"})
	first := e.receive("work", 1, "5s")
	if len(first) != 1 || first[0].Event.ID() != id || first[0].Attempt != 1 {
		t.Fatalf("first receive = %+v, want event %s, attempt 1", first, id)
	}
	// Not acknowledged: invisible until the 1s visibility has passed.
	start := time.Now()
	again := e.receive("work", 1, "10s")
	waited := time.Since(start)
	if len(again) != 1 || again[0].Event.ID() != id || again[0].Attempt != 2 {
		t.Fatalf("second receive = %+v, want event %s again, attempt 2", again, id)
	}
	if waited < 500*time.Millisecond {
		t.Errorf("delivered again after %v, before the visibility timeout", waited)
	}
	e.ack("work", again[0].ID)
	if got := e.receive("work", 1, "0s"); len(got) != 0 {
		t.Errorf("after ack the queue still delivers %+v", got)
	}
	// The first receipt is stale but belongs to the queue: acking it is harmless.
	e.ack("work", first[0].ID)
}

func TestQueueDeadLettersAfterExactlyMaxReceive(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"nack", "timeout"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
			id := e.publish("/v1/queues/work", map[string]any{"type": "Job", "subject": "s"})
			attempts := 0
			for {
				got := e.receive("work", 1, "3s")
				if len(got) == 0 {
					break
				}
				attempts++
				if got[0].Attempt != attempts {
					t.Fatalf("delivery %d says attempt %d", attempts, got[0].Attempt)
				}
				if how == "nack" {
					e.nack("work", got[0].ID, fmt.Sprintf("boom %d", attempts))
				}
				if attempts > 5 {
					t.Fatal("still delivered after 5 attempts")
				}
			}
			if attempts != 3 {
				t.Fatalf("delivered %d times, want exactly maxReceive = 3", attempts)
			}
			wantErr := "boom 3"
			if how == "timeout" {
				wantErr = "not acknowledged within the visibility timeout (1s)"
			}
			var dls []events.DeadLetter
			nubotest.WaitFor(t, 10*time.Second, func() error {
				if dls = e.deadLetters("work"); len(dls) != 1 {
					return fmt.Errorf("%d dead letters, want 1", len(dls))
				}
				return nil
			})
			dl := dls[0]
			if dl.Event.ID() != id || dl.Origin != "queue:work" || dl.Attempts != 3 || dl.LastError != wantErr || dl.Queue != "work-dlq" || dl.At.IsZero() {
				t.Errorf("dead letter = %+v, want event %s from queue:work after 3 attempts with error %q", dl, id, wantErr)
			}
			// The dead-letter queue is a queue: its workers see where the event failed.
			inDLQ := e.receive("work-dlq", 1, "1s")
			if len(inDLQ) != 1 || inDLQ[0].DeadLetter == nil || inDLQ[0].DeadLetter.Origin != "queue:work" || inDLQ[0].DeadLetter.Attempts != 3 {
				t.Fatalf("work-dlq delivers %+v, want the dead letter with its origin", inDLQ)
			}
			e.nack("work-dlq", inDLQ[0].ID, "")
			// show, by name of the queue and of the dead-letter queue.
			var shown struct {
				ID        uint64 `json:"id"`
				LastError string `json:"lastError"`
			}
			for _, name := range []string{"work", "work-dlq", "queue:work"} {
				code, raw := call(t, "GET", fmt.Sprintf("%s/v1/deadletters/%s/%d", e.api, name, dl.ID), nil, nil, &shown)
				if code != http.StatusOK || shown.ID != dl.ID || shown.LastError != wantErr {
					t.Errorf("show %s %d = %d %s", name, dl.ID, code, raw)
				}
			}
			if code, raw := call(t, "GET", e.api+"/v1/deadletters/other", nil, nil, nil); code != http.StatusNotFound || !strings.Contains(raw, "has no deadLetter") {
				t.Errorf("dead letters of a queue without deadLetter = %d %s, want 404", code, raw)
			}
		})
	}
}

func TestQueueRedrive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
	for i := range 3 {
		e.publish("/v1/queues/work", map[string]any{"type": "Job", "id": fmt.Sprintf("job-%d", i)})
	}
	for range 3 { // every attempt of every event fails
		for _, d := range e.receive("work", 10, "3s") {
			e.nack("work", d.ID, "failed")
		}
	}
	var dls []events.DeadLetter
	nubotest.WaitFor(t, 10*time.Second, func() error {
		if dls = e.deadLetters("work"); len(dls) != 3 {
			return fmt.Errorf("%d dead letters, want 3", len(dls))
		}
		return nil
	})

	// One back into its queue, one to another queue.
	var out events.RedriveResponse
	code, raw := call(t, "POST", e.api+"/v1/deadletters/work/redrive", nil, fmt.Appendf(nil, `{"ids": [%d]}`, dls[0].ID), &out)
	if code != http.StatusOK || len(out.Redriven) != 1 || out.Redriven[0].To != "queue work" || out.Redriven[0].EventID != dls[0].Event.ID() {
		t.Fatalf("redrive = %d %s", code, raw)
	}
	back := e.receive("work", 10, "3s")
	if len(back) != 1 || back[0].Event.ID() != dls[0].Event.ID() || back[0].Attempt != 1 || back[0].DeadLetter != nil {
		t.Fatalf("after redrive the queue delivers %+v, want %s as a fresh event", back, dls[0].Event.ID())
	}
	e.ack("work", back[0].ID)
	code, raw = call(t, "POST", e.api+"/v1/deadletters/work/redrive", nil, fmt.Appendf(nil, `{"ids": [%d], "to": "other"}`, dls[1].ID), &out)
	if code != http.StatusOK || out.Redriven[0].To != "queue other" {
		t.Fatalf("redrive --to other = %d %s", code, raw)
	}
	if got := e.receive("other", 10, "3s"); len(got) != 1 || got[0].Event.ID() != dls[1].Event.ID() {
		t.Fatalf("queue other delivers %+v, want %s", got, dls[1].Event.ID())
	}
	// Errors: an unknown id moves nothing; unknown --to; nothing named.
	for _, tc := range []struct{ body, want string }{
		{fmt.Sprintf(`{"ids": [%d, 999]}`, dls[2].ID), `queue "work" has no dead letter 999`},
		{`{"all": true, "to": "nope"}`, `no queue "nope"`},
		{`{}`, `name the dead letters`},
	} {
		code, raw := call(t, "POST", e.api+"/v1/deadletters/work/redrive", nil, []byte(tc.body), nil)
		if code < 400 || !strings.Contains(errorOf(raw), tc.want) {
			t.Errorf("redrive %s = %d %s, want an error with %q", tc.body, code, raw, tc.want)
		}
	}
	if left := e.deadLetters("work"); len(left) != 1 || left[0].ID != dls[2].ID {
		t.Fatalf("dead letters left = %+v, want only %d", left, dls[2].ID)
	}
	// --all
	code, raw = call(t, "POST", e.api+"/v1/deadletters/work/redrive", nil, []byte(`{"all": true}`), &out)
	if code != http.StatusOK || len(out.Redriven) != 1 {
		t.Fatalf("redrive all = %d %s", code, raw)
	}
	if left := e.deadLetters("work"); len(left) != 0 {
		t.Errorf("dead letters after redrive all = %+v", left)
	}
}

func TestFifoOrderPerSubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
	subjects := []string{"a", "b", "c"}
	const perSubject = 20
	var published []string
	for i := range perSubject {
		for _, s := range subjects {
			published = append(published, e.publish("/v1/queues/ordered", map[string]any{"type": "Step", "subject": s, "id": fmt.Sprintf("%s-%02d", s, i)}))
		}
	}
	// One receive sees one event per subject: the head of each.
	heads := e.receive("ordered", 10, "2s")
	var headIDs []string
	for _, d := range heads {
		headIDs = append(headIDs, d.Event.ID())
	}
	slices.Sort(headIDs)
	if !slices.Equal(headIDs, []string{"a-00", "b-00", "c-00"}) {
		t.Fatalf("first receive = %v, want the head of each subject", headIDs)
	}
	// A nacked head comes back before anything behind it.
	for _, d := range heads {
		e.nack("ordered", d.ID, "retry")
	}

	// Workers in parallel, each taking what it gets and acknowledging
	// after a random pause; sometimes giving an event back.
	var (
		mu       sync.Mutex
		acked    = map[string][]string{}
		inFlight = map[string]int{}
		problems []string
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for ctx.Err() == nil {
				mu.Lock()
				done := len(acked["a"])+len(acked["b"])+len(acked["c"]) == len(published)
				mu.Unlock()
				if done {
					return
				}
				ds, err := e.d.Receive(ctx, "ordered", 3, 300*time.Millisecond)
				if err != nil {
					return
				}
				for _, d := range ds {
					s := d.Event.Subject()
					mu.Lock()
					if inFlight[s]++; inFlight[s] > 1 {
						problems = append(problems, fmt.Sprintf("two events of subject %s in flight", s))
					}
					mu.Unlock()
					time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond) // the worker's work
					mu.Lock()
					inFlight[s]--
					mu.Unlock()
					if rng.IntN(5) == 0 && d.Attempt == 1 {
						if err := e.d.Nack(ctx, "ordered", d.ID, "flaky", 0); err != nil {
							t.Error(err)
						}
						continue
					}
					mu.Lock()
					acked[s] = append(acked[s], d.Event.ID())
					mu.Unlock()
					if err := e.d.Ack(ctx, "ordered", d.ID); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Errorf("fifo broken: %v", problems[:min(5, len(problems))])
	}
	for _, s := range subjects {
		var want []string
		for i := range perSubject {
			want = append(want, fmt.Sprintf("%s-%02d", s, i))
		}
		if !slices.Equal(acked[s], want) {
			t.Errorf("subject %s acknowledged in order %v, want %v", s, acked[s], want)
		}
	}
}

func TestReceiveRefusesForeignReceipts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
	e.publish("/v1/queues/work", map[string]any{"type": "Job"})
	d := e.receive("work", 1, "2s")
	if len(d) != 1 {
		t.Fatal("nothing received")
	}
	for _, tc := range []struct{ queue, id string }{
		{"other", d[0].ID},               // another queue's receipt
		{"work", "not-base64!"},          // garbage
		{"work", "JEpTLkFDSy4qLiou"},     // "$JS.ACK.*.*." wildcards
		{"work", "Zm9vLmJhciBzdWJqZWN0"}, // "foo.bar subject": not an ack subject
	} {
		code, raw := call(t, "POST", fmt.Sprintf("%s/v1/queues/%s/messages/%s/ack", e.api, tc.queue, tc.id), nil, nil, nil)
		if code != http.StatusBadRequest || !strings.Contains(raw, "invalid delivery id") {
			t.Errorf("ack %s on %s = %d %s, want 400", tc.id, tc.queue, code, raw)
		}
	}
	for _, q := range []string{"max=0", "max=101", "wait=2m", "wait=x"} {
		if code, raw := call(t, "GET", e.api+"/v1/queues/work/messages?"+q, nil, nil, nil); code != http.StatusBadRequest {
			t.Errorf("receive ?%s = %d %s, want 400", q, code, raw)
		}
	}
	e.ack("work", d[0].ID)
}

func TestQueueDepthsAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, queueSpec, nil), envOpt{})
	for range 3 {
		e.publish("/v1/queues/other", map[string]any{"type": "Job"})
	}
	d := e.receive("other", 1, "2s")
	if len(d) != 1 {
		t.Fatal("nothing received")
	}
	var out events.QueuesResponse
	if code, raw := call(t, "GET", e.api+"/v1/queues", nil, nil, &out); code != http.StatusOK {
		t.Fatalf("GET /v1/queues = %d %s", code, raw)
	}
	i := slices.IndexFunc(out.Queues, func(q events.QueueStatus) bool { return q.Name == "other" })
	if i < 0 {
		t.Fatalf("queues = %+v, want other", out.Queues)
	}
	if q := out.Queues[i]; q.Messages != 3 || q.Waiting != 2 || q.InFlight != 1 || q.Type != "standard" {
		t.Errorf("queue other = %+v, want 3 stored, 2 waiting, 1 in flight", q)
	}
	if q := out.Queues[slices.IndexFunc(out.Queues, func(q events.QueueStatus) bool { return q.Name == "work" })]; q.DeadLetterQueue != "work-dlq" {
		t.Errorf("queue work = %+v, want its dead-letter queue", q)
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"nubo_events_pending", 3},
		{"nubo_events_consumer_lag", 2},
		{"nubo_events_in_flight", 1},
		{"nubo_events_delivered_total", 1},
		{"nubo_events_acked_total", 0},
	} {
		if got := counter(t, e, c.name, "queue", "other", ""); got != c.want {
			t.Errorf("%s{queue other} = %v, want %v", c.name, got, c.want)
		}
	}
	if got := counter(t, e, "nubo_events_published_total", "queue", "other", ""); got != 3 {
		t.Errorf("published = %v, want 3", got)
	}
	e.ack("other", d[0].ID)
	if got := counter(t, e, "nubo_events_acked_total", "queue", "other", ""); got != 1 {
		t.Errorf("acked = %v, want 1", got)
	}
}

func TestDeadLetterEventFromAFunction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, parseSpec(t, `
name: fn
functions:
  mailer: {run: "true", deadLetter: mailer-dlq}
queues:
  mailer-dlq: {}
  retry: {}
`, nil), envOpt{})
	ev := cloudevents.New()
	ev.SetType("Mail")
	ev.SetSource("/x")
	ev.SetID("m1")
	ctx := context.Background()
	for range 2 { // repeated after a crash: stored once
		if err := e.d.DeadLetterEvent(ctx, "mailer-dlq", "function:mailer", &ev, 4, "500 from the function"); err != nil {
			t.Fatal(err)
		}
	}
	dls := e.deadLetters("mailer-dlq")
	if len(dls) != 1 || dls[0].Origin != "function:mailer" || dls[0].Attempts != 4 || dls[0].LastError != "500 from the function" || dls[0].Event.ID() != "m1" {
		t.Fatalf("dead letters = %+v", dls)
	}
	code, raw := call(t, "POST", e.api+"/v1/deadletters/mailer-dlq/redrive", nil, []byte(`{"all": true}`), nil)
	if code != http.StatusBadRequest || !strings.Contains(errorOf(raw), "redrive it to a queue") {
		t.Errorf("redrive without to = %d %s, want an error asking for a queue", code, raw)
	}
	code, raw = call(t, "POST", e.api+"/v1/deadletters/mailer-dlq/redrive", nil, []byte(`{"all": true, "to": "retry"}`), nil)
	if code != http.StatusOK {
		t.Fatalf("redrive to retry = %d %s", code, raw)
	}
	if got := e.receive("retry", 1, "2s"); len(got) != 1 || got[0].Event.ID() != "m1" {
		t.Errorf("retry delivers %+v", got)
	}
	if err := e.d.DeadLetterEvent(ctx, "nope", "function:mailer", &ev, 1, "x"); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("DeadLetterEvent to an unknown queue = %v, want ErrNotFound", err)
	}
}
