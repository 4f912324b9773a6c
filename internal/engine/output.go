package engine

import (
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"

	"github.com/nubo-dev/nubo/internal/logs"
	"github.com/nubo-dev/nubo/internal/supervisor"
)

// output is the `docker compose up`-like stream: every line of every process
// prefixed with `service-N |`, engine events in the same stream under
// `nubo |`, colored per service on a terminal. Every line also goes to the
// log store behind `nubo logs`.
type output struct {
	w     io.Writer
	color bool
	store *logs.Store

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
	text := string(line)
	o.store.Add(logs.Line{Service: service, Replica: replica, Stream: stream, Text: text})
	o.print(fmt.Sprintf("%s-%d", service, replica+1), service, text)
}

// buildLine streams a build's output under `service-build |`.
func (o *output) buildLine(service, text string) {
	o.store.Add(logs.Line{Service: service, Replica: -1, Stream: "build", Text: text})
	o.print(service+"-build", service, text)
}

// event prints an engine event about a service and keeps it in its log.
func (o *output) event(service, text string) {
	o.store.Add(logs.Line{Service: service, Replica: -1, Stream: "nubo", Text: text})
	o.print("nubo", "", text)
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
