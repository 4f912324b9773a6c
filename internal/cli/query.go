package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/spec"
)

const queryLong = `Query evaluates a PromQL expression in the running engine, over the
metrics it scrapes (its own, and observability.metrics.scrape on every
replica) and the series its rules record (alerts' ALERTS, SLOs' slo:*).

Without --range it is an instant query at --time (default now): one value
per series. With --range it is a range query over the last RANGE (or the
RANGE before --time), one value every --step (default RANGE/60).

The engine answers Prometheus' HTTP API (/api/v1/query, /api/v1/query_range)
on its console; with --output json, stdout holds that API's answer.`

// queryPoints is how many points a range query gets without --step.
const queryPoints = 60

func newQueryCmd(std stdio, g *globals) *cobra.Command {
	var output, addr, at, rangeFlag, stepFlag string
	cmd := &cobra.Command{
		Use:   "query EXPR",
		Short: "Evaluate a PromQL expression over the engine's metrics",
		Long:  queryLong,
		Example: `  nubo query 'sum by (service) (rate(http_requests_total[5m]))'
  nubo query 'up' --time 2026-08-01T12:00:00Z
  nubo query 'slo:burn_rate:1h' --range 6h --step 10m`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			end := time.Now()
			if at != "" {
				t, err := parseQueryTime(at)
				if err != nil {
					return usageErrorf("--time %q: %v", at, err)
				}
				end = t
			}
			q := url.Values{"query": {args[0]}}
			path := "/api/v1/query"
			var step time.Duration
			if rangeFlag != "" {
				r, err := spec.ParseDuration(rangeFlag)
				if err != nil || r <= 0 {
					return usageErrorf("--range %q: want a duration such as 15m, 1h or 2d", rangeFlag)
				}
				step = max((r / queryPoints).Round(time.Second), time.Second)
				if stepFlag != "" {
					if step, err = spec.ParseDuration(stepFlag); err != nil || step <= 0 {
						return usageErrorf("--step %q: want a duration such as 15s or 1m", stepFlag)
					}
				}
				path = "/api/v1/query_range"
				q.Set("start", unixText(end.Add(-r)))
				q.Set("end", unixText(end))
				q.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
			} else {
				if stepFlag != "" {
					return usageErrorf("--step needs --range")
				}
				q.Set("time", unixText(end))
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var ans queryAnswer
			raw, err := newEngineClient(t).getJSON(cmd.Context(), path+"?"+q.Encode(), &ans)
			if err != nil {
				return err
			}
			for _, w := range append(ans.Warnings, ans.Infos...) {
				fmt.Fprintf(std.err, "warning: %s\n", w)
			}
			if output == "json" {
				return writeIndented(std.out, raw)
			}
			return writeQueryResult(std.out, std.err, ans.Data, step)
		},
	}
	cmd.Flags().StringVar(&at, "time", "", "evaluation time (RFC 3339 or Unix seconds); with --range, the end of the range (default now)")
	cmd.Flags().StringVar(&rangeFlag, "range", "", "a range query over this duration, e.g. 1h")
	cmd.Flags().StringVar(&stepFlag, "step", "", "the step of a range query (default RANGE/60)")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// queryAnswer is the envelope of Prometheus' query API.
type queryAnswer struct {
	Status   string   `json:"status"`
	Data     rawValue `json:"data"`
	Warnings []string `json:"warnings"`
	Infos    []string `json:"infos"`
}

type rawValue struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// parseQueryTime reads RFC 3339 or Unix seconds.
func parseQueryTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2026-08-01T12:00:00Z) or Unix seconds")
	}
	return t, nil
}

func unixText(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// writeIndented writes a JSON document indented, with a final newline.
func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// writeQueryResult prints a vector as a table of series and values, a
// matrix as each series followed by its points, a scalar or string alone.
func writeQueryResult(out, errw io.Writer, v rawValue, step time.Duration) error {
	switch v.ResultType {
	case "vector":
		var vec model.Vector
		if err := json.Unmarshal(v.Result, &vec); err != nil {
			return fmt.Errorf("read the vector: %w", err)
		}
		if len(vec) == 0 {
			fmt.Fprintln(errw, "no series")
			return nil
		}
		sort.SliceStable(vec, func(i, j int) bool { return vec[i].Metric.String() < vec[j].Metric.String() })
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIES\tVALUE")
		for _, s := range vec {
			val := s.Value.String()
			if s.Histogram != nil {
				val = s.Histogram.String()
			}
			fmt.Fprintf(tw, "%s\t%s\n", seriesName(s.Metric), val)
		}
		return tw.Flush()
	case "matrix":
		var m model.Matrix
		if err := json.Unmarshal(v.Result, &m); err != nil {
			return fmt.Errorf("read the matrix: %w", err)
		}
		if len(m) == 0 {
			fmt.Fprintln(errw, "no series")
			return nil
		}
		layout := "15:04:05"
		if step >= time.Hour || spans(m) >= 24*time.Hour {
			layout = "2006-01-02 15:04"
		}
		for i, s := range m {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, seriesName(s.Metric))
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for _, p := range s.Values {
				fmt.Fprintf(tw, "  %s\t%s\n", p.Timestamp.Time().Local().Format(layout), p.Value.String())
			}
			for _, p := range s.Histograms {
				fmt.Fprintf(tw, "  %s\t%s\n", p.Timestamp.Time().Local().Format(layout), p.Histogram.String())
			}
			tw.Flush()
		}
		return nil
	case "scalar":
		var s model.Scalar
		if err := json.Unmarshal(v.Result, &s); err != nil {
			return fmt.Errorf("read the scalar: %w", err)
		}
		_, err := fmt.Fprintln(out, s.Value.String())
		return err
	case "string":
		var s model.String
		if err := json.Unmarshal(v.Result, &s); err != nil {
			return fmt.Errorf("read the string: %w", err)
		}
		_, err := fmt.Fprintln(out, s.Value)
		return err
	}
	return fmt.Errorf("the engine answered a result of type %q, which nubo query does not know", v.ResultType)
}

// seriesName writes a series as PromQL does: name{label="value", ...}, or
// {} for a series without labels.
func seriesName(m model.Metric) string {
	name := string(m[model.MetricNameLabel])
	var parts []string
	for k, v := range m {
		if k != model.MetricNameLabel {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(parts)
	if name != "" && len(parts) == 0 {
		return name
	}
	return name + "{" + strings.Join(parts, ", ") + "}"
}

// spans is the time between a matrix's first and last points.
func spans(m model.Matrix) time.Duration {
	var first, last model.Time
	for _, s := range m {
		for _, p := range s.Values {
			if first == 0 || p.Timestamp < first {
				first = p.Timestamp
			}
			last = max(last, p.Timestamp)
		}
	}
	return last.Sub(first)
}
