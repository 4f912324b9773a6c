package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/nubo-dev/nubo/internal/cebinding"
)

// Headers of an invocation's answer through the platform API and http
// triggers, beside the function's own.
const (
	// HeaderDuration is how long the function took, in milliseconds.
	HeaderDuration = "Nubo-Duration-Ms"
	// HeaderColdStart is "true" when the invocation waited for a cold start.
	HeaderColdStart = "Nubo-Cold-Start"
	// HeaderInitDuration is that cold start, in milliseconds.
	HeaderInitDuration = "Nubo-Init-Duration-Ms"
	// HeaderInstance is the number of the instance that ran it.
	HeaderInstance = "Nubo-Instance"
	// HeaderError is set, with the error, when the function answered a
	// non-2xx status (which is passed on).
	HeaderError = "Nubo-Error"
)

// DefaultInvokeType is the CloudEvents type of an invocation whose body is
// not a CloudEvent and that names no ?type.
const DefaultInvokeType = "nubo.invoke"

// maxRequestBody bounds a request to the API or an http trigger.
const maxRequestBody = 6 << 20

// routes serves the platform API's /v1/functions and the http triggers.
type routes struct {
	f        *Functions
	mux      *http.ServeMux
	patterns []string
}

// apiPatterns are the platform API's routes for functions.
var apiPatterns = []string{
	"POST /v1/functions/{name}/invoke",
	"GET /v1/functions",
	"GET /v1/functions/{name}",
}

func newRoutes(f *Functions) (*routes, error) {
	rt := &routes{f: f, mux: http.NewServeMux()}
	rt.mux.HandleFunc(apiPatterns[0], rt.invoke)
	rt.mux.HandleFunc(apiPatterns[1], rt.list)
	rt.mux.HandleFunc(apiPatterns[2], rt.get)
	rt.patterns = append(rt.patterns, apiPatterns...)
	owner := map[string]string{}
	var errs []error
	for _, name := range f.names {
		for i, t := range f.cfg.App.Functions[name].Triggers {
			if t.HTTP == nil || (t.Enabled != nil && !*t.Enabled) {
				continue
			}
			method := t.HTTP.Method
			if method == "" {
				method = http.MethodPost
			}
			pattern := method + " " + t.HTTP.Path
			if other, ok := owner[pattern]; ok {
				errs = append(errs, fmt.Errorf("function %q: triggers[%d]: http %s is also a trigger of function %q", name, i, pattern, other))
				continue
			}
			if err := register(rt.mux, pattern, f.HTTPHandler(name)); err != nil {
				errs = append(errs, fmt.Errorf("function %q: triggers[%d]: http %s: %w", name, i, pattern, err))
				continue
			}
			owner[pattern] = name
			rt.patterns = append(rt.patterns, pattern)
		}
	}
	return rt, errors.Join(errs...)
}

// register adds a route, turning ServeMux's panic on a bad or conflicting
// pattern into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// Handler serves the platform API's routes for functions (POST
// /v1/functions/{name}/invoke, GET /v1/functions, GET
// /v1/functions/{name}) and every enabled http trigger's route. Patterns
// lists them, for mounting on another ServeMux.
func (f *Functions) Handler() http.Handler { return f.routes }

// Patterns returns the net/http ServeMux patterns Handler serves: the API's
// and then each http trigger's "METHOD PATH".
func (f *Functions) Patterns() []string { return append([]string(nil), f.routes.patterns...) }

func (rt *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := rt.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no function or http trigger here", r.Method, r.URL.Path))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// invoke is POST /v1/functions/{name}/invoke: the body is a CloudEvent
// (binary or structured mode), a batch, or any other body, which becomes
// the data of an event of type ?type (default nubo.invoke). With
// ?async=true the invocation is a delivery in the background (retries and
// dead letter) and the answer is 202.
func (rt *routes) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := rt.f.pool(name); err != nil {
		writeAnswer(w, Result{}, err, false)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	q := r.URL.Query()
	async := q.Get("async") == "true"
	if cehttp.IsHTTPBatch(r.Header) {
		events, err := cehttp.NewEventsFromHTTPRequest(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("function %q: read the batch of CloudEvents: %v", name, err))
			return
		}
		if async {
			writeError(w, http.StatusBadRequest, "async=true takes one event, not a batch")
			return
		}
		res, err := rt.f.InvokeBatch(r.Context(), name, events)
		writeAnswer(w, res, err, false)
		return
	}
	e, err := requestEvent(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("function %q: %v", name, err))
		return
	}
	if async {
		if err := fillEvent(&e); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("function %q: %v", name, err))
			return
		}
		if err := rt.f.DeliverAsync(name, e); err != nil {
			writeAnswer(w, Result{}, err, false)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"function": name, "id": e.ID()})
		return
	}
	res, err := rt.f.Invoke(r.Context(), name, e)
	writeAnswer(w, res, err, false)
}

// requestEvent reads the CloudEvent of a request, or makes one of its body.
func requestEvent(r *http.Request) (event.Event, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if r.Header.Get("Ce-Specversion") != "" || mt == event.ApplicationCloudEventsJSON {
		if err := cebinding.DecodeHeaders(r.Header); err != nil {
			return event.Event{}, fmt.Errorf("read the CloudEvent: %w", err)
		}
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			return event.Event{}, fmt.Errorf("read the CloudEvent: %w", err)
		}
		return *e, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return event.Event{}, fmt.Errorf("read the body: %w", err)
	}
	q := r.URL.Query()
	e := event.New()
	e.SetType(orDefault(q.Get("type"), DefaultInvokeType))
	e.SetSource(orDefault(q.Get("source"), "nubo/api"))
	if s := q.Get("subject"); s != "" {
		e.SetSubject(s)
	}
	if len(body) > 0 {
		if ct == "" {
			ct = "application/octet-stream"
			if json.Valid(body) {
				ct = event.ApplicationJSON
			}
		}
		e.SetDataContentType(ct)
		e.DataEncoded = body
	}
	return e, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (rt *routes) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, rt.f.Status())
}

func (rt *routes) get(w http.ResponseWriter, r *http.Request) {
	st, err := rt.f.FunctionStatus(r.PathValue("name"))
	if err != nil {
		writeAnswer(w, Result{}, err, false)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// HTTPHandler returns the handler of a function's http trigger: each
// request becomes an event of type nubo.http.request (see
// sdk/function.HTTPRequest), and the function's answer (status, headers,
// body) is the response. The gateway's function integration uses it too.
func (f *Functions) HTTPHandler(function string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		e, err := NewHTTPEvent(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("function %q: %v", function, err))
			return
		}
		res, err := f.Invoke(r.Context(), function, e)
		writeAnswer(w, res, err, true)
	})
}

// writeAnswer writes an invocation's outcome: the function's answer (also
// a non-2xx one, with Nubo-Error), or nubo's own error as JSON with the
// status HTTPStatus gives. passHeaders passes the function's headers on (an
// http trigger); otherwise only its Content-Type.
func writeAnswer(w http.ResponseWriter, res Result, err error, passHeaders bool) {
	h := w.Header()
	if res.Instance > 0 {
		h.Set(HeaderInstance, strconv.Itoa(res.Instance))
		h.Set(HeaderDuration, durationMs(res.Duration))
		h.Set(HeaderColdStart, strconv.FormatBool(res.ColdStart))
		if res.ColdStart {
			h.Set(HeaderInitDuration, durationMs(res.InitDuration))
		}
	}
	if err != nil && (!errors.Is(err, ErrFunction) || res.Status == 0) {
		status := HTTPStatus(err)
		if status == http.StatusTooManyRequests {
			h.Set("Retry-After", "1")
		}
		writeError(w, status, err.Error())
		return
	}
	if err != nil {
		h.Set(HeaderError, headerSafe(err.Error()))
	}
	if passHeaders {
		for k, v := range res.Header {
			if !strings.HasPrefix(k, "Nubo-") {
				h[k] = v
			}
		}
	} else if res.ContentType != "" {
		h.Set("Content-Type", res.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}

// headerSafe keeps a message to one printable line for a header value.
func headerSafe(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 500 {
		b = b[:500]
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
