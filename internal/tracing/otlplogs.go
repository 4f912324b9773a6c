package tracing

import (
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// LogLines converts OTLP log records to nubo's log records: the service
// from service.name, the body as text, the severity as level, attributes
// as fields, the trace ID linking to the trace. Stream is "otlp".
func LogLines(ld plog.Logs) []apitype.LogLine {
	var out []apitype.LogLine
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		service := unknownService
		if v, ok := rl.Resource().Attributes().Get(ServiceNameKey); ok {
			service = v.AsString()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				r := recs.At(k)
				l := apitype.LogLine{Service: service, Replica: -1, Stream: "otlp", Text: r.Body().AsString(),
					Level: severity(r)}
				switch {
				case r.Timestamp() != 0:
					l.Time = r.Timestamp().AsTime()
				case r.ObservedTimestamp() != 0:
					l.Time = r.ObservedTimestamp().AsTime()
				default:
					l.Time = time.Now()
				}
				if !r.TraceID().IsEmpty() {
					l.TraceID = TraceID(r.TraceID()).String()
				}
				if r.Attributes().Len() > 0 {
					l.Fields = make(map[string]any, r.Attributes().Len())
					r.Attributes().Range(func(k string, v pcommon.Value) bool {
						l.Fields[k] = v.AsRaw()
						return true
					})
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// severity maps an OTLP severity to nubo's levels (error, warn, info,
// debug), from its number or else its text.
func severity(r plog.LogRecord) string {
	switch n := r.SeverityNumber(); {
	case n >= plog.SeverityNumberError:
		return "error"
	case n >= plog.SeverityNumberWarn:
		return "warn"
	case n >= plog.SeverityNumberInfo:
		return "info"
	case n >= plog.SeverityNumberTrace:
		return "debug"
	}
	return strings.ToLower(r.SeverityText())
}
