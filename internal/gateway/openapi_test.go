package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nubo-dev/nubo/internal/spec"
)

// openAPIChecker validates documents against testdata's hand-written
// minimal OpenAPI 3.1 schema (see its $comment), then checks by hand what
// a JSON Schema cannot say: path templates and path parameters agree,
// operationIds are unique, every $ref resolves, every security
// requirement names a scheme, templated paths differ in more than their
// names, and each component schema compiles as JSON Schema 2020-12 in
// place.
type openAPIChecker struct {
	schema *jsonschema.Schema
}

func newOpenAPIChecker(t *testing.T) *openAPIChecker {
	t.Helper()
	data, err := os.ReadFile("testdata/openapi-3.1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi-3.1.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("openapi-3.1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return &openAPIChecker{schema: sch}
}

// check returns every problem of a document in JSON.
func (oc *openAPIChecker) check(data []byte) []string {
	var problems []string
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []string{err.Error()}
	}
	if err := oc.schema.Validate(doc); err != nil {
		problems = append(problems, "schema: "+err.Error())
	}
	root, _ := doc.(map[string]any)
	paths, _ := root["paths"].(map[string]any)
	shapes := map[string]string{}
	ids := map[string]bool{}
	for path, item := range paths {
		if other, dup := shapes[shapeOf(path)]; dup {
			problems = append(problems, fmt.Sprintf("paths %s and %s differ only in parameter names", path, other))
		}
		shapes[shapeOf(path)] = path
		templated := pathParams(path)
		for method, v := range item.(map[string]any) {
			op, ok := v.(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] {
				problems = append(problems, where+": operationId missing or repeated: "+id)
			}
			ids[id] = true
			var declared []string
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				if pm["in"] == "path" {
					declared = append(declared, pm["name"].(string))
				}
			}
			slices.Sort(declared)
			want := slices.Clone(templated)
			slices.Sort(want)
			if !slices.Equal(declared, want) {
				problems = append(problems, fmt.Sprintf("%s: path parameters %v, template has %v", where, declared, want))
			}
			secs, _ := op["security"].([]any)
			for _, s := range secs {
				for name := range s.(map[string]any) {
					schemes, _ := root["components"].(map[string]any)["securitySchemes"].(map[string]any)
					if schemes[name] == nil {
						problems = append(problems, where+": security names no scheme "+name)
					}
				}
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				if s, ok := e.(string); ok && k == "$ref" {
					if _, err := resolvePointer(root, s); err != nil {
						problems = append(problems, "$ref "+s+": "+err.Error())
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(root)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("doc.json", doc); err != nil {
		return append(problems, err.Error())
	}
	schemas, _ := root["components"].(map[string]any)["schemas"].(map[string]any)
	for name := range schemas {
		if _, err := c.Compile("doc.json#/components/schemas/" + jsonPointerEscape(name)); err != nil {
			problems = append(problems, "schema "+name+": "+err.Error())
		}
	}
	return problems
}

func resolvePointer(root any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	cur := root
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			if c[tok] == nil {
				return nil, fmt.Errorf("nothing at %q", tok)
			}
			cur = c[tok]
		case []any:
			i := -1
			_, _ = fmt.Sscan(tok, &i)
			if i < 0 || i >= len(c) {
				return nil, fmt.Errorf("nothing at %q", tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("nothing at %q", tok)
		}
	}
	return cur, nil
}

const openAPISpec = `
name: shop
services:
  users: {image: users:1}
functions:
  check: {run: ./check}
secrets:
  keys: {keys: [a]}
gateway:
  name: shop-api
  version: "2.1"
  stages:
    prod: {throttle: {rate: 10}}
    $default: {}
  authorizers:
    jwt: {type: jwt, issuer: https://auth.test/, audience: [shop], jwks: "https://auth.test/jwks.json"}
    partners: {type: apiKey, identitySource: query.key, keys: {secret: keys}}
    custom: {type: function, function: check, identitySource: header.x-token}
  models:
    Order:
      schema:
        type: object
        required: [items]
        properties:
          items: {type: array, items: {$ref: "#/$defs/item"}}
        $defs:
          item: {type: object, properties: {sku: {type: string}}}
  routes:
    - path: "/users/{id}"
      methods: [GET]
      authorizer: jwt
      integration: {type: service, service: users, path: "/users/{id}"}
      cache: {ttl: 10s, keys: [path.id, query.lang, header.accept-language]}
    - path: "/users/{userId}"
      methods: [DELETE]
      authorizer: custom
      integration: {type: service, service: users}
    - path: /orders
      methods: [POST]
      authorizer: partners
      request: {model: Order, required: {headers: [Idempotency-Key, Authorization], query: [source]}}
      integration: {type: service, service: users}
      response: {statusCodes: [{pattern: "^NotFound", status: 404}]}
    - path: "/files/{path+}"
      integration: {type: service, service: users}
    - path: /
      methods: [GET]
      integration: {type: mock, status: 200, body: '{"ok":true}', headers: {content-type: application/json}}
`

// TestOpenAPI checks the documents of the reference spec, the shop
// example and a spec with every feature against OpenAPI 3.1, and what the
// last one says.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	oc := newOpenAPIChecker(t)
	custom, _ := loadSpec(t, openAPISpec, nil)
	apps := map[string]*spec.App{"custom": custom}
	for _, file := range []string{"../spec/testdata/nubo.reference.yaml", "../../examples/shop/nubo.yaml"} {
		app, err := spec.Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		apps[file] = app
	}
	for name, app := range apps {
		doc, err := OpenAPI(app, OpenAPIOptions{Server: "http://127.0.0.1:8000"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, err := doc.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if problems := oc.check(data); len(problems) > 0 {
			t.Errorf("%s: not a valid OpenAPI 3.1 document:\n%s\n%s", name, strings.Join(problems, "\n"), data)
		}
		// The YAML form holds the same document.
		y, err := doc.YAML()
		if err != nil {
			t.Fatal(err)
		}
		fromYAML, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		_ = json.Unmarshal(data, &a)
		_ = json.Unmarshal(fromYAML, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the YAML form differs from the JSON form", name)
		}
		if !strings.HasPrefix(string(y), "openapi: 3.1.0\n") {
			t.Errorf("%s: YAML does not start with openapi:\n%.200s", name, y)
		}
	}

	doc, _ := OpenAPI(custom, OpenAPIOptions{})
	data, _ := doc.JSON()
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	get := func(ptr string) any {
		v, err := resolvePointer(m, "#"+ptr)
		if err != nil {
			t.Errorf("%s: %v", ptr, err)
		}
		return v
	}
	want := map[string]any{
		"/info/title":                                                            "shop-api",
		"/info/version":                                                          "2.1",
		"/servers/0/url":                                                         "/",
		"/servers/1/url":                                                         "/prod",
		"/components/securitySchemes/jwt/type":                                   "http",
		"/components/securitySchemes/jwt/scheme":                                 "bearer",
		"/components/securitySchemes/partners/in":                                "query",
		"/components/securitySchemes/partners/name":                              "key",
		"/components/securitySchemes/custom/name":                                "X-Token",
		"/paths/~1users~1{id}/get/security/0/jwt":                                []any{},
		"/paths/~1users~1{id}/delete/security/0/custom":                          []any{},
		"/paths/~1users~1{id}/get/operationId":                                   "getUsersById",
		"/paths/~1orders/post/requestBody/content/application~1json/schema/$ref": "#/components/schemas/Order",
		"/components/schemas/Order/properties/items/items/$ref":                  "#/components/schemas/Order/$defs/item",
		"/paths/~1files~1{path}/patch/parameters/0/name":                         "path",
		"/paths/~1/get/responses/200/content/application~1json/example/ok":       true,
		"/paths/~1orders/post/responses/404/description":                         `The backend failed with an error matching "^NotFound".`,
		"/paths/~1orders/post/responses/429/description":                         "Throttled; Retry-After says when to try again.",
		"/paths/~1users~1{id}/get/responses/401/description":                     "No credential, or one that is not valid.",
	}
	for ptr, w := range want {
		if got := get(ptr); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %#v, want %#v", ptr, got, w)
		}
	}
	hasParam := func(op, name, in string, required bool) bool {
		params, _ := get(op + "/parameters").([]any)
		for _, p := range params {
			pm := p.(map[string]any)
			if pm["name"] == name && pm["in"] == in && (pm["required"] == true) == required {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		op, name, in string
		required     bool
	}{
		{"/paths/~1orders/post", "Idempotency-Key", "header", true},
		{"/paths/~1orders/post", "source", "query", true},
		{"/paths/~1users~1{id}/get", "id", "path", true},
		{"/paths/~1users~1{id}/get", "lang", "query", false},
		{"/paths/~1users~1{id}/get", "accept-language", "header", false},
		{"/paths/~1users~1{id}/delete", "id", "path", true},
	} {
		if !hasParam(c.op, c.name, c.in, c.required) {
			t.Errorf("%s lacks the %s parameter %s (required %v)", c.op, c.in, c.name, c.required)
		}
	}
	if hasParam("/paths/~1orders/post", "Authorization", "header", true) {
		t.Error("Authorization as a header parameter (OpenAPI ignores those)")
	}
}

// TestOpenAPICheckerFails makes sure the checker refuses broken documents,
// so that TestOpenAPI can fail.
func TestOpenAPICheckerFails(t *testing.T) {
	t.Parallel()
	oc := newOpenAPIChecker(t)
	custom, _ := loadSpec(t, openAPISpec, nil)
	doc, _ := OpenAPI(custom, OpenAPIOptions{})
	good, _ := doc.JSON()
	breakers := map[string]func(m map[string]any){
		"no version":          func(m map[string]any) { delete(m["info"].(map[string]any), "version") },
		"openapi 3.0":         func(m map[string]any) { m["openapi"] = "3.0.3" },
		"path param optional": func(m map[string]any) { pathParam(m)["required"] = false },
		"path param missing":  func(m map[string]any) { op(m)["parameters"] = []any{} },
		"no responses":        func(m map[string]any) { op(m)["responses"] = map[string]any{} },
		"bad status": func(m map[string]any) {
			op(m)["responses"].(map[string]any)["600"] = map[string]any{"description": "x"}
		},
		"dangling ref":        func(m map[string]any) { delete(m["components"].(map[string]any)["schemas"].(map[string]any), "Order") },
		"unknown field":       func(m map[string]any) { op(m)["nope"] = 1 },
		"apiKey without name": func(m map[string]any) { delete(scheme(m, "partners"), "name") },
		"unknown scheme":      func(m map[string]any) { op(m)["security"] = []any{map[string]any{"nope": []any{}}} },
	}
	for name, breakIt := range breakers {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		breakIt(m)
		data, _ := json.Marshal(m)
		if problems := oc.check(data); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

func op(m map[string]any) map[string]any {
	return m["paths"].(map[string]any)["/users/{id}"].(map[string]any)["get"].(map[string]any)
}

func pathParam(m map[string]any) map[string]any {
	return op(m)["parameters"].([]any)[0].(map[string]any)
}

func scheme(m map[string]any, name string) map[string]any {
	return m["components"].(map[string]any)["securitySchemes"].(map[string]any)[name].(map[string]any)
}
