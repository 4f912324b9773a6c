package engine

import (
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/supervisor"
	"github.com/nubo-dev/nubo/internal/tracing"
	"go.opentelemetry.io/collector/pdata/plog"
)

// output is the `docker compose up`-like stream: every line of every process
// prefixed with `service-N |`, engine events in the same stream under
// `nubo |`, colored per service on a terminal. Every line becomes a record
// (logs.Pipeline: parsed, then kept, dropped or redacted by the spec's log
// filters) that goes to the memory ring behind `nubo logs -f` and to the
// records on disk; a dropped record is not printed either.
type output struct {
	w     io.Writer
	color bool
	store *logs.Store
	// pipe and disk are swapped by reloads and set at start.
	pipe atomic.Pointer[logs.Pipeline]
	disk atomic.Pointer[logs.Disk]

	diskErr sync.Once // says once that records are not written

	mu    sync.Mutex // guards w and width
	width int        // the longest prefix so far, so columns line up
}

// ANSI colors docker compose cycles through.
var palette = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

func newOutput(w io.Writer, color bool, store *logs.Store) *output {
	if w == nil {
		w = io.Discard
	}
	return &output{w: w, color: color, store: store, width: len("nubo")}
}

// Line implements supervisor.LineSink.
func (o *output) Line(service string, replica int, stream string, line []byte) {
	if l, ok := o.record(logs.Line{Service: service, Replica: replica, Stream: stream, Text: string(line)}); ok {
		o.print(fmt.Sprintf("%s-%d", service, replica+1), service, l.Text)
	}
}

// buildLine streams a build's output under `service-build |`.
func (o *output) buildLine(service, text string) {
	if l, ok := o.record(logs.Line{Service: service, Replica: -1, Stream: "build", Text: text}); ok {
		o.print(service+"-build", service, l.Text)
	}
}

// event prints an engine event about a service and keeps it in its log.
func (o *output) event(service, text string) {
	if l, ok := o.record(logs.Line{Service: service, Replica: -1, Stream: "nubo", Text: text}); ok {
		o.print("nubo", "", l.Text)
	}
}

// record runs a line through the pipeline and keeps it, unless a filter
// drops it.
func (o *output) record(l logs.Line) (logs.Line, bool) {
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	fields := l.Fields
	if !o.pipe.Load().Process(&l) {
		return l, false
	}
	// What the line's text held comes first; fields the sender gave
	// (OTLP attributes) fill in the rest.
	for k, v := range fields {
		if l.Fields == nil {
			l.Fields = map[string]any{}
		}
		if _, ok := l.Fields[k]; !ok {
			l.Fields[k] = v
		}
	}
	o.store.Add(l)
	if err := o.disk.Load().Append(l); err != nil {
		o.diskErr.Do(func() { o.print("nubo", "", "logs are no longer written to disk: "+err.Error()) })
	}
	return l, true
}

// otlpLogs keeps log records received over OTLP as records of their
// service, through the same parsers and filters, and prints them.
func (o *output) otlpLogs(ld plog.Logs) (rejected int, err error) {
	for _, l := range tracing.LogLines(ld) {
		if l, ok := o.record(l); ok {
			o.print(l.Service+"-otlp", l.Service, l.Text)
		}
	}
	return 0, nil
}

// Event implements supervisor.EventSink.
func (o *output) Event(e supervisor.Event) {
	o.event(e.Service, describeEvent(e))
}

func (o *output) print(prefix, colorKey, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(prefix) > o.width {
		o.width = len(prefix)
	}
	pad := strings.Repeat(" ", o.width-len(prefix))
	if o.color {
		c := "1" // engine lines in bold
		if colorKey != "" {
			h := fnv.New32a()
			h.Write([]byte(colorKey))
			c = palette[h.Sum32()%uint32(len(palette))]
		}
		fmt.Fprintf(o.w, "\x1b[%sm%s%s |\x1b[0m %s\n", c, prefix, pad, text)
		return
	}
	fmt.Fprintf(o.w, "%s%s | %s\n", prefix, pad, text)
}

// describeEvent renders a supervisor event as a line of the stream, naming the
// replica as the stream's prefixes do.
func describeEvent(e supervisor.Event) string {
	if e.Kind == supervisor.EventScaled || e.Kind == supervisor.EventAutoscaled {
		return fmt.Sprintf("%s %s", e.Service, e.Message)
	}
	return fmt.Sprintf("%s-%d %s", e.Service, e.Replica+1, e)
}
