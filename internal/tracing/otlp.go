package tracing

import (
	"encoding/json"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ServiceNameKey is the resource attribute that names a span's service.
const ServiceNameKey = "service.name"

// unknownService is what the OpenTelemetry SDKs call a service without a
// name.
const unknownService = "unknown_service"

// FromTraces converts OTLP spans. A span with an invalid trace or span ID
// is rejected, as the collector's exporters would fail on it; why says
// so for the partial-success answer.
func FromTraces(td ptrace.Traces) (spans []Span, rejected int, why string) {
	spans = make([]Span, 0, td.SpanCount())
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := unknownService
		var res []Attr
		rs.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			if k == ServiceNameKey {
				service = v.AsString()
			} else {
				res = append(res, attrOf(k, v))
			}
			return true
		})
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope().Name()
			ps := ss.Spans()
			for k := 0; k < ps.Len(); k++ {
				p := ps.At(k)
				if p.TraceID().IsEmpty() || p.SpanID().IsEmpty() {
					rejected++
					why = "a span has an all-zero trace or span ID"
					continue
				}
				sp := Span{TraceID: TraceID(p.TraceID()), SpanID: SpanID(p.SpanID()), Parent: SpanID(p.ParentSpanID()),
					Name: p.Name(), Kind: Kind(p.Kind()), Service: service,
					Start: int64(p.StartTimestamp()), End: int64(p.EndTimestamp()),
					Status: Status(p.Status().Code()), StatusMessage: p.Status().Message(),
					Resource: res, Scope: scope}
				if sp.End < sp.Start {
					sp.End = sp.Start
				}
				p.Attributes().Range(func(k string, v pcommon.Value) bool {
					sp.Attrs = append(sp.Attrs, attrOf(k, v))
					return true
				})
				evs := p.Events()
				for e := 0; e < evs.Len(); e++ {
					ev := evs.At(e)
					x := Event{Time: int64(ev.Timestamp()), Name: ev.Name()}
					ev.Attributes().Range(func(k string, v pcommon.Value) bool {
						x.Attrs = append(x.Attrs, attrOf(k, v))
						return true
					})
					sp.Events = append(sp.Events, x)
				}
				spans = append(spans, sp)
			}
		}
	}
	return spans, rejected, why
}

func attrOf(k string, v pcommon.Value) Attr {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return Attr{Key: k, Type: "int64", Value: strconv.FormatInt(v.Int(), 10)}
	case pcommon.ValueTypeDouble:
		return Attr{Key: k, Type: "float64", Value: strconv.FormatFloat(v.Double(), 'g', -1, 64)}
	case pcommon.ValueTypeBool:
		return Attr{Key: k, Type: "bool", Value: strconv.FormatBool(v.Bool())}
	}
	return Attr{Key: k, Value: v.AsString()}
}

func putAttr(m pcommon.Map, a Attr) {
	switch a.Type {
	case "int64":
		n, err := strconv.ParseInt(a.Value, 10, 64)
		if err == nil {
			m.PutInt(a.Key, n)
			return
		}
	case "float64":
		f, err := strconv.ParseFloat(a.Value, 64)
		if err == nil {
			m.PutDouble(a.Key, f)
			return
		}
	case "bool":
		b, err := strconv.ParseBool(a.Value)
		if err == nil {
			m.PutBool(a.Key, b)
			return
		}
	}
	m.PutStr(a.Key, a.Value)
}

// ToTraces converts spans to OTLP, one resource per service (and resource
// attributes), for export.
func ToTraces(spans []Span) ptrace.Traces {
	td := ptrace.NewTraces()
	byRes := map[string]ptrace.SpanSlice{}
	for i := range spans {
		sp := &spans[i]
		key := resourceKey(sp)
		out, ok := byRes[key]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			attrs := rs.Resource().Attributes()
			attrs.PutStr(ServiceNameKey, sp.Service)
			for _, a := range sp.Resource {
				putAttr(attrs, a)
			}
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(sp.Scope)
			out = ss.Spans()
			byRes[key] = out
		}
		p := out.AppendEmpty()
		p.SetTraceID(pcommon.TraceID(sp.TraceID))
		p.SetSpanID(pcommon.SpanID(sp.SpanID))
		p.SetParentSpanID(pcommon.SpanID(sp.Parent))
		p.SetName(sp.Name)
		p.SetKind(ptrace.SpanKind(sp.Kind))
		p.SetStartTimestamp(pcommon.Timestamp(sp.Start))
		p.SetEndTimestamp(pcommon.Timestamp(sp.End))
		p.Status().SetCode(ptrace.StatusCode(sp.Status))
		p.Status().SetMessage(sp.StatusMessage)
		for _, a := range sp.Attrs {
			putAttr(p.Attributes(), a)
		}
		for _, e := range sp.Events {
			ev := p.Events().AppendEmpty()
			ev.SetTimestamp(pcommon.Timestamp(e.Time))
			ev.SetName(e.Name)
			for _, a := range e.Attrs {
				putAttr(ev.Attributes(), a)
			}
		}
	}
	return td
}

// resourceKey tells resources apart: the service, its resource
// attributes and the scope.
func resourceKey(sp *Span) string {
	b, _ := json.Marshal(sp.Resource)
	return sp.Service + "\x00" + sp.Scope + "\x00" + string(b)
}
