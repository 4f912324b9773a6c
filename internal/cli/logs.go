package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/spf13/cobra"
)

const logsLong = `Logs prints the output the running engine kept of its processes (and its
own events about them), every line prefixed with its source as nubo up and
docker compose print them:

  users-1 | listening on :41234
  users-build | ok github.com/acme/users
  nubo    | users-1 ready

With SERVICE, only that service's lines. -f follows: new lines are printed as
they come, until Ctrl-C or until the engine stops. Here -f is --follow; give
the spec with --file FILE.

The prefix is colored per service on a terminal, unless --no-color or the
NO_COLOR environment variable is set.`

func newLogsCmd(std stdio, g *globals) *cobra.Command {
	var (
		addr, since, tail  string
		level, grep, trace string
		where              []string
		output             string
		follow, noColor    bool
	)
	cmd := &cobra.Command{
		Use:               "logs [SERVICE]",
		ValidArgsFunction: completeNames(g, serviceNames),
		Short:             "Print the output of the running services",
		Long:              logsLong,
		Example: `  nubo logs users -f
  nubo logs --since 10m --tail 100
  nubo logs orders --since 1h --level error --grep timeout
  nubo logs --where status=500 --trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if len(args) == 1 {
				// A service name has no dot: this is a spec file given
				// as `nubo -f FILE logs`, where -f is --follow.
				if ext := filepath.Ext(args[0]); ext == ".yaml" || ext == ".yml" {
					return usageErrorf("%q is not a service: -f is --follow for nubo logs; give the spec with --file %s", args[0], args[0])
				}
				q.Set("service", args[0])
			}
			if since != "" {
				if _, err := apitype.ParseSince(since, time.Now()); err != nil {
					return usageErrorf("--%v", err)
				}
				q.Set("since", since)
			}
			if tail != "all" {
				if n, err := strconv.Atoi(tail); err != nil || n < 0 {
					return usageErrorf("--tail %q: want a number of lines, 0 or more, or all", tail)
				}
				q.Set("tail", tail)
			}
			if follow {
				q.Set("follow", "true")
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			for k, v := range map[string]string{"level": level, "grep": grep, "trace": trace} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for _, w := range where {
				if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
					return usageErrorf("--where %q: want FIELD=VALUE", w)
				}
				q.Add("where", w)
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			color := isTerminal(std.out) && !noColor && os.Getenv("NO_COLOR") == ""
			p := newLinePrinter(std.out, color)
			p.json = output == "json"
			return printLogs(cmd.Context(), newEngineClient(t), q, p, follow, std.err)
		},
	}
	// -f means --follow here, as in docker compose logs and kubectl logs; the
	// spec file is then --file, which this local flag keeps available.
	cmd.Flags().StringVar(&g.file, "file", "nubo.yaml", "the spec file")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	cmd.Flags().StringVar(&since, "since", "", "only lines since a duration ago (5m, 1h) or an RFC 3339 time")
	cmd.Flags().StringVar(&tail, "tail", "all", "only the last N lines kept so far (0: only new ones, with -f)")
	cmd.Flags().BoolVar(&noColor, "no-color", false, "no colors, even on a terminal")
	cmd.Flags().StringVar(&level, "level", "", "only records of this level or worse: debug, info, warn, error (searches the records on disk)")
	cmd.Flags().StringVar(&grep, "grep", "", "only records whose text contains this")
	cmd.Flags().StringArrayVar(&where, "where", nil, "only records whose field has this value: FIELD=VALUE (repeatable)")
	cmd.Flags().StringVar(&trace, "trace", "", "only the records of one trace, by its id")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// printLogs asks for the lines and prints them as they arrive. A follow ends
// quietly on Ctrl-C, and with a note on stderr when the engine stops.
func printLogs(ctx context.Context, c *engineClient, q url.Values, p *linePrinter, follow bool, stderr io.Writer) error {
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	resp, err := c.do(ctx, "GET", "/admin/v1/logs?"+q.Encode())
	if err != nil {
		if follow && errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	out := bufio.NewWriter(p.w)
	defer out.Flush()
	p.w = out
	dec := json.NewDecoder(resp.Body)
	for {
		var l apitype.LogLine
		if err := dec.Decode(&l); err != nil {
			out.Flush()
			switch {
			case errors.Is(err, io.EOF):
				if follow && ctx.Err() == nil {
					fmt.Fprintf(stderr, "nubo: the engine at %s stopped\n", c.target.addr)
				}
				return nil
			case follow && ctx.Err() != nil:
				return nil // Ctrl-C
			default:
				return fmt.Errorf("read logs from the engine at %s: %w", c.target.addr, err)
			}
		}
		p.print(l)
		// Flush once the lines already received are printed, so that a
		// follower sees each line at once and a long answer is not written
		// line by line.
		if drained(dec) {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

// drained reports whether dec holds no more values in its buffer, only
// the whitespace between them.
func drained(dec *json.Decoder) bool {
	r, ok := dec.Buffered().(io.ByteReader)
	if !ok {
		return true
	}
	for {
		b, err := r.ReadByte()
		switch {
		case err != nil:
			return true
		case b != ' ' && b != '\n' && b != '\r' && b != '\t':
			return false
		}
	}
}

// palette is the ANSI colors docker compose cycles through; the engine's
// own stream uses the same ones, chosen by the same hash, so a service has
// one color in nubo up and in nubo logs.
var palette = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

// linePrinter writes lines as `users-1 | text`, the prefixes padded to the
// longest seen so far.
type linePrinter struct {
	w     io.Writer
	color bool
	width int
	// json prints each record as a JSON line instead (--output json).
	json bool
}

func newLinePrinter(w io.Writer, color bool) *linePrinter {
	return &linePrinter{w: w, color: color, width: len("nubo")}
}

// prefix names a line's source as the engine's stream does: engine events
// under nubo, build output under service-build, a replica's output under
// service-N with N counted from 1.
func prefix(l apitype.LogLine) (text, colorKey string) {
	switch l.Stream {
	case "nubo":
		return "nubo", ""
	case "build":
		return l.Service + "-build", l.Service
	}
	return fmt.Sprintf("%s-%d", l.Service, l.Replica+1), l.Service
}

func (p *linePrinter) print(l apitype.LogLine) {
	if p.json {
		b, _ := json.Marshal(l)
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	pre, key := prefix(l)
	p.width = max(p.width, len(pre))
	pad := strings.Repeat(" ", p.width-len(pre))
	if !p.color {
		fmt.Fprintf(p.w, "%s%s | %s\n", pre, pad, l.Text)
		return
	}
	c := "1" // engine lines in bold
	if key != "" {
		h := fnv.New32a()
		h.Write([]byte(key))
		c = palette[h.Sum32()%uint32(len(palette))]
	}
	fmt.Fprintf(p.w, "\x1b[%sm%s%s |\x1b[0m %s\n", c, pre, pad, l.Text)
}
