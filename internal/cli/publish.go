package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
)

const publishLong = `Publish stores one CloudEvent in a queue, a topic or on the event bus of
the running engine, as your code does through the platform API
(docs/platform-api.md), and prints its id and its sequence in the stream.

--type is required. --data is the event's data as JSON: inline, @FILE for a
file's content, or - for stdin. nubo fills in what the event leaves out: id
(a UUID), time, and source (the type's source under events:, else nubo).

When the spec declares the type with a schema, data that breaks it is
refused: nubo prints every violation and exits 1. An event with the same
source and id as one stored in the last two minutes is not stored again;
nubo says it was a duplicate.

With --output json, stdout holds the platform API's answer:
{"events": [{"id": ..., "sequence": ..., "duplicate": ...}]}.`

func newPublishCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish an event to a queue, a topic or the event bus",
		Long:  publishLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newPublishToCmd(std, g, toQueue, "queue NAME", "Publish an event to a queue",
			`  nubo publish queue user-events --type UserCreated --subject user-1 --data '{"id": "user-1", "email": "ada@example.com"}'
  nubo publish queue jobs --type Job --data @job.json`),
		newPublishToCmd(std, g, toTopic, "topic NAME", "Publish an event to a topic, for its subscriptions",
			`  nubo publish topic user-notifications --type UserCreated --data '{"id": "user-1"}'`),
		newPublishToCmd(std, g, toBus, "event", "Publish an event on the event bus, for the rules",
			`  echo '{"id": "user-1", "plan": "pro"}' | nubo publish event --type UserCreated --data -`),
	)
	return cmd
}

// publishFlags are the event's attributes and data, as given.
type publishFlags struct {
	typ, source, subject, id, data string
}

func newPublishToCmd(std stdio, g *globals, kind destKind, use, short, example string) *cobra.Command {
	var (
		f            publishFlags
		output, addr string
	)
	args := cobra.ExactArgs(1)
	if kind == toBus {
		args = cobra.NoArgs
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    publishLong,
		Example: example,
		Args:    usageArgs(args),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch kind {
			case toQueue:
				return completeNames(g, queueNames)(cmd, args, toComplete)
			case toTopic:
				return completeNames(g, topicNames)(cmd, args, toComplete)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			to := destination{Kind: kind}
			if len(args) == 1 {
				to.Name = args[0]
			}
			body, err := structuredEvent(f, std.in)
			if err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var ans apitype.PublishResponse
			raw, err := newEngineClient(t).sendBody(cmd.Context(), http.MethodPost, publishPath(to),
				"application/cloudevents+json", body, &ans)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			for _, p := range ans.Events {
				if p.Duplicate {
					fmt.Fprintf(std.out, "event %s is a duplicate in %s (sequence %d): not stored again\n", p.ID, destinationText(to), p.Sequence)
					continue
				}
				fmt.Fprintf(std.out, "published event %s to %s, sequence %d\n", p.ID, destinationText(to), p.Sequence)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "the event's type (required)")
	fl.StringVar(&f.source, "source", "", "the event's source (default: the type's source under events:, else nubo)")
	fl.StringVar(&f.subject, "subject", "", "the event's subject (a fifo queue's ordering group)")
	fl.StringVar(&f.id, "id", "", "the event's id (default: a new UUID)")
	fl.StringVar(&f.data, "data", "", "the event's data as JSON: inline, @FILE, or - for stdin")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// publishPath is the platform API's route that stores events in to.
func publishPath(to destination) string {
	switch to.Kind {
	case toQueue:
		return "/v1/queues/" + url.PathEscape(to.Name)
	case toTopic:
		return "/v1/topics/" + url.PathEscape(to.Name)
	}
	return "/v1/events"
}

func destinationText(to destination) string {
	if to.Kind == toBus {
		return "the event bus"
	}
	return string(to.Kind) + " " + to.Name
}

// structuredEvent checks the flags and writes the event in the CloudEvents
// JSON format (structured mode). What the user left out stays out, so that
// the engine fills it in as it does for every client.
func structuredEvent(f publishFlags, stdin io.Reader) ([]byte, error) {
	if f.typ == "" {
		return nil, usageErrorf("--type is required: the CloudEvent's type, e.g. --type UserCreated")
	}
	data, err := readEventData(f.data, stdin)
	if err != nil {
		return nil, err
	}
	ev := struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id,omitempty"`
		Type            string          `json:"type"`
		Source          string          `json:"source,omitempty"`
		Subject         string          `json:"subject,omitempty"`
		DataContentType string          `json:"datacontenttype,omitempty"`
		Data            json.RawMessage `json:"data,omitempty"`
	}{SpecVersion: "1.0", ID: f.id, Type: f.typ, Source: f.source, Subject: f.subject, Data: data}
	if data != nil {
		ev.DataContentType = "application/json"
	}
	return json.Marshal(ev)
}

// readEventData reads --data: inline JSON, @FILE, or - (also @-) for stdin.
// Whatever its origin, it must be JSON: it is the data of a structured
// event.
func readEventData(data string, stdin io.Reader) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case data == "":
		return nil, nil
	case data == "-" || data == "@-":
		if b, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read --data from stdin: %w", err)
		}
	case data[0] == '@':
		if b, err = os.ReadFile(data[1:]); err != nil {
			return nil, usageErrorf("--data %s: %v", data, err)
		}
	default:
		if !json.Valid([]byte(data)) {
			return nil, usageErrorf("--data %q is not JSON (quote strings: '\"text\"'; or pass a file with @FILE)", data)
		}
		return json.RawMessage(data), nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		from := data
		if data == "-" || data == "@-" {
			from = "from stdin"
		}
		return nil, usageErrorf("--data %s is not JSON: %v", from, err)
	}
	return json.RawMessage(bytes.TrimSpace(b)), nil
}

// sendBody sends a request with a JSON body and decodes its 2xx answer
// into v, returning the raw answer too. Its errors are do's: nothing
// answering, and the API's error message as an *apiError.
func (c *engineClient) sendBody(ctx context.Context, method, path, contentType string, body []byte, v any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.doBody(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the answer of the engine at %s: %w", c.target.addr, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("the server at %s (%s) does not answer as a nubo engine: %s %s: %w", c.target.addr, c.target.source, method, path, err)
	}
	return data, nil
}

// destKind is where `nubo publish` sends an event: the platform API's
// /v1/queues/NAME, /v1/topics/NAME or /v1/events.
type destKind string

const (
	toQueue destKind = "queue"
	toTopic destKind = "topic"
	toBus   destKind = "bus"
)

// destination is a queue, a topic (by name) or the bus.
type destination struct {
	Kind destKind
	Name string
}
