package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// jqTimeout bounds one run of a transform.
const jqTimeout = time.Second

// functionMaxBody is the largest body a function integration takes
// without a request.maxBodySize: the functions component's own limit.
const functionMaxBody = 6 << 20

// checkRequest applies the route's request part: required headers and
// query parameters, the body's size, its model and its transform. It
// answers 400, 413 or 415 itself and returns false when the request
// stops here.
func (x *exchange) checkRequest() bool {
	p := x.route.request
	r := x.r
	_, isFunction := x.rs.integ.(*functionIntegration)
	if p == nil {
		if isFunction {
			return x.readBody(functionMaxBody)
		}
		return true
	}
	for _, h := range p.requiredHeaders {
		if len(r.Header[h]) == 0 {
			x.reason = "missing required header " + h
			x.writeError(http.StatusBadRequest, "Missing required request header: "+h, nil)
			return false
		}
	}
	if len(p.requiredQuery) > 0 {
		q := r.URL.Query()
		for _, name := range p.requiredQuery {
			if !q.Has(name) {
				x.reason = "missing required query parameter " + name
				x.writeError(http.StatusBadRequest, "Missing required query parameter: "+name, nil)
				return false
			}
		}
	}
	if p.schema == nil && p.transform == nil && !isFunction {
		if r.ContentLength > p.maxBody {
			x.tooLarge(p.maxBody)
			return false
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(x.w, r.Body, p.maxBody)
		}
		return true
	}
	if !x.readBody(p.maxBody) {
		return false
	}
	var doc any
	parsed := false
	if p.schema != nil {
		if !x.matchesModelType(p) {
			return false
		}
		var err error
		if doc, err = decodeBody(x.body, p.modelType); err != nil {
			x.reason = "request body: " + err.Error()
			x.writeError(http.StatusBadRequest, fmt.Sprintf("Invalid request body: %v", err), nil)
			return false
		}
		parsed = true
		if err := p.schema.Validate(doc); err != nil {
			problems := validationProblems(err)
			x.reason = "request body does not fit model " + p.model
			x.writeError(http.StatusBadRequest, fmt.Sprintf("Invalid request body: it does not fit model %s: %s", p.model, problems[0].String()),
				map[string]any{"errors": problems})
			return false
		}
	}
	if p.transform != nil {
		if !parsed {
			if len(bytes.TrimSpace(x.body)) > 0 {
				if err := json.Unmarshal(x.body, &doc); err != nil {
					x.reason = "request body is not JSON, which request.transform needs"
					x.writeError(http.StatusBadRequest, "Invalid request body: not JSON", nil)
					return false
				}
				doc = useNumbers(x.body, doc)
			}
		}
		out, err := runJQ(r.Context(), p.transform, doc, x.requestVar())
		if err != nil {
			x.reason = "request.transform: " + err.Error()
			x.writeError(http.StatusBadRequest, "Invalid request body: the transform failed: "+err.Error(), nil)
			return false
		}
		body, err := json.Marshal(out)
		if err != nil {
			x.reason = "request.transform: " + err.Error()
			x.writeError(http.StatusInternalServerError, "Internal server error", nil)
			return false
		}
		x.body = body
		r.Header["Content-Type"] = jsonContentType
		r.Header.Del("Content-Length")
		r.ContentLength = int64(len(body))
	}
	return true
}

// readBody reads the whole body, up to limit bytes, into x.body.
func (x *exchange) readBody(limit int64) bool {
	r := x.r
	if r.ContentLength > limit {
		x.tooLarge(limit)
		return false
	}
	x.bodyRead = true
	if r.Body == nil || r.Body == http.NoBody {
		x.body = nil
		return true
	}
	x.buf.Reset()
	_, err := x.buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		x.reason = "read the request body: " + err.Error()
		x.writeError(http.StatusBadRequest, "Invalid request body: "+err.Error(), nil)
		return false
	}
	if int64(x.buf.Len()) > limit {
		x.tooLarge(limit)
		return false
	}
	x.body = x.buf.Bytes()
	return true
}

func (x *exchange) tooLarge(limit int64) {
	x.reason = fmt.Sprintf("request body larger than %d bytes", limit)
	x.w.Header().Set("Connection", "close")
	x.writeError(http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body larger than %d bytes", limit), nil)
}

// matchesModelType checks the body's Content-Type against the model's
// (none is taken as the model's), or answers 415.
func (x *exchange) matchesModelType(p *requestPolicy) bool {
	ct := x.r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && strings.EqualFold(mt, p.modelType) {
		return true
	}
	x.reason = fmt.Sprintf("content type %q, model %s wants %s", ct, p.model, p.modelType)
	x.writeError(http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported Media Type: model %s takes %s", p.model, p.modelType), nil)
	return false
}

// decodeBody reads a body for validation: JSON (with exact numbers) for
// JSON media types, else the text itself.
func decodeBody(body []byte, mediaType string) (any, error) {
	if !strings.Contains(mediaType, "json") {
		return string(body), nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("the body is empty")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	return doc, nil
}

// useNumbers re-reads body with json.Number when it holds numbers, so that
// large integers go through a transform exactly.
func useNumbers(body []byte, doc any) any {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return doc
	}
	return v
}

// Problem is one reason a body does not fit its model, at a JSON pointer.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String is the problem as the 400 answer's message says it.
func (p Problem) String() string { return "at " + p.Path + ": " + p.Message }

// validationProblems lists the leaves of a validation error: where in the
// body, and what is wrong there.
func validationProblems(err error) []Problem {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Path: "/", Message: err.Error()}}
	}
	printer := message.NewPrinter(language.English)
	var out []Problem
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			p := Problem{Path: "/" + strings.Join(e.InstanceLocation, "/"), Message: e.ErrorKind.LocalizedString(printer)}
			if !seen[p.Path+p.Message] {
				seen[p.Path+p.Message] = true
				out = append(out, p)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) == 0 {
		out = append(out, Problem{Path: "/", Message: ve.Error()})
	}
	return out
}

// requestVar is $request: the request's method, route, stage, path
// parameters, query and headers (first values, names in lower case), and
// the authorizer's principal and context.
func (x *exchange) requestVar() map[string]any {
	r := x.r
	path := make(map[string]any, len(x.route.params))
	for i, name := range x.route.params {
		if i < len(x.vals) {
			path[name] = x.vals[i]
		}
	}
	query := map[string]any{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	headers := make(map[string]any, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
	}
	vars := make(map[string]any, len(x.stage.vars))
	for k, v := range x.stage.vars {
		vars[k] = v
	}
	req := map[string]any{
		"method":         r.Method,
		"route":          x.route.path,
		"path":           path,
		"query":          query,
		"headers":        headers,
		"stage":          x.stage.name,
		"stageVariables": vars,
		"authorizer":     nil,
	}
	if x.auth != nil {
		auth := map[string]any{"principal": x.auth.principal}
		for k, v := range x.auth.context {
			auth[k] = jsonValue(v)
		}
		req["authorizer"] = auth
	}
	return req
}

// jsonValue makes v something jq takes (what encoding/json decodes).
func jsonValue(v any) any {
	switch v.(type) {
	case nil, bool, string, float64, int, json.Number, map[string]any, []any:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return string(b)
	}
	return out
}

// runJQ returns the first output of code on v (null when there is none).
func runJQ(ctx context.Context, code *gojq.Code, v any, vars ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, jqTimeout)
	defer cancel()
	iter := code.RunWithContext(ctx, v, vars...)
	out, ok := iter.Next()
	if !ok {
		return nil, nil
	}
	if err, isErr := out.(error); isErr {
		return nil, err
	}
	return out, nil
}

// writeJSON answers with a JSON document.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = msgInternal
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
