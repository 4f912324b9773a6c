package spec

import (
	"encoding/json"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// SchemaID is the $id of the JSON Schema of nubo.yaml.
const SchemaID = "https://nubo.dev/schema/nubo.schema.json"

// durationPattern accepts what ParseDuration accepts: Go units and Prometheus' d, w, y.
const durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w|y))+)$`

// quantityPattern is the Kubernetes quantity grammar.
const quantityPattern = `^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]+))?$`

// targetPattern is the target grammar of ParseTarget.
const targetPattern = `^((function|queue|topic|database):[a-z0-9]([-a-z0-9]*[a-z0-9])?|service:[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?|https?://.+)$`

// namePatterns mirror nameRules for the keys of named maps.
var namePatterns = map[string]string{
	"dns":        dnsLabelRe.String(),
	"service":    dns1035LabelRe.String(),
	"subdomain":  dnsSubdomainRe.String(),
	"role":       roleNameRe.String(),
	"env":        envNameRe.String(),
	"identifier": identRe.String(),
	"stage":      stageNameRe.String(),
	"label":      labelNameRe.String(),
	"eventType":  eventTypeRe.String(),
}

// nameMaxLength are the length limits of the name rules that have one.
var nameMaxLength = map[string]int{
	"dns":       dnsLabelMax,
	"service":   dnsLabelMax,
	"subdomain": validation.DNS1123SubdomainMaxLength,
}

// nullable lets s also be null: the decoder reads a null (`image: ~`, or a
// key with nothing after it) as absent, so an optional field or a map's
// value may be null.
func nullable(s map[string]any) map[string]any {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []string{t, "null"}
	case []string:
		s["type"] = append(append([]string(nil), t...), "null")
	default:
		if len(s) == 0 {
			return s // anything, null included
		}
		return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, s}}
	}
	if enum, ok := s["enum"].([]string); ok {
		values := make([]any, 0, len(enum)+1)
		for _, e := range enum {
			values = append(values, e)
		}
		s["enum"] = append(values, nil)
	}
	return s
}

// structConditions are the checks between fields of one struct that the
// validators make and a JSON Schema can say: "a webhook channel needs url".
var structConditions = map[string][]any{
	"Channel": {
		requiredWhen("type", "webhook", "url"),
		requiredWhen("type", "slack", "url"),
		requiredWhen("type", "email", "to", "smtp"),
	},
}

// requiredWhen is "when field is value, fields are required".
func requiredWhen(field, value string, fields ...string) map[string]any {
	return map[string]any{
		"if":   map[string]any{"properties": map[string]any{field: map[string]any{"const": value}}, "required": []string{field}},
		"then": map[string]any{"required": fields},
	}
}

//go:generate go run gen_fielddocs.go

// Schema returns the JSON Schema (draft 2020-12) of nubo.yaml, generated from
// the Go types so that it cannot drift from what Load accepts. Editors use it
// through yaml-language-server (see docs/spec.md); descriptions are the types'
// doc comments.
func Schema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.structSchema(reflect.TypeFor[App]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "nubo.yaml"
	root["description"] = "One file that describes a whole cloud-native system: nubo up runs it, nubo render turns it into Kubernetes manifests."
	root["$defs"] = g.defs
	return json.MarshalIndent(root, "", "  ")
}

type schemaGen struct {
	defs map[string]any
}

func (g *schemaGen) typeSchema(t reflect.Type, fi fieldInfo) map[string]any {
	s := g.baseSchema(t, fi)
	for k, v := range fi.bounds {
		s[k] = v
	}
	return s
}

// scalarTypes are the JSON types a string field takes: the decoder reads
// any YAML scalar as its text, so `image: 123` and `env: {PORT: 8080}` are
// strings to nubo validate, and must be to the schema.
var scalarTypes = []string{"string", "number", "boolean"}

func (g *schemaGen) baseSchema(t reflect.Type, fi fieldInfo) map[string]any {
	switch t {
	case reflect.TypeFor[Duration]():
		// A bare number is a duration only when it is 0; pattern holds
		// for strings only, minimum and maximum for numbers only.
		return map[string]any{"type": []string{"string", "integer"}, "pattern": durationPattern, "minimum": 0, "maximum": 0}
	case reflect.TypeFor[Quantity]():
		return map[string]any{"type": []string{"string", "number"}, "pattern": quantityPattern, "minimum": 0}
	case reflect.TypeFor[Target]():
		return map[string]any{"type": "string", "pattern": targetPattern}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem(), fi)
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = true // placeholder: recursive types (Filter) refer to themselves
			g.defs[name] = g.structSchema(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	case reflect.Map:
		s := map[string]any{"type": "object", "additionalProperties": nullable(g.typeSchema(t.Elem(), fieldInfo{enum: fi.enum}))}
		if p, ok := namePatterns[fi.names]; ok {
			names := map[string]any{"pattern": p}
			if n, ok := nameMaxLength[fi.names]; ok {
				names["maxLength"] = n
			}
			s["propertyNames"] = names
		}
		return s
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem(), fi)}
	case reflect.String:
		s := map[string]any{"type": scalarTypes}
		if fi.enum != nil {
			s["type"] = "string"
			s["enum"] = fi.enum
		}
		if p, ok := namePatterns[fi.names]; ok {
			s["type"] = "string"
			if fi.names == "dns" || fi.names == "subdomain" {
				// Such a name may be written as a number (its digits are
				// a valid DNS label), not as a fraction or a boolean.
				s["type"] = []string{"string", "integer"}
				s["minimum"] = 0
			}
			s["pattern"] = p
			if n, ok := nameMaxLength[fi.names]; ok {
				s["maxLength"] = n
			}
		}
		return s
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	return map[string]any{} // any: free-form (JSON Schemas, payloads)
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, fi := range fieldsOf(t) {
		f := t.Field(fi.index)
		s := g.typeSchema(f.Type, fi)
		if !fi.required {
			s = nullable(s)
		}
		if doc := fieldDocs[t.Name()+"."+f.Name]; doc != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}}
			}
			s["description"] = doc
		}
		props[fi.name] = s
		if fi.required {
			required = append(required, fi.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		s["required"] = required
	}
	if extra, ok := structConditions[t.Name()]; ok {
		s["allOf"] = extra
	}
	if doc := fieldDocs[t.Name()]; doc != "" {
		s["description"] = doc
	}
	return s
}

// FieldPaths lists every field path the spec types allow, with <name> for the
// keys of named maps and [] for list items: services.<name>.health.liveness.period,
// ingress[].paths[].to. docs/spec.md documents each of them (a test checks).
func FieldPaths() []string {
	var out []string
	seen := map[reflect.Type]int{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == reflect.TypeFor[Duration](), t == reflect.TypeFor[Quantity](), t == reflect.TypeFor[Target]():
			return
		case t.Kind() == reflect.Slice:
			walk(t.Elem(), prefix+"[]")
		case t.Kind() == reflect.Map:
			walk(t.Elem(), prefix+".<name>")
		case t.Kind() == reflect.Struct:
			if seen[t] > 0 { // Filter nests itself: document one level
				return
			}
			seen[t]++
			defer func() { seen[t]-- }()
			for _, fi := range fieldsOf(t) {
				p := fi.name
				if prefix != "" {
					p = prefix + "." + fi.name
				}
				out = append(out, p)
				walk(t.Field(fi.index).Type, p)
			}
		}
	}
	walk(reflect.TypeFor[App](), "")
	for i, p := range out {
		out[i] = strings.ReplaceAll(p, ".[]", "[]")
	}
	return out
}
