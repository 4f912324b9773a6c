package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/eventstore"
)

const eventStoreLong = `Eventstore appends to, reads and follows the event store of the running
engine (the spec's eventStore section), and shows and rebuilds its
projections. See docs/eventstore.md.`

func newEventStoreCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eventstore",
		Short: "Append to, read and follow the event store; show and rebuild projections",
		Long:  eventStoreLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newESAppendCmd(std, g), newESReadCmd(std, g), newESStreamsCmd(std, g), newESTailCmd(std, g),
		newESProjectionsCmd(std, g), newESRebuildCmd(std, g), newESReplayCmd(std, g),
	)
	return cmd
}

func streamPath(stream string) string { return "/v1/eventstore/streams/" + url.PathEscape(stream) }

func newESAppendCmd(std stdio, g *globals) *cobra.Command {
	var typ, data, metadata, id, expected, output, addr string
	cmd := &cobra.Command{
		Use:   "append STREAM --type TYPE [--data JSON]",
		Short: "Append an event to a stream",
		Long: `Append appends one event to STREAM. --expected-version makes it
conditional: any (the default), no_stream, exists, or the stream's current
version; when it does not hold, nothing is stored and the error says the
stream's version. An --id appended to the same stream before is stored once.`,
		Example: `  nubo eventstore append user-42 --type UserCreated --data '{"name":"Ann"}' --expected-version no_stream
  nubo eventstore append user-42 --type UserRenamed --data '{"name":"Bo"}' --expected-version 0`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if typ == "" {
				return usageErrorf("--type is required")
			}
			ev := apitype.EventData{ID: id, Type: typ}
			for flag, v := range map[string]string{"--data": data, "--metadata": metadata} {
				if v != "" && !json.Valid([]byte(v)) {
					return usageErrorf("%s %q: not JSON", flag, v)
				}
			}
			if data != "" {
				ev.Data = json.RawMessage(data)
			}
			if metadata != "" {
				ev.Metadata = json.RawMessage(metadata)
			}
			body, _ := json.Marshal(apitype.AppendRequest{ExpectedVersion: apitype.ExpectedVersion(expected), Events: []apitype.EventData{ev}})
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			defer cancel()
			resp, err := c.doBody(ctx, http.MethodPost, streamPath(args[0]), "application/json", body)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			var res apitype.AppendResponse
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("append: undecodable answer: %w", err)
			}
			if res.Duplicate {
				_, err = fmt.Fprintf(std.out, "%s: already stored at version %d (position %d)\n", res.Stream, res.LastVersion, res.LastPosition)
				return err
			}
			_, err = fmt.Fprintf(std.out, "%s: version %d (position %d)\n", res.Stream, res.LastVersion, res.LastPosition)
			return err
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "the event's type")
	cmd.Flags().StringVar(&data, "data", "", "the event's data, JSON")
	cmd.Flags().StringVar(&metadata, "metadata", "", "the event's metadata, JSON")
	cmd.Flags().StringVar(&id, "id", "", "the event's id (default: a new UUID)")
	cmd.Flags().StringVar(&expected, "expected-version", "any", "any, no_stream, exists or a version")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

func newESReadCmd(std stdio, g *globals) *cobra.Command {
	var (
		output, addr string
		from         int64
		limit        int
		backward     bool
	)
	cmd := &cobra.Command{
		Use:   "read STREAM",
		Short: "Read a stream's events",
		Long: `Read prints STREAM's events from version --from (default: the first, or
with --backward the last), at most --limit of them.`,
		Example: `  nubo eventstore read user-42
  nubo eventstore read user-42 --backward --limit 1`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if backward {
				q.Set("backward", "true")
			}
			if cmd.Flags().Changed("from") {
				q.Set("from", strconv.FormatInt(from, 10))
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var res apitype.ReadResponse
			raw, err := newEngineClient(t).getJSON(cmd.Context(), streamPath(args[0])+"?"+q.Encode(), &res)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			if len(res.Events) == 0 {
				_, err := fmt.Fprintf(std.out, "no events in %s\n", args[0])
				return err
			}
			writeEvents(std.out, res.Events)
			if res.Next != nil {
				fmt.Fprintf(std.err, "more from version %d (--from %d)\n", *res.Next, *res.Next)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "the version to start at")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events (up to 1000)")
	cmd.Flags().BoolVar(&backward, "backward", false, "newest first")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// writeEvents prints events as a table: version, position, time, type, data.
func writeEvents(w io.Writer, evs []apitype.RecordedEvent) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tPOSITION\tTIME\tTYPE\tID\tDATA")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", e.Version, e.Position, e.Time.Format("2006-01-02T15:04:05.000Z"), e.Type, e.ID, compactJSON(e.Data))
	}
	tw.Flush()
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "-"
	}
	s := string(raw)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func newESStreamsCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the event store's streams",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res apitype.StreamsResponse
			if done, err := getForOutput(cmd, std, g, addr, output, "/v1/eventstore/streams", &res); done || err != nil {
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tVERSION\tLAST POSITION\tUPDATED")
			for _, s := range res.Streams {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Name, s.Version, s.Position, s.Updated.Format("2006-01-02T15:04:05Z"))
			}
			tw.Flush()
			_, err := fmt.Fprintf(std.out, "%d streams, %d events\n", len(res.Streams), res.Events)
			return err
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

func newESTailCmd(std stdio, g *globals) *cobra.Command {
	var (
		streams, types, addr string
		from                 uint64
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the events appended to the store",
		Long: `Tail prints events as they are appended, one line each (position,
stream@version, type, data), until interrupted. --from starts at a global
position instead of the end, so tail first catches up.`,
		Example: `  nubo eventstore tail --streams 'user-*'
  nubo eventstore tail --from 1 --types OrderPlaced,OrderPaid`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			c := newEngineClient(t)
			if !cmd.Flags().Changed("from") {
				var st apitype.StreamsResponse
				if _, err := c.getJSON(cmd.Context(), "/v1/eventstore/streams", &st); err != nil {
					return err
				}
				from = st.LastPosition + 1
			}
			q := url.Values{"from": {strconv.FormatUint(from, 10)}}
			if streams != "" {
				q.Set("streams", streams)
			}
			if types != "" {
				q.Set("types", types)
			}
			resp, err := c.do(cmd.Context(), http.MethodGet, "/v1/eventstore/subscribe?"+q.Encode())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return printSSE(cmd.Context(), std.out, resp.Body)
		},
	}
	cmd.Flags().StringVar(&streams, "streams", "", "streams matching this pattern ('*' any run of characters)")
	cmd.Flags().StringVar(&types, "types", "", "only these event types, comma-separated")
	cmd.Flags().Uint64Var(&from, "from", 0, "the global position to start at (default: the end)")
	addrFlag(cmd, &addr)
	return cmd
}

// printSSE prints the events of a subscription's server-sent events.
func printSSE(ctx context.Context, w io.Writer, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if event == "error" {
				var msg string
				_ = json.Unmarshal([]byte(data), &msg)
				return fmt.Errorf("subscription: %s", msg)
			}
			var e apitype.RecordedEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return fmt.Errorf("subscription: undecodable event: %w", err)
			}
			if _, err := fmt.Fprintf(w, "%d %s@%d %s %s\n", e.Position, e.Stream, e.Version, e.Type, compactJSON(e.Data)); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	return fmt.Errorf("subscription: the engine ended it (stopping?)")
}

func newESProjectionsCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Show the projections: position, lag, state, last error",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res apitype.ProjectionsResponse
			if done, err := getForOutput(cmd, std, g, addr, output, "/v1/eventstore/projections", &res); done || err != nil {
				return err
			}
			if len(res.Projections) == 0 {
				_, err := fmt.Fprintln(std.out, "no projections")
				return err
			}
			writeProjections(std.out, res.Projections)
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// writeProjections prints the projections as a table, then their errors.
func writeProjections(w io.Writer, ps []apitype.Projection) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tHANDLER\tSTATE\tPOSITION\tCHECKPOINT\tLAG")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", p.Name, p.Handler, p.State, p.Position, p.Checkpoint, p.Lag)
	}
	tw.Flush()
	for _, p := range ps {
		if p.LastError != "" {
			fmt.Fprintf(w, "  %s: %d failures in a row: %s\n", p.Name, p.Failures, p.LastError)
		}
	}
}

func newESRebuildCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "rebuild PROJECTION",
		Short: "Reset a projection and replay every event to it from the start",
		Long: `Rebuild sets PROJECTION's checkpoint back to the start of the store: its
handler gets every matching event again, in order, as if the projection were
new. The handler should reset its read model when it sees the first one.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			if err := newEngineClient(t).post(cmd.Context(), "/v1/eventstore/projections/"+url.PathEscape(args[0])+"/rebuild"); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "projection %s: rebuilding from the start\n", args[0])
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

func newESReplayCmd(std stdio, g *globals) *cobra.Command {
	var (
		from, to, streams, types, target, addr string
		batch                                  int
	)
	cmd := &cobra.Command{
		Use:   "replay --target function:NAME|service:NAME/path",
		Short: "Deliver the events of a time window to a function or service",
		Long: `Replay delivers the stored events appended in [--from, --to) that match
--streams and --types, in position order and in batches of --batch, to
--target, as a projection would (docs/eventstore.md). It moves no
projection's checkpoint. A batch that fails three times is counted failed
and skipped; the summary says how many. A progress bar shows on a terminal.`,
		Example: `  nubo eventstore replay --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z \
      --streams 'user-*' --batch 500 --target function:user-processor`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := eventstore.ReplayRequest{Streams: streams, Batch: batch, Target: target}
			if target == "" {
				return usageErrorf("--target is required")
			}
			for _, tf := range []struct {
				flag, v string
				t       *time.Time
			}{{"--from", from, &req.From}, {"--to", to, &req.To}} {
				if tf.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, tf.v)
				if err != nil {
					return usageErrorf("%s %q: want an RFC 3339 time (2026-01-01T00:00:00Z)", tf.flag, tf.v)
				}
				*tf.t = t
			}
			if types != "" {
				req.Types = strings.Split(types, ",")
			}
			body, _ := json.Marshal(req)
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			resp, err := newEngineClient(t).doBody(cmd.Context(), http.MethodPost, "/v1/eventstore/replay", "application/json", body)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, bar := terminal(std.err)
			var last eventstore.ReplayProgress
			dec := json.NewDecoder(resp.Body)
			for {
				var p eventstore.ReplayProgress
				if err := dec.Decode(&p); err != nil {
					if err == io.EOF {
						break
					}
					return fmt.Errorf("replay: undecodable progress: %w", err)
				}
				last = p
				if bar && !p.Done {
					fmt.Fprintf(std.err, "\r%s", progressBar(p))
				}
			}
			if bar {
				fmt.Fprintln(std.err)
			}
			if !last.Done {
				return fmt.Errorf("replay: the engine ended the answer before the summary (stopping?)")
			}
			fmt.Fprintf(std.out, "replayed %d events in %d batches to %s; %d batches failed\n", last.Events, last.Batches, target, last.Failed)
			if last.LastError != "" {
				return fmt.Errorf("replay: last error: %s", last.LastError)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the window's start, RFC 3339 (default: the first event)")
	cmd.Flags().StringVar(&to, "to", "", "the window's end, excluded, RFC 3339 (default: the last event)")
	cmd.Flags().StringVar(&streams, "streams", "", "streams matching this pattern ('*' any run of characters)")
	cmd.Flags().StringVar(&types, "types", "", "only these event types, comma-separated")
	cmd.Flags().IntVar(&batch, "batch", 100, "events per delivery (up to 1000)")
	cmd.Flags().StringVar(&target, "target", "", "function:NAME or service:NAME/path")
	addrFlag(cmd, &addr)
	return cmd
}

// progressBar draws a replay's progress against the store's event count
// (an upper bound: the window and the filters take fewer).
func progressBar(p eventstore.ReplayProgress) string {
	const width = 30
	done := 0
	if p.Total > 0 {
		done = int(min(uint64(width), uint64(width)*p.Position/p.Total))
	}
	return fmt.Sprintf("[%s%s] position %d/%d, %d events, %d batches, %d failed", strings.Repeat("#", done), strings.Repeat(" ", width-done), p.Position, p.Total, p.Events, p.Batches, p.Failed)
}
