package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
)

const dlqLong = `Dlq lists, shows and redrives the dead letters of the running engine: the
events that failed for good, with where, how often and why they failed.

` + dlqQueueHelp

// dlqQueueHelp says which names the dlq commands take.
const dlqQueueHelp = `QUEUE is a queue with a deadLetter (the events that failed out of it), a
dead-letter queue (everything in it), a topic (what its subscriptions failed
to deliver), a rule or a schedule. When names collide, write queue:NAME,
topic:NAME, rule:NAME or schedule:NAME; a plain name is looked up in that
order. See docs/events.md.`

func newDLQCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show and redrive dead letters",
		Long:  dlqLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDLQListCmd(std, g), newDLQShowCmd(std, g), newDLQRedriveCmd(std, g))
	return cmd
}

// deadLettersPath is the platform API's route of name's dead letters.
func deadLettersPath(name string) string {
	return "/v1/deadletters/" + url.PathEscape(name)
}

func newDLQListCmd(std stdio, g *globals) *cobra.Command {
	var (
		output, addr string
		max          int
	)
	cmd := &cobra.Command{
		Use:               "list [QUEUE]",
		ValidArgsFunction: completeNames(g, queueNames),
		Short:             "List the dead-letter queues, or the dead letters of one queue, topic, rule or schedule",
		Long: `Without QUEUE, list lists every dead-letter queue (a queue that a queue or
a function names as its deadLetter) with the number of dead letters it
holds. The dead letters of topics, rules and schedules are not in a queue:
name them (nubo dlq list topic:NAME).

With QUEUE, it lists the dead letters of QUEUE, oldest first, at most --max
of them: their ID (for show and redrive), the event's id and type, how often
it was delivered, where and why it failed, and when. The table cuts the last
error; nubo dlq show has it whole, with the event.

` + dlqQueueHelp + `

With --output json, stdout holds the platform API's answer for QUEUE:
{"deadLetters": [...]}, described in docs/platform-api.md; without QUEUE,
{"deadLetterQueues": [{"name": ..., "deadLetters": N}]}.`,
		Example: `  nubo dlq list
  nubo dlq list user-events
  nubo dlq list topic:user-notifications --max 0 -o json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if max < 0 {
				return usageErrorf("--max %d: want a number of dead letters, 0 for all", max)
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			if len(args) == 0 {
				return listDeadLetterQueues(cmd.Context(), std, c, output)
			}
			var ans apitype.DeadLettersResponse
			path := deadLettersPath(args[0]) + "?max=" + strconv.Itoa(max)
			raw, err := c.getJSON(cmd.Context(), path, &ans)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			if len(ans.DeadLetters) == 0 {
				_, err := fmt.Fprintf(std.out, "no dead letters of %s\n", args[0])
				return err
			}
			writeDeadLetters(std.out, ans.DeadLetters, time.Now())
			if max > 0 && len(ans.DeadLetters) == max {
				fmt.Fprintf(std.err, "the first %d dead letters; --max 0 lists them all\n", max)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&max, "max", 100, "with QUEUE, list at most this many dead letters, 0 for all")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// deadLetterQueues is what nubo dlq list -o json prints without a name.
type deadLetterQueues struct {
	DeadLetterQueues []deadLetterQueue `json:"deadLetterQueues"`
}

// deadLetterQueue is one dead-letter queue and how many dead letters it
// holds.
type deadLetterQueue struct {
	Name        string `json:"name"`
	DeadLetters uint64 `json:"deadLetters"`
}

// listDeadLetterQueues prints every dead-letter queue of the engine with
// its count, from the platform API's queue list. That list says which queue
// a queue dead-letters into, but not which queues functions name; a queue
// that is neither fed by a queue nor has a deadLetter of its own is asked
// for its dead letters, which the API answers only for a dead-letter queue
// (404 otherwise). A dead-letter queue holds nothing but dead letters, so
// its depth is their count.
func listDeadLetterQueues(ctx context.Context, std stdio, c *engineClient, output string) error {
	var queues apitype.QueuesResponse
	if _, err := c.getJSON(ctx, "/v1/queues", &queues); err != nil {
		return err
	}
	fed := map[string]bool{}
	for _, q := range queues.Queues {
		if q.DeadLetterQueue != "" {
			fed[q.DeadLetterQueue] = true
		}
	}
	out := deadLetterQueues{DeadLetterQueues: []deadLetterQueue{}}
	for _, q := range queues.Queues {
		isDLQ := fed[q.Name]
		if !isDLQ && q.DeadLetterQueue == "" {
			var ans apitype.DeadLettersResponse
			_, err := c.getJSON(ctx, deadLettersPath("queue:"+q.Name)+"?max=1", &ans)
			var apiErr *apiError
			switch {
			case err == nil:
				isDLQ = true
			case errors.As(err, &apiErr) && apiErr.code == http.StatusNotFound:
			default:
				return fmt.Errorf("queue %q: is it a dead-letter queue: %w", q.Name, err)
			}
		}
		if isDLQ {
			out.DeadLetterQueues = append(out.DeadLetterQueues, deadLetterQueue{Name: q.Name, DeadLetters: q.Messages})
		}
	}
	if output == "json" {
		raw, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return writeIndented(std.out, raw)
	}
	if len(out.DeadLetterQueues) == 0 {
		_, err := fmt.Fprintln(std.out, "no dead-letter queues: no queue or function has a deadLetter")
		return err
	}
	tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tDEAD LETTERS")
	for _, q := range out.DeadLetterQueues {
		fmt.Fprintf(tw, "%s\t%d\n", q.Name, q.DeadLetters)
	}
	return tw.Flush()
}

// maxLastError bounds a dead letter's last error in the table.
const maxLastError = 60

// writeDeadLetters prints the dead letters' table.
func writeDeadLetters(w io.Writer, dls []apitype.DeadLetter, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT ID\tTYPE\tATTEMPTS\tORIGIN\tLAST ERROR\tAT")
	for _, dl := range dls {
		var id, typ string
		if dl.Event != nil {
			id, typ = dl.Event.ID(), dl.Event.Type()
		}
		origin := orDefault(dl.Origin, "-")
		if dl.Subscription != "" {
			origin += " subscription " + dl.Subscription
		}
		at := "-"
		if !dl.At.IsZero() {
			at = age(now.Sub(dl.At)) + " ago"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", dl.ID, orDefault(id, "-"), orDefault(typ, "-"), dl.Attempts, origin,
			orDefault(shorten(flat(dl.LastError), maxLastError), "-"), at)
	}
	tw.Flush()
}

func newDLQShowCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:               "show QUEUE ID",
		ValidArgsFunction: completeNames(g, queueNames),
		Short:             "Show one dead letter with its whole event",
		Long: `Show prints one dead letter of QUEUE as JSON: its id, where it failed
(origin), how often (attempts), why (lastError), when (at) and the event in
the CloudEvents JSON format. ID is from nubo dlq list.

` + dlqQueueHelp,
		Example: "  nubo dlq show user-events 7",
		Args:    usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deadLetterID(args[1])
			if err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var dl apitype.DeadLetter
			raw, err := newEngineClient(t).getJSON(cmd.Context(), deadLettersPath(args[0])+"/"+strconv.FormatUint(id, 10), &dl)
			if err != nil {
				return err
			}
			return writeIndented(std.out, raw)
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

// deadLetterID reads a dead letter's ID as nubo dlq list shows it.
func deadLetterID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageErrorf("dead letter ID %q: want a number from the ID column of nubo dlq list", s)
	}
	return id, nil
}

func newDLQRedriveCmd(std stdio, g *globals) *cobra.Command {
	var (
		output, addr, to string
		all              bool
	)
	cmd := &cobra.Command{
		Use:               "redrive QUEUE (--all | ID...)",
		ValidArgsFunction: completeNames(g, queueNames),
		Short:             "Send dead letters back where they failed, or into another queue",
		Long: `Redrive sends the dead letters ID... of QUEUE (or, with --all, every one)
back where each failed: into its queue, or to its topic subscription, rule or
schedule alone (a topic's other subscriptions do not get it again); with
--to, into that queue instead. Each comes back as a fresh delivery. Every ID
is checked before anything moves, and a redrive is safe to repeat.

` + dlqQueueHelp + `

With --output json, stdout holds the platform API's answer:
{"redriven": [{"id": ..., "eventId": ..., "to": ...}]}.`,
		Example: `  nubo dlq redrive user-events 7 9
  nubo dlq redrive user-events --all --to user-events-retry`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			req := apitype.RedriveRequest{All: all, To: to}
			switch {
			case all && len(args) > 1:
				return usageErrorf("give --all or dead letter IDs, not both")
			case !all && len(args) == 1:
				return usageErrorf("name the dead letters to redrive: their IDs (nubo dlq list %s shows them), or --all", args[0])
			}
			for _, s := range args[1:] {
				id, err := deadLetterID(s)
				if err != nil {
					return err
				}
				req.IDs = append(req.IDs, id)
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var ans apitype.RedriveResponse
			raw, err := newEngineClient(t).sendBody(cmd.Context(), http.MethodPost, deadLettersPath(args[0])+"/redrive",
				"application/json", body, &ans)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			if len(ans.Redriven) == 0 {
				_, err := fmt.Fprintf(std.out, "no dead letters of %s to redrive\n", args[0])
				return err
			}
			for _, r := range ans.Redriven {
				fmt.Fprintf(std.out, "redriven %d (event %s) to %s\n", r.ID, r.EventID, r.To)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "redrive every dead letter of QUEUE")
	cmd.Flags().StringVar(&to, "to", "", "redrive into this queue instead of where they failed")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}
