package functions

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

const retrySpec = `
functions:
  crashy:
    run: FNBIN
    retry: {attempts: 2, backoff: 10ms}
    deadLetter: dlq
  nodlq:
    run: FNBIN
    retry: {attempts: 1, backoff: 10ms}
  flaky:
    run: FNBIN
    retry: {attempts: 3, backoff: 10ms}
    deadLetter: dlq
queues:
  dlq: {}
`

// TestCrashRetriesThenDeadLetter: an instance that crashes mid-invocation
// fails it with the exit code and its last words; the delivery is retried
// retry.attempts times (each on a new instance), then the event goes to the
// dead-letter queue with the error.
func TestCrashRetriesThenDeadLetter(t *testing.T) {
	t.Parallel()
	fx := start(t, retrySpec)
	e := ev("crash", nil)
	_, err := fx.Deliver(context.Background(), "crashy", e)
	if !errors.Is(err, ErrDeadLettered) || !errors.Is(err, ErrCrashed) {
		t.Fatalf("delivery to a crashing function: %v; want ErrDeadLettered and ErrCrashed", err)
	}
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || de.DeadLetterQueue != "dlq" {
		t.Errorf("delivery error %#v, want 3 attempts dead-lettered to dlq", de)
	}
	dls := fx.dead.all()
	if len(dls) != 1 {
		t.Fatalf("%d events dead-lettered, want 1", len(dls))
	}
	dl := dls[0]
	if dl.Queue != "dlq" || dl.Function != "crashy" || dl.Attempts != 3 || dl.Event.ID() != e.ID() ||
		!strings.Contains(dl.Error, "exited with code 3 mid-invocation") || !strings.Contains(dl.Error, "crashing on purpose") {
		t.Errorf("dead letter %+v; want the event %s from crashy after 3 attempts, with the exit code and output", dl, e.ID())
	}
	st := fx.status(t, "crashy")
	if st.ColdStarts != 3 || st.Errors != 3 || st.Invocations != 3 {
		t.Errorf("status: %d cold starts, %d errors, %d invocations; want 3 each (one instance per attempt)", st.ColdStarts, st.Errors, st.Invocations)
	}
	if got := fx.counter(t, "nubo_function_retries_total", map[string]string{"function": "crashy"}); got != 2 {
		t.Errorf("nubo_function_retries_total = %v, want 2", got)
	}
	if got := fx.counter(t, "nubo_function_dead_letters_total", map[string]string{"function": "crashy"}); got != 1 {
		t.Errorf("nubo_function_dead_letters_total = %v, want 1", got)
	}
	if got := fx.counter(t, "nubo_function_errors_total", map[string]string{"function": "crashy", "reason": "crashed"}); got != 3 {
		t.Errorf(`nubo_function_errors_total{reason="crashed"} = %v, want 3`, got)
	}
}

// TestDeliver covers the other outcomes of a delivery.
func TestDeliver(t *testing.T) {
	t.Parallel()
	fx := start(t, retrySpec)

	t.Run("retry succeeds", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "tries")
		res, err := fx.Deliver(context.Background(), "flaky", ev("flaky", map[string]any{"file": file, "until": 3}))
		if err != nil {
			t.Fatalf("delivery that succeeds on the third attempt: %v", err)
		}
		var a answer
		if err := json.Unmarshal(res.Body, &a); err != nil || a.Tries != 3 {
			t.Errorf("answer %s (%v), want tries 3", res.Body, err)
		}
	})
	t.Run("function error without dead letter", func(t *testing.T) {
		t.Parallel()
		_, err := fx.Deliver(context.Background(), "nodlq", ev("fail", nil))
		var de *DeliveryError
		if !errors.As(err, &de) || errors.Is(err, ErrDeadLettered) || de.Attempts != 2 || !errors.Is(err, ErrFunction) {
			t.Fatalf("failing delivery without deadLetter: %v; want a DeliveryError after 2 attempts, not dead-lettered", err)
		}
		if HTTPStatus(de.Last) != 422 || !strings.Contains(err.Error(), "failing on purpose") {
			t.Errorf("last error %v (status %d), want the function's 422 and message", de.Last, HTTPStatus(de.Last))
		}
	})
	t.Run("bad event not retried", func(t *testing.T) {
		t.Parallel()
		e := event.New()
		e.SetType("echo") // no source
		_, err := fx.Deliver(context.Background(), "crashy", e)
		if !errors.Is(err, ErrBadEvent) {
			t.Errorf("delivery of an invalid event: %v, want ErrBadEvent", err)
		}
	})
	t.Run("for the events component", func(t *testing.T) {
		t.Parallel()
		a, b := ev("crash", nil), ev("crash", nil)
		if err := fx.DeliverToFunction(context.Background(), "crashy", []*event.Event{&a, &b}); err != nil {
			t.Errorf("a batch that ends dead-lettered: %v, want nil (the events are safe)", err)
		}
		e := ev("fail", nil)
		if err := fx.DeliverToFunction(context.Background(), "nodlq", []*event.Event{&e}); !errors.Is(err, ErrFunction) {
			t.Errorf("a failure without deadLetter: %v, want the error back", err)
		}
		var ids []string
		for _, dl := range fx.dead.all() {
			ids = append(ids, dl.Event.ID())
		}
		if !slices.Contains(ids, a.ID()) || !slices.Contains(ids, b.ID()) {
			t.Errorf("dead letters %v, want both events of the batch", ids)
		}
	})
	t.Run("unknown function", func(t *testing.T) {
		t.Parallel()
		_, err := fx.Deliver(context.Background(), "crashi", ev("echo", nil))
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `did you mean "crashy"?`) {
			t.Errorf("delivery to an unknown function: %v, want ErrNotFound with a suggestion", err)
		}
	})
}

// TestBatch: a batch reaches the function as a JSON array in structured
// mode; the SDK answers with the array of results.
func TestBatch(t *testing.T) {
	t.Parallel()
	fx := start(t, `
functions:
  fn:
    run: FNBIN
`)
	events := []event.Event{ev("echo", map[string]int{"n": 1}), ev("echo", map[string]int{"n": 2}), ev("echo", map[string]int{"n": 3})}
	res, err := fx.InvokeBatch(context.Background(), "fn", events)
	if err != nil {
		t.Fatal(err)
	}
	var answers []answer
	if err := json.Unmarshal(res.Body, &answers); err != nil {
		t.Fatalf("batch answer %s: %v", res.Body, err)
	}
	if len(answers) != 3 {
		t.Fatalf("%d results, want 3", len(answers))
	}
	for i, a := range answers {
		if a.ID != events[i].ID() || a.Data != `{"n":`+string(rune('1'+i))+`}` {
			t.Errorf("result %d: id %s data %s; want the event %s in order", i, a.ID, a.Data, events[i].ID())
		}
	}

	// A failing event fails the whole batch, which a trigger retries.
	events[1] = ev("fail", nil)
	if _, err := fx.InvokeBatch(context.Background(), "fn", events); !errors.Is(err, ErrFunction) {
		t.Errorf("batch with a failing event: %v, want ErrFunction", err)
	}
}
