package cli

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/apitype"
)

const tracesLong = `Traces lists the newest traces the running engine keeps: those of the
spans nubo records at every hop it sees (ingress, gateway, mesh, publishes,
function invocations) and those services send over OTLP. A trace is listed
when one of its spans matches every filter given.

Each line shows the trace's ID, when it started, how long it took, its spans,
its root (service and operation) and how many spans failed. nubo trace ID
prints one as a waterfall.

With --output json, stdout holds the query API's document (Jaeger's:
GET /jaeger/api/traces, described in docs/observability.md).`

func newTracesCmd(std stdio, g *globals) *cobra.Command {
	var (
		addr, output, service, operation, since string
		minDur                                  time.Duration
		failed                                  bool
		limit                                   int
	)
	cmd := &cobra.Command{
		Use:   "traces",
		Short: "List recent traces, by service, operation, duration or error",
		Long:  tracesLong,
		Example: `  nubo traces --service orders --since 10m
  nubo traces --min-duration 500ms --error
  nubo traces --service gateway --operation "GET /orders/{id}" -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if service != "" {
				q.Set("service", service)
			}
			if operation != "" {
				q.Set("operation", operation)
			}
			if minDur > 0 {
				q.Set("minDuration", minDur.String())
			}
			if failed {
				q.Set("tags", `{"error":"true"}`)
			}
			if since != "" {
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return usageErrorf("--since %q: want a duration like 10m or 1h", since)
				}
				q.Set("start", strconv.FormatInt(time.Now().Add(-d).UnixMicro(), 10))
			}
			var ts apitype.JaegerTraces
			if done, err := getForOutput(cmd, std, g, addr, output, "/jaeger/api/traces?"+q.Encode(), &ts); done || err != nil {
				return err
			}
			writeTraces(std.out, ts.Data)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "only traces with a span of this service")
	f.StringVar(&operation, "operation", "", "only traces with a span of this operation (with --service)")
	f.DurationVar(&minDur, "min-duration", 0, "only traces with a span at least this long")
	f.BoolVar(&failed, "error", false, "only traces with a failed span")
	f.StringVar(&since, "since", "1h", "only spans that started this long ago or later")
	f.IntVar(&limit, "limit", 20, "at most this many traces")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

func newTraceCmd(std stdio, g *globals) *cobra.Command {
	var addr, output string
	cmd := &cobra.Command{
		Use:   "trace ID",
		Short: "Print one trace as a waterfall",
		Long: `Trace prints the trace ID as a waterfall: each span under its parent, with
its service, operation and duration, and a bar where it ran within the trace.
Failed spans are marked with !. Under it come the log records that carry the
trace's id (GET /admin/v1/traces/ID/logs), as nubo logs prints them.

With --output json, stdout holds the query API's document
(GET /jaeger/api/traces/ID).`,
		Example: "  nubo trace 4bf92f3577b34da6a3ce929d0e0e4736",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ts apitype.JaegerTraces
			if done, err := getForOutput(cmd, std, g, addr, output, "/jaeger/api/traces/"+url.PathEscape(args[0]), &ts); done || err != nil {
				return err
			}
			if len(ts.Data) == 0 {
				return fmt.Errorf("trace %s: not found", args[0])
			}
			writeWaterfall(std.out, ts.Data[0], 40)
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var tl apitype.TraceLogs
			if _, err := newEngineClient(t).getJSON(cmd.Context(), "/admin/v1/traces/"+url.PathEscape(args[0])+"/logs", &tl); err != nil {
				return fmt.Errorf("trace %s: its logs: %w", args[0], err)
			}
			writeTraceLogs(std.out, tl.Logs)
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// traceSummary is what a list line says of a trace.
type traceSummary struct {
	start, end int64 // µs
	root       *apitype.JaegerSpan
	errors     int
}

func summarize(t apitype.JaegerTrace) traceSummary {
	s := traceSummary{start: 1<<63 - 1}
	ids := map[string]bool{}
	for i := range t.Spans {
		ids[t.Spans[i].SpanID] = true
	}
	for i := range t.Spans {
		sp := &t.Spans[i]
		s.start = min(s.start, sp.StartTime)
		s.end = max(s.end, sp.StartTime+sp.Duration)
		if spanFailed(sp) {
			s.errors++
		}
		// The root is the earliest span whose parent is not here.
		if len(sp.References) == 0 || !ids[sp.References[0].SpanID] {
			if s.root == nil || sp.StartTime < s.root.StartTime {
				s.root = sp
			}
		}
	}
	return s
}

func spanFailed(sp *apitype.JaegerSpan) bool {
	for _, kv := range sp.Tags {
		if kv.Key == "error" && kv.Value == true {
			return true
		}
	}
	return false
}

func writeTraces(w io.Writer, traces []apitype.JaegerTrace) {
	if len(traces) == 0 {
		fmt.Fprintln(w, "No traces match.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRACE ID\tSTARTED\tDURATION\tSPANS\tROOT\tERRORS")
	for _, t := range traces {
		s := summarize(t)
		root := "-"
		if s.root != nil {
			root = t.Processes[s.root.ProcessID].ServiceName + ": " + s.root.OperationName
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", t.TraceID, time.UnixMicro(s.start).Local().Format("15:04:05.000"),
			micros(s.end-s.start), len(t.Spans), root, s.errors)
	}
	tw.Flush()
}

func micros(us int64) string {
	return (time.Duration(us) * time.Microsecond).Round(10 * time.Microsecond).String()
}

// writeWaterfall prints the spans depth first under their parents (those
// whose parent is missing at the top), each with a bar of width cells
// placed where it ran.
func writeWaterfall(w io.Writer, t apitype.JaegerTrace, width int) {
	s := summarize(t)
	total := max(s.end-s.start, 1)
	fmt.Fprintf(w, "trace %s: %d spans, %s, %d failed\n\n", t.TraceID, len(t.Spans), micros(total), s.errors)
	ids := map[string]bool{}
	children := map[string][]*apitype.JaegerSpan{}
	for i := range t.Spans {
		ids[t.Spans[i].SpanID] = true
	}
	var roots []*apitype.JaegerSpan
	for i := range t.Spans {
		sp := &t.Spans[i]
		if len(sp.References) > 0 && ids[sp.References[0].SpanID] {
			children[sp.References[0].SpanID] = append(children[sp.References[0].SpanID], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	byStart := func(l []*apitype.JaegerSpan) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].StartTime < l[j].StartTime })
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var walk func(sp *apitype.JaegerSpan, depth int)
	walk = func(sp *apitype.JaegerSpan, depth int) {
		mark := " "
		if spanFailed(sp) {
			mark = "!"
		}
		from := int((sp.StartTime - s.start) * int64(width) / total)
		cells := max(int(sp.Duration*int64(width)/total), 1)
		from = min(from, width-1)
		cells = min(cells, width-from)
		bar := strings.Repeat(" ", from) + strings.Repeat("█", cells) + strings.Repeat(" ", width-from-cells)
		fmt.Fprintf(tw, "%s%s%s\t%s\t%s\t|%s|\n", mark, strings.Repeat("  ", depth), t.Processes[sp.ProcessID].ServiceName,
			sp.OperationName, micros(sp.Duration), bar)
		kids := children[sp.SpanID]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	byStart(roots)
	for _, r := range roots {
		walk(r, 0)
	}
	tw.Flush()
}

// writeTraceLogs prints a trace's log records under its waterfall.
func writeTraceLogs(w io.Writer, lines []apitype.LogLine) {
	if len(lines) == 0 {
		fmt.Fprintln(w, "\nNo log records carry this trace's id.")
		return
	}
	fmt.Fprintf(w, "\nlogs: %d records\n\n", len(lines))
	p := newLinePrinter(w, false)
	for _, l := range lines {
		p.print(l)
	}
}
