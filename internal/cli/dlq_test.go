package cli

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/events"
)

// deadLetter publishes an event to user-events (maxReceive 1), receives it
// and nacks it with reason: it moves to user-events-dlq.
func deadLetter(t *testing.T, addr, id, reason string) {
	t.Helper()
	r := runInProcess(t, "publish", "queue", "user-events", "--addr", addr, "--type", "UserCreated", "--id", id,
		"--data", `{"id": "`+id+`", "email": "ada@example.com"}`)
	if r.code != 0 {
		t.Fatalf("publish:\n%s", r)
	}
	var ans events.DeliveriesResponse
	apiCall(t, addr, http.MethodGet, "/v1/queues/user-events/messages?wait=20s", nil, http.StatusOK, &ans)
	if len(ans.Messages) != 1 || ans.Messages[0].Event.ID() != id {
		t.Fatalf("user-events: %+v, want event %s", ans.Messages, id)
	}
	apiCall(t, addr, http.MethodPost, "/v1/queues/user-events/messages/"+ans.Messages[0].ID+"/nack",
		events.NackRequest{Error: reason}, http.StatusNoContent, nil)
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	addr := startEventsEngine(t)

	r := runInProcess(t, "dlq", "list", "user-events", "--addr", addr)
	if r.code != 0 || r.stdout != "no dead letters of user-events\n" {
		t.Errorf("dlq list before any failed:\n%s", r)
	}

	deadLetter(t, addr, "u-1", "smtp down:\n"+strings.Repeat("x", 100))
	deadLetter(t, addr, "u-2", "timeout")

	r = runInProcess(t, "dlq", "list", "user-events", "--addr", addr)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^ID +EVENT ID +TYPE +ATTEMPTS +ORIGIN +LAST ERROR +AT\n`),
		regexp.MustCompile(`(?m)^1 +u-1 +UserCreated +1 +queue:user-events +smtp down: x{48}… +[0-9]+s ago$`),
		regexp.MustCompile(`(?m)^2 +u-2 +UserCreated +1 +queue:user-events +timeout +[0-9]+s ago$`),
	} {
		if !want.MatchString(r.stdout) || r.code != 0 {
			t.Errorf("dlq list does not match %s:\n%s", want, r)
		}
	}

	// --max cuts the list and says so; the dead-letter queue's name and
	// --output json.
	r = runInProcess(t, "dlq", "list", "queue:user-events-dlq", "--max", "1", "-o", "json", "--addr", addr)
	var list events.DeadLettersResponse
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("dlq list -o json: %v\n%s", err, r)
	}
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].Event.ID() != "u-1" || list.DeadLetters[0].Queue != "user-events-dlq" {
		t.Errorf("dlq list --max 1 -o json: %+v", list)
	}
	if r := runInProcess(t, "dlq", "list", "user-events", "--max", "1", "--addr", addr); strings.Count(r.stdout, "\n") != 2 ||
		r.stderr != "the first 1 dead letters; --max 0 lists them all\n" {
		t.Errorf("dlq list --max 1:\n%s", r)
	}

	// show: the whole dead letter, its event with its data.
	r = runInProcess(t, "dlq", "show", "user-events", "2", "--addr", addr)
	var dl map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &dl); err != nil || r.code != 0 {
		t.Fatalf("dlq show: %v\n%s", err, r)
	}
	ev, _ := dl["event"].(map[string]any)
	data, _ := ev["data"].(map[string]any)
	if dl["id"] != 2.0 || dl["lastError"] != "timeout" || dl["origin"] != "queue:user-events" || ev["id"] != "u-2" || data["email"] != "ada@example.com" {
		t.Errorf("dlq show: %v", dl)
	}
	if !strings.Contains(r.stdout, "\n  \"event\": {\n") {
		t.Errorf("dlq show is not indented:\n%s", r.stdout)
	}

	// Redrive one back into its queue, where a worker gets it again.
	r = runInProcess(t, "dlq", "redrive", "user-events", "2", "--addr", addr)
	if r.code != 0 || r.stdout != "redriven 2 (event u-2) to queue user-events\n" {
		t.Fatalf("dlq redrive 2:\n%s", r)
	}
	if got := receiveOne(t, addr, "user-events"); got.Event.ID() != "u-2" || got.Attempt != 1 {
		t.Errorf("after the redrive, user-events holds %s (attempt %d)", got.Event, got.Attempt)
	}
	// Gone from the dead letters: redriving it again is refused, and
	// nothing moves.
	r = runInProcess(t, "dlq", "redrive", "user-events", "1", "2", "--addr", addr)
	if r.code != 1 || r.stderr != "nubo: queue \"user-events\" has no dead letter 2\n" {
		t.Errorf("dlq redrive of a redriven dead letter:\n%s", r)
	}

	// The rest, elsewhere.
	r = runInProcess(t, "dlq", "redrive", "user-events", "--all", "--to", "audit", "-o", "json", "--addr", addr)
	var redriven events.RedriveResponse
	if err := json.Unmarshal([]byte(r.stdout), &redriven); err != nil || r.code != 0 {
		t.Fatalf("dlq redrive --all -o json: %v\n%s", err, r)
	}
	if len(redriven.Redriven) != 1 || redriven.Redriven[0].EventID != "u-1" || redriven.Redriven[0].To != "queue audit" {
		t.Errorf("dlq redrive --all --to audit: %+v", redriven)
	}
	if got := receiveOne(t, addr, "audit"); got.Event.ID() != "u-1" {
		t.Errorf("after the redrive, audit holds %s", got.Event)
	}
	if r := runInProcess(t, "dlq", "redrive", "user-events", "--all", "--addr", addr); r.code != 0 || r.stdout != "no dead letters of user-events to redrive\n" {
		t.Errorf("dlq redrive --all of none:\n%s", r)
	}

	// A topic's, by its kind, and names the API does not know.
	if r := runInProcess(t, "dlq", "list", "topic:notifications", "--addr", addr); r.code != 0 || r.stdout != "no dead letters of topic:notifications\n" {
		t.Errorf("dlq list topic:notifications:\n%s", r)
	}
	for _, args := range [][]string{
		{"dlq", "list", "usr-events"},
		{"dlq", "show", "usr-events", "1"},
		{"dlq", "redrive", "usr-events", "--all"},
	} {
		r := runInProcess(t, append(args, "--addr", addr)...)
		if r.code != 1 || !strings.Contains(r.stderr, `no queue, topic, rule or schedule "usr-events" has dead letters`) {
			t.Errorf("nubo %v:\n%s", args, r)
		}
	}
	if r := runInProcess(t, "dlq", "show", "user-events", "9", "--addr", addr); r.code != 1 || r.stderr != "nubo: queue \"user-events\" has no dead letter 9\n" {
		t.Errorf("dlq show of an unknown id:\n%s", r)
	}
}

// TestDLQListQueues: without a name, dlq list lists every dead-letter queue
// with its count, and only those: not user-events, which has one, nor
// audit, which is none.
func TestDLQListQueues(t *testing.T) {
	t.Parallel()
	addr := startEventsEngine(t)

	want := "QUEUE            DEAD LETTERS\nuser-events-dlq  0\n"
	if r := runInProcess(t, "dlq", "list", "--addr", addr); r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("dlq list before any failed:\n%s\nwant stdout:\n%s", r, want)
	}
	deadLetter(t, addr, "u-1", "smtp down")
	deadLetter(t, addr, "u-2", "timeout")
	want = "QUEUE            DEAD LETTERS\nuser-events-dlq  2\n"
	if r := runInProcess(t, "dlq", "list", "--addr", addr); r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("dlq list:\n%s\nwant stdout:\n%s", r, want)
	}

	r := runInProcess(t, "dlq", "list", "-o", "json", "--addr", addr)
	var got struct {
		DeadLetterQueues []struct {
			Name        string `json:"name"`
			DeadLetters int    `json:"deadLetters"`
		} `json:"deadLetterQueues"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("dlq list -o json: %v\n%s", err, r)
	}
	if len(got.DeadLetterQueues) != 1 || got.DeadLetterQueues[0].Name != "user-events-dlq" || got.DeadLetterQueues[0].DeadLetters != 2 {
		t.Errorf("dlq list -o json: %+v, want user-events-dlq with 2", got)
	}
}

// TestDLQUsageErrors: mistakes are found before the engine is asked.
func TestDLQUsageErrors(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"dlq", "list", "q", "r"}, "accepts at most 1 arg(s), received 2"},
		{[]string{"dlq", "list", "q", "--max", "-1"}, "--max -1: want a number of dead letters, 0 for all"},
		{[]string{"dlq", "show", "q"}, "accepts 2 arg(s), received 1"},
		{[]string{"dlq", "show", "q", "seven"}, `dead letter ID "seven": want a number from the ID column of nubo dlq list`},
		{[]string{"dlq", "redrive", "q"}, "name the dead letters to redrive: their IDs (nubo dlq list q shows them), or --all"},
		{[]string{"dlq", "redrive", "q", "--all", "7"}, "give --all or dead letter IDs, not both"},
		{[]string{"dlq", "redrive", "q", "7", "x"}, `dead letter ID "x"`},
		{[]string{"dlq", "redrive", "--all"}, "requires at least 1 arg(s), only received 0"},
		{[]string{"dlq", "list", "q", "-o", "yaml"}, `--output "yaml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := runInProcess(t, append(tt.args, "--addr", addr)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.stderr) || r.stdout != "" {
				t.Errorf("nubo %v:\n%s\nwant exit 2 and %q on stderr", tt.args, r, tt.stderr)
			}
		})
	}
}
