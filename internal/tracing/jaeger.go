package tracing

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nubo-dev/nubo/internal/apitype"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The query API is Jaeger's HTTP JSON API (the one the Jaeger UI and
// Grafana's Jaeger data source read), under a prefix: GET
// PREFIX/api/services, PREFIX/api/services/{service}/operations,
// PREFIX/api/operations?service=, PREFIX/api/traces?service=&operation=
// &tags=&minDuration=&maxDuration=&start=&end=&limit=, and
// PREFIX/api/traces/{traceID}.

type jaegerResponse struct {
	Data   any                   `json:"data"`
	Total  int                   `json:"total"`
	Limit  int                   `json:"limit"`
	Offset int                   `json:"offset"`
	Errors []apitype.JaegerError `json:"errors"`
}

// Jaeger's JSON model: the wire types live in apitype, where the CLI and
// the console read them.
type (
	JaegerTrace     = apitype.JaegerTrace
	JaegerSpan      = apitype.JaegerSpan
	JaegerReference = apitype.JaegerReference
	JaegerKeyValue  = apitype.JaegerKeyValue
	JaegerLog       = apitype.JaegerLog
	JaegerProcess   = apitype.JaegerProcess
)

// QueryHandler serves the query API for paths under prefix (for example
// "/jaeger") over
// the store, as the tracer has it.
func QueryHandler(t *Tracer, prefix string) http.Handler {
	return &queryAPI{t: t, prefix: strings.TrimSuffix(prefix, "/") + "/api/"}
}

type queryAPI struct {
	t      *Tracer
	st     *Store
	prefix string
}

func (q *queryAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeJaegerError(w, http.StatusMethodNotAllowed, "the query API is read with GET")
		return
	}
	st := q.t.Store()
	if st == nil {
		writeJaegerError(w, http.StatusServiceUnavailable, "the trace store is not open yet")
		return
	}
	q = &queryAPI{t: q.t, st: st, prefix: q.prefix}
	rest, ok := strings.CutPrefix(r.URL.Path, q.prefix)
	if !ok {
		writeJaegerError(w, http.StatusNotFound, "no such path "+r.URL.Path)
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "services":
		names := q.st.Services()
		writeJaeger(w, jaegerResponse{Data: names, Total: len(names)})
	case len(parts) == 3 && parts[0] == "services" && parts[2] == "operations":
		ops := q.st.Operations(parts[1])
		writeJaeger(w, jaegerResponse{Data: ops, Total: len(ops)})
	case len(parts) == 1 && parts[0] == "operations":
		ops := q.st.Operations(r.URL.Query().Get("service"))
		type op struct {
			Name     string `json:"name"`
			SpanKind string `json:"spanKind"`
		}
		out := make([]op, len(ops))
		for i, o := range ops {
			out[i] = op{Name: o}
		}
		writeJaeger(w, jaegerResponse{Data: out, Total: len(out)})
	case len(parts) == 1 && parts[0] == "traces":
		q.search(w, r)
	case len(parts) == 2 && parts[0] == "traces":
		q.trace(w, parts[1])
	default:
		writeJaegerError(w, http.StatusNotFound, "no such path "+r.URL.Path)
	}
}

func (q *queryAPI) trace(w http.ResponseWriter, idText string) {
	id, err := ParseTraceID(idText)
	if err != nil {
		writeJaegerError(w, http.StatusBadRequest, err.Error())
		return
	}
	spans, err := q.st.Trace(id)
	if err != nil {
		writeJaegerError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(spans) == 0 {
		writeJaeger(w, jaegerResponse{Data: nil, Errors: []apitype.JaegerError{{Code: 404, Msg: "trace not found", TraceID: idText}}}, http.StatusNotFound)
		return
	}
	writeJaeger(w, jaegerResponse{Data: []JaegerTrace{ToJaeger(id, spans)}, Total: 1})
}

func (q *queryAPI) search(w http.ResponseWriter, r *http.Request) {
	query, err := ParseJaegerQuery(r.URL.Query())
	if err != nil {
		writeJaegerError(w, http.StatusBadRequest, err.Error())
		return
	}
	// traceID=... (repeated) asks for those traces, as Jaeger allows.
	var ids []TraceID
	if raw := r.URL.Query()["traceID"]; len(raw) > 0 {
		for _, s := range raw {
			id, err := ParseTraceID(s)
			if err != nil {
				writeJaegerError(w, http.StatusBadRequest, err.Error())
				return
			}
			ids = append(ids, id)
		}
	} else if ids, err = q.st.Search(query); err != nil {
		writeJaegerError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]JaegerTrace, 0, len(ids))
	for _, id := range ids {
		spans, err := q.st.Trace(id)
		if err != nil {
			writeJaegerError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(spans) > 0 {
			out = append(out, ToJaeger(id, spans))
		}
	}
	writeJaeger(w, jaegerResponse{Data: out, Total: len(out), Limit: query.Limit})
}

// ParseJaegerQuery reads a search's parameters as Jaeger does: service,
// operation, tags (a JSON object, or repeated key:value), minDuration and
// maxDuration (Go durations, "1.2s", "100ms"), start and end
// (microseconds since the epoch), lookback ("1h"), limit.
func ParseJaegerQuery(v map[string][]string) (Query, error) {
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	q := Query{Service: get("service"), Operation: get("operation"), Tags: map[string]string{}}
	if t := get("tags"); t != "" {
		var tags map[string]any
		if err := json.Unmarshal([]byte(t), &tags); err != nil {
			return q, fmt.Errorf("tags %q: want a JSON object of strings: %v", t, err)
		}
		for k, val := range tags {
			q.Tags[k] = fmt.Sprint(val)
		}
	}
	for _, t := range v["tag"] {
		k, val, ok := strings.Cut(t, ":")
		if !ok {
			return q, fmt.Errorf("tag %q: want key:value", t)
		}
		q.Tags[k] = val
	}
	var err error
	dur := func(name string) time.Duration {
		s := get(name)
		if s == "" || err != nil {
			return 0
		}
		d, e := time.ParseDuration(s)
		if e != nil || d < 0 {
			err = fmt.Errorf("%s %q: want a duration like 100ms or 1.5s", name, s)
		}
		return d
	}
	q.MinDuration, q.MaxDuration = dur("minDuration"), dur("maxDuration")
	micros := func(name string) time.Time {
		s := get(name)
		if s == "" || err != nil {
			return time.Time{}
		}
		n, e := strconv.ParseInt(s, 10, 64)
		if e != nil {
			err = fmt.Errorf("%s %q: want microseconds since the epoch", name, s)
		}
		return time.UnixMicro(n)
	}
	q.Start, q.End = micros("start"), micros("end")
	if lb := dur("lookback"); lb > 0 && q.Start.IsZero() {
		q.Start = time.Now().Add(-lb)
	}
	if l := get("limit"); l != "" && err == nil {
		q.Limit, err = strconv.Atoi(l)
		if err != nil || q.Limit < 0 {
			err = fmt.Errorf("limit %q: want a positive number", l)
		}
	}
	if err == nil && q.MaxDuration > 0 && q.MinDuration > q.MaxDuration {
		err = errors.New("minDuration is above maxDuration")
	}
	return q, err
}

// ToJaeger converts a trace's spans to Jaeger's model: one process per
// service and resource.
func ToJaeger(id TraceID, spans []Span) JaegerTrace {
	t := JaegerTrace{TraceID: id.String(), Spans: make([]JaegerSpan, 0, len(spans)), Processes: map[string]JaegerProcess{}}
	procs := map[string]string{}
	for i := range spans {
		sp := &spans[i]
		key := resourceKey(sp)
		pid, ok := procs[key]
		if !ok {
			pid = "p" + strconv.Itoa(len(procs)+1)
			procs[key] = pid
			t.Processes[pid] = JaegerProcess{ServiceName: sp.Service, Tags: jaegerTags(sp.Resource)}
		}
		js := JaegerSpan{TraceID: t.TraceID, SpanID: sp.SpanID.String(), OperationName: sp.Name,
			References: []JaegerReference{}, Flags: 1,
			StartTime: sp.Start / 1e3, Duration: (sp.End - sp.Start) / 1e3,
			Tags: jaegerTags(sp.Attrs), Logs: []JaegerLog{}, ProcessID: pid}
		if !sp.Parent.IsZero() {
			js.References = append(js.References, JaegerReference{RefType: "CHILD_OF", TraceID: t.TraceID, SpanID: sp.Parent.String()})
		}
		if k := sp.Kind.String(); k != "" {
			js.Tags = append(js.Tags, JaegerKeyValue{Key: "span.kind", Type: "string", Value: k})
		}
		if sp.Failed() {
			js.Tags = append(js.Tags, JaegerKeyValue{Key: "error", Type: "bool", Value: true})
		}
		if sp.StatusMessage != "" {
			js.Tags = append(js.Tags, JaegerKeyValue{Key: "otel.status_description", Type: "string", Value: sp.StatusMessage})
		}
		if sp.Scope != "" {
			js.Tags = append(js.Tags, JaegerKeyValue{Key: "otel.scope.name", Type: "string", Value: sp.Scope})
		}
		for _, e := range sp.Events {
			fields := append([]JaegerKeyValue{{Key: "event", Type: "string", Value: e.Name}}, jaegerTags(e.Attrs)...)
			js.Logs = append(js.Logs, JaegerLog{Timestamp: e.Time / 1e3, Fields: fields})
		}
		t.Spans = append(t.Spans, js)
	}
	return t
}

func jaegerTags(attrs []Attr) []JaegerKeyValue {
	out := make([]JaegerKeyValue, 0, len(attrs))
	for _, a := range attrs {
		kv := JaegerKeyValue{Key: a.Key, Type: "string", Value: a.Value}
		switch a.Type {
		case "int64":
			if n, err := strconv.ParseInt(a.Value, 10, 64); err == nil {
				kv.Type, kv.Value = "int64", n
			}
		case "float64":
			if f, err := strconv.ParseFloat(a.Value, 64); err == nil {
				kv.Type, kv.Value = "float64", f
			}
		case "bool":
			if b, err := strconv.ParseBool(a.Value); err == nil {
				kv.Type, kv.Value = "bool", b
			}
		}
		out = append(out, kv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func writeJaeger(w http.ResponseWriter, resp jaegerResponse, code ...int) {
	w.Header().Set("Content-Type", "application/json")
	if len(code) > 0 {
		w.WriteHeader(code[0])
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func writeJaegerError(w http.ResponseWriter, code int, msg string) {
	writeJaeger(w, jaegerResponse{Errors: []apitype.JaegerError{{Code: code, Msg: msg}}}, code)
}
