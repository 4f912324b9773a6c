package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml"

	"github.com/nubo-dev/nubo/internal/spec"
)

// OpenAPIVersion is the version of the OpenAPI documents OpenAPI writes.
const OpenAPIVersion = "3.1.0"

// OpenAPIOptions shape the document OpenAPI writes.
type OpenAPIOptions struct {
	// Server is the base URL of the gateway (http://127.0.0.1:8000); each
	// stage is a server under it. Empty: servers are relative paths.
	Server string
}

// OpenAPIDoc is an OpenAPI 3.1 document, as much of it as the gateway
// describes. Fields are in the order OpenAPI documents usually list them.
type OpenAPIDoc struct {
	OpenAPI    string               `json:"openapi"`
	Info       OpenAPIInfo          `json:"info"`
	Servers    []OpenAPIServer      `json:"servers,omitempty"`
	Paths      map[string]*PathItem `json:"paths"`
	Components Components           `json:"components"`
}

// OpenAPIInfo is the document's info object.
type OpenAPIInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// OpenAPIServer is a stage as a server.
type OpenAPIServer struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// PathItem holds a path's operations.
type PathItem struct {
	Get     *Operation `json:"get,omitempty"`
	Put     *Operation `json:"put,omitempty"`
	Post    *Operation `json:"post,omitempty"`
	Delete  *Operation `json:"delete,omitempty"`
	Options *Operation `json:"options,omitempty"`
	Head    *Operation `json:"head,omitempty"`
	Patch   *Operation `json:"patch,omitempty"`
}

func (p *PathItem) slot(method string) **Operation {
	switch method {
	case "GET":
		return &p.Get
	case "PUT":
		return &p.Put
	case "POST":
		return &p.Post
	case "DELETE":
		return &p.Delete
	case "OPTIONS":
		return &p.Options
	case "HEAD":
		return &p.Head
	case "PATCH":
		return &p.Patch
	}
	return nil
}

// Operation is one method of a route.
type Operation struct {
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary,omitempty"`
	Parameters  []Parameter           `json:"parameters,omitempty"`
	RequestBody *RequestBody          `json:"requestBody,omitempty"`
	Responses   map[string]*Response  `json:"responses"`
	Security    []map[string][]string `json:"security,omitempty"`
	Integration map[string]any        `json:"x-nubo-integration,omitempty"`
}

// Parameter is a path, query or header parameter.
type Parameter struct {
	Name        string         `json:"name"`
	In          string         `json:"in"`
	Description string         `json:"description,omitempty"`
	Required    bool           `json:"required,omitempty"`
	Schema      map[string]any `json:"schema"`
}

// RequestBody is a route's body, with its model.
type RequestBody struct {
	Required bool                 `json:"required"`
	Content  map[string]MediaType `json:"content"`
}

// MediaType is a body of one content type.
type MediaType struct {
	Schema  map[string]any `json:"schema,omitempty"`
	Example any            `json:"example,omitempty"`
}

// Response is one status's answer.
type Response struct {
	Description string               `json:"description"`
	Content     map[string]MediaType `json:"content,omitempty"`
}

// Components holds the models, the error answer and the security schemes.
type Components struct {
	Schemas         map[string]any             `json:"schemas,omitempty"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes,omitempty"`
}

// SecurityScheme is an authorizer.
type SecurityScheme struct {
	Type         string `json:"type"`
	Description  string `json:"description,omitempty"`
	Name         string `json:"name,omitempty"`
	In           string `json:"in,omitempty"`
	Scheme       string `json:"scheme,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
}

// allMethods are the methods an ANY route answers, in OpenAPI's order.
var allMethods = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"}

// OpenAPI describes app's gateway as an OpenAPI 3.1 document: its stages
// as servers, its routes with their parameters (path, required headers
// and query parameters, cache keys), request models, answers and
// security, its models as schemas and its authorizers as security
// schemes. It reads only the spec, so it works without `nubo up`.
func OpenAPI(app *spec.App, opts OpenAPIOptions) (*OpenAPIDoc, error) {
	gw := app.Gateway
	if gw == nil {
		return nil, errors.New("openapi: the spec has no gateway section")
	}
	doc := &OpenAPIDoc{
		OpenAPI: OpenAPIVersion,
		Info:    OpenAPIInfo{Title: orDefault(gw.Name, app.Name), Version: orDefault(gw.Version, "0.0.0")},
		Paths:   map[string]*PathItem{},
		Components: Components{
			Schemas:         map[string]any{},
			SecuritySchemes: map[string]*SecurityScheme{},
		},
	}
	doc.Info.Description = fmt.Sprintf("The API gateway of %s, described by nubo from its spec.", app.Name)
	base := strings.TrimSuffix(opts.Server, "/")
	stages := sortedKeys(gw.Stages)
	if len(stages) == 0 {
		stages = []string{defaultStage}
	}
	for _, st := range stages {
		u := base + "/" + st
		desc := "stage " + st
		if st == defaultStage {
			u, desc = base+"/", "the default stage, without a prefix"
		}
		doc.Servers = append(doc.Servers, OpenAPIServer{URL: u, Description: desc})
	}
	errSchema := "NuboError"
	for gw.Models[errSchema] != nil {
		errSchema += "_"
	}
	doc.Components.Schemas[errSchema] = map[string]any{
		"type":        "object",
		"description": "An error answered by the gateway.",
		"required":    []string{"message"},
		"properties": map[string]any{
			"message": map[string]any{"type": "string"},
			"errors": map[string]any{"type": "array", "items": map[string]any{
				"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}},
			}},
		},
	}
	for _, name := range sortedKeys(gw.Models) {
		schema, ok := rebaseRefs(gw.Models[name].Schema, "#/components/schemas/"+jsonPointerEscape(name)).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi: model %q: the schema is not an object", name)
		}
		doc.Components.Schemas[name] = schema
	}
	for _, name := range sortedKeys(gw.Authorizers) {
		s, err := securityScheme(gw.Authorizers[name])
		if err != nil {
			return nil, fmt.Errorf("openapi: authorizer %q: %w", name, err)
		}
		doc.Components.SecuritySchemes[name] = s
	}
	stageThrottle := slices.ContainsFunc(stages, func(s string) bool { return gw.Stages[s] != nil && gw.Stages[s].Throttle != nil })
	shapes := map[string]string{} // route shape -> the path written in the document
	ids := map[string]bool{}
	for i, rt := range gw.Routes {
		if _, err := checkTemplate(rt.Path); err != nil {
			return nil, fmt.Errorf("openapi: routes[%d]: %w", i, err)
		}
		shape := shapeOf(rt.Path)
		path, ok := shapes[shape]
		if !ok {
			path = openAPIPath(rt.Path)
			shapes[shape] = path
		}
		// Routes of one shape share the document's parameter names: those
		// of the first route written.
		names := pathParams(path)
		item := doc.Paths[path]
		if item == nil {
			item = &PathItem{}
			doc.Paths[path] = item
		}
		methods := rt.Methods
		if len(methods) == 0 || slices.Contains(methods, "ANY") {
			methods = allMethods
		}
		for _, m := range methods {
			slot := item.slot(strings.ToUpper(m))
			if slot == nil {
				continue
			}
			if *slot != nil {
				return nil, fmt.Errorf("openapi: routes[%d]: %s %s is already routed", i, m, rt.Path)
			}
			op := operation(gw, rt, strings.ToUpper(m), names, errSchema, stageThrottle)
			op.OperationID = uniqueID(ids, operationID(m, rt.Path))
			*slot = op
		}
	}
	return doc, nil
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func operation(gw *spec.Gateway, rt *spec.GatewayRoute, method string, names []string, errSchema string, stageThrottle bool) *Operation {
	op := &Operation{Summary: method + " " + rt.Path, Responses: map[string]*Response{}}
	errContent := map[string]MediaType{"application/json": {Schema: map[string]any{"$ref": "#/components/schemas/" + errSchema}}}
	for j, name := range names {
		p := Parameter{Name: name, In: "path", Required: true, Schema: map[string]any{"type": "string"}}
		if j == len(names)-1 && strings.HasSuffix(rt.Path, "+}") {
			p.Description = "The rest of the path, slashes included (" + rt.Path + ")."
		}
		op.Parameters = append(op.Parameters, p)
	}
	seen := map[string]bool{}
	addParam := func(in, name string, required bool, desc string) {
		key := in + "/" + strings.ToLower(name)
		// OpenAPI ignores header parameters of these names: they are
		// described by the request body and the security schemes.
		if seen[key] || (in == "header" && slices.Contains([]string{"accept", "content-type", "authorization"}, strings.ToLower(name))) {
			return
		}
		seen[key] = true
		op.Parameters = append(op.Parameters, Parameter{Name: name, In: in, Required: required, Description: desc, Schema: map[string]any{"type": "string"}})
	}
	if rq := rt.Request; rq != nil {
		for _, h := range rq.Required.Headers {
			addParam("header", h, true, "")
		}
		for _, q := range rq.Required.Query {
			addParam("query", q, true, "")
		}
		if rq.Model != "" && gw.Models[rq.Model] != nil {
			ct := orDefault(gw.Models[rq.Model].ContentType, "application/json")
			op.RequestBody = &RequestBody{Required: true, Content: map[string]MediaType{
				ct: {Schema: map[string]any{"$ref": "#/components/schemas/" + jsonPointerEscape(rq.Model)}},
			}}
			op.Responses["415"] = &Response{Description: "The body is not " + ct + ".", Content: errContent}
		}
		op.Responses["400"] = &Response{Description: "The request is missing a required header or query parameter, or its body does not fit.", Content: errContent}
		op.Responses["413"] = &Response{Description: "The body is too large.", Content: errContent}
	}
	if c := rt.Cache; c != nil {
		for _, k := range c.Keys {
			kind, name, _ := strings.Cut(k, ".")
			if kind == "query" || kind == "header" {
				addParam(kind, name, false, "Part of the cache key.")
			}
		}
	}
	in := rt.Integration
	switch in.Type {
	case "mock":
		status := in.Status
		if status == 0 {
			status = http.StatusOK
		}
		resp := &Response{Description: "The mock answer."}
		if in.Body != "" {
			ct := "text/plain"
			for k, v := range in.Headers {
				if strings.EqualFold(k, "content-type") {
					ct = v
				}
			}
			var example any = in.Body
			if strings.Contains(ct, "json") {
				var v any
				if json.Unmarshal([]byte(in.Body), &v) == nil {
					example = v
				}
			}
			resp.Content = map[string]MediaType{ct: {Example: example}}
		}
		op.Responses[strconv.Itoa(status)] = resp
		op.Integration = map[string]any{"type": "mock"}
	default:
		op.Responses["200"] = &Response{Description: "The answer of the " + in.Type + " integration."}
		integ := map[string]any{"type": in.Type}
		for k, v := range map[string]string{"service": in.Service, "function": in.Function, "url": in.URL, "path": in.Path} {
			if v != "" {
				integ[k] = v
			}
		}
		op.Integration = integ
	}
	if rt.Authorizer != "" {
		op.Security = []map[string][]string{{rt.Authorizer: {}}}
		op.Responses["401"] = &Response{Description: "No credential, or one that is not valid.", Content: errContent}
		op.Responses["403"] = &Response{Description: "The credential is valid, but denied.", Content: errContent}
	}
	if rt.Throttle != nil || stageThrottle {
		op.Responses["429"] = &Response{Description: "Throttled; Retry-After says when to try again.", Content: errContent}
	}
	if rs := rt.Response; rs != nil {
		for _, sc := range rs.StatusCodes {
			code := strconv.Itoa(sc.Status)
			if op.Responses[code] == nil {
				op.Responses[code] = &Response{Description: fmt.Sprintf("The backend failed with an error matching %q.", sc.Pattern)}
			}
		}
	}
	op.Responses["default"] = &Response{Description: "An error of the gateway or the backend.", Content: errContent}
	return op
}

func securityScheme(a *spec.Authorizer) (*SecurityScheme, error) {
	src, err := parseIdentitySource(a.IdentitySource)
	if err != nil {
		return nil, err
	}
	in, name := "header", src.header
	if src.query != "" {
		in, name = "query", src.query
	}
	switch a.Type {
	case "jwt":
		desc := "A JWT issued by " + a.Issuer
		if len(a.Audience) > 0 {
			desc += " for " + strings.Join(a.Audience, " or ")
		}
		desc += ", signed with " + strings.Join(cmpList(a.Algorithms, []string{"RS256", "ES256"}), " or ") + "."
		if in == "header" && name == defaultIdentityHdr {
			return &SecurityScheme{Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: desc}, nil
		}
		return &SecurityScheme{Type: "apiKey", In: in, Name: name, Description: desc}, nil
	case "apiKey":
		return &SecurityScheme{Type: "apiKey", In: in, Name: name, Description: "An API key."}, nil
	case "function":
		return &SecurityScheme{Type: "apiKey", In: in, Name: name, Description: "A credential checked by the function " + a.Function + "."}, nil
	}
	return nil, fmt.Errorf("type %q: want jwt, apiKey or function", a.Type)
}

func cmpList(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// shapeOf is a template with its parameters unnamed.
func shapeOf(tmpl string) string {
	segs := templateSegments(tmpl)
	for i, s := range segs {
		switch {
		case isGreedy(s):
			segs[i] = "{+}"
		case isParam(s):
			segs[i] = "{}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// openAPIPath writes a template as OpenAPI does: {proxy+} is {proxy}, as
// OpenAPI has no greedy parameters (the parameter says it takes slashes).
func openAPIPath(tmpl string) string {
	segs := templateSegments(tmpl)
	for i, s := range segs {
		if isGreedy(s) {
			segs[i] = "{" + paramName(s) + "}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// pathParams are the parameter names of an OpenAPI path, in order.
func pathParams(path string) []string {
	var out []string
	for _, s := range templateSegments(path) {
		if isParam(s) {
			out = append(out, paramName(s))
		}
	}
	return out
}

// operationID is e.g. getUsersById for GET /users/{id}.
func operationID(method, tmpl string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, s := range templateSegments(tmpl) {
		if isParam(s) {
			b.WriteString("By")
			s = paramName(s)
		}
		upper := true
		for _, r := range s {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				upper = true
				continue
			}
			if upper {
				r = unicode.ToUpper(r)
				upper = false
			}
			b.WriteRune(r)
		}
	}
	if len(templateSegments(tmpl)) == 0 {
		b.WriteString("Root")
	}
	return b.String()
}

func uniqueID(ids map[string]bool, id string) string {
	out := id
	for n := 2; ids[out]; n++ {
		out = id + strconv.Itoa(n)
	}
	ids[out] = true
	return out
}

func jsonPointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// rebaseRefs copies a model's schema with its local references ("#/$defs/x")
// made relative to where the schema sits in the document.
func rebaseRefs(v any, base string) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if s, ok := e.(string); ok && (k == "$ref" || k == "$dynamicRef") && strings.HasPrefix(s, "#") {
				out[k] = base + strings.TrimPrefix(s, "#")
				continue
			}
			out[k] = rebaseRefs(e, base)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = rebaseRefs(e, base)
		}
		return out
	}
	return v
}

// JSON writes the document as indented JSON.
func (d *OpenAPIDoc) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return append(b, '\n'), nil
}

// YAML writes the document as YAML, in the JSON form's order.
func (d *OpenAPIDoc) YAML() ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	y, err := yaml.JSONToYAML(b)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return y, nil
}
