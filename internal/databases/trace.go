package databases

import (
	"errors"
	"time"

	"github.com/nubo-dev/nubo/internal/tracecontext"
	"github.com/nubo-dev/nubo/internal/tracing"
)

// Tracer records the spans of connections through the allow-list
// listeners. Record must not block.
type Tracer interface {
	Record(tracing.Span)
	// Sample decides about the trace a connection starts.
	Sample(traceID [16]byte) bool
}

// errRefused is a connection the allow-list refused.
var errRefused = errors.New("refused: security.network.ingress does not list this workload")

// connSpan begins the CLIENT span of a workload's connection to the
// database, from the accept to the close, with OpenTelemetry's database
// attributes. A TCP connection carries no trace context, so each is the
// root of a trace of its own; nil when tracing is off or unsampled.
func (db *Database) connSpan(workload string) *tracing.Span {
	t := db.d.cfg.Tracer
	if t == nil {
		return nil
	}
	id := tracecontext.NewTraceID()
	if !t.Sample(id) {
		return nil
	}
	system := "postgresql"
	if db.spec.Type == "redis" {
		system = "redis"
	}
	s := &tracing.Span{TraceID: id, SpanID: tracecontext.NewSpanID(), Name: "connect " + db.name, Kind: tracing.KindClient,
		Service: workload, Start: time.Now().UnixNano(), Attrs: make([]tracing.Attr, 0, 8)}
	s.Attrs = append(s.Attrs,
		tracing.String("db.system.name", system),
		tracing.String("db.namespace", db.name),
		tracing.String("db.operation.name", "connect"),
		tracing.String("server.address", host),
		tracing.Int("server.port", int64(db.port)))
	return s
}

// endConnSpan records the connection's end: the bytes each way, or why it
// was refused or failed.
func (db *Database) endConnSpan(s *tracing.Span, sent, received int64, err error) {
	if s == nil {
		return
	}
	s.End = time.Now().UnixNano()
	if err != nil {
		s.Status, s.StatusMessage = tracing.StatusError, err.Error()
		errType := "connect_failure"
		if errors.Is(err, errRefused) {
			errType = "refused_by_allow_list"
		}
		s.Attrs = append(s.Attrs, tracing.String("error.type", errType))
	} else {
		s.Attrs = append(s.Attrs, tracing.Int("nubo.database.bytes_sent", sent), tracing.Int("nubo.database.bytes_received", received))
	}
	db.d.cfg.Tracer.Record(*s)
}
