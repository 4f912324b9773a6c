package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// CompileSchema compiles a JSON Schema written in the spec (an event's schema
// or a gateway model), so that data can be validated against it with
// Schema.Validate. name says where the schema lives, e.g. "events/UserCreated";
// it becomes part of the schema's URL and of error messages.
//
// Schemas are draft 2020-12 unless they say otherwise with $schema. format is
// asserted (format: email rejects "x"), which users of a spec expect though
// 2020-12 makes it optional. A $ref may point inside the schema only: nothing
// is fetched over the network or read from disk.
func CompileSchema(name string, schema any) (*jsonschema.Schema, error) {
	sch, problems := compileSchema(name, schema)
	if len(problems) == 0 {
		return sch, nil
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.String()
	}
	return nil, fmt.Errorf("schema %s: %s", name, strings.Join(msgs, "; "))
}

// schemaProblem is one reason a schema does not compile, at a place inside it.
type schemaProblem struct {
	at  []string // JSON pointer tokens into the schema; none: the whole schema
	msg string
}

func (p schemaProblem) String() string {
	if len(p.at) == 0 {
		return p.msg
	}
	return fmt.Sprintf("at /%s: %s", strings.Join(p.at, "/"), p.msg)
}

// schema reports the problems of a schema of the spec at their paths.
func (c *exprChecker) schema(path, name string, schema any) {
	if _, problems := compileSchema(name, schema); len(problems) > 0 {
		for _, p := range problems {
			at := path
			for _, tok := range p.at {
				at = joinPath(at, tok)
			}
			c.r.errorf(at, "invalid JSON Schema: %s", p.msg)
		}
	}
}

// schemaBase is the scheme of the URLs schemas get; nothing loads it.
const schemaBase = "nubo:///"

func compileSchema(name string, schema any) (*jsonschema.Schema, []schemaProblem) {
	// The schema comes from YAML (int64, float64, map[string]any); the
	// library wants what encoding/json decodes, with json.Number.
	data, err := json.Marshal(schema)
	if err != nil {
		return nil, []schemaProblem{{msg: fmt.Sprintf("not representable as JSON: %v", err)}}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, []schemaProblem{{msg: fmt.Sprintf("not representable as JSON: %v", err)}}
	}
	loc := schemaBase + escapeSchemaName(name)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noFetchLoader{})
	if err := c.AddResource(loc, doc); err != nil {
		return nil, []schemaProblem{{msg: err.Error()}}
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, schemaProblems(loc, err)
	}
	return sch, nil
}

// escapeSchemaName makes a URL path of a schema's name, segment by segment.
func escapeSchemaName(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// schemaProblems turns a compile error into problems placed inside the schema.
func schemaProblems(loc string, err error) []schemaProblem {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		// The leaves of the metaschema's verdict say what is wrong; keep
		// the first one at each place (an anyOf gives one per branch).
		p := message.NewPrinter(language.English)
		var out []schemaProblem
		seen := map[string]bool{}
		var walk func(e *jsonschema.ValidationError)
		walk = func(e *jsonschema.ValidationError) {
			if len(e.Causes) == 0 {
				key := strings.Join(e.InstanceLocation, "/")
				if !seen[key] {
					seen[key] = true
					out = append(out, schemaProblem{at: e.InstanceLocation, msg: e.ErrorKind.LocalizedString(p)})
				}
				return
			}
			for _, cause := range e.Causes {
				walk(cause)
			}
		}
		walk(ve)
		if len(out) > 0 {
			return out
		}
	}
	var lue *jsonschema.LoadURLError
	if errors.As(err, &lue) {
		var ref refusedRef
		if errors.As(lue.Err, &ref) {
			return []schemaProblem{{msg: ref.Error()}}
		}
		return []schemaProblem{{msg: fmt.Sprintf("cannot load %s: %v", shortRef(lue.URL), lue.Err)}}
	}
	var nf *jsonschema.JSONPointerNotFoundError
	if errors.As(err, &nf) {
		return []schemaProblem{{msg: fmt.Sprintf("$ref %q points to nothing in the schema", "#"+afterHash(nf.URL))}}
	}
	return []schemaProblem{{msg: strings.ReplaceAll(err.Error(), loc, "the schema")}}
}

func afterHash(u string) string {
	_, frag, _ := strings.Cut(u, "#")
	return frag
}

// shortRef shows a URL the way the user wrote it, without nubo's base.
func shortRef(u string) string {
	if rest, ok := strings.CutPrefix(u, schemaBase); ok {
		return rest
	}
	return u
}

// noFetchLoader refuses every URL that is not the schema itself: a spec is
// validated offline, and `nubo validate` must not wait on, or leak to, a
// remote host. The metaschemas of the drafts are built into the library and
// never reach a loader.
type noFetchLoader struct{}

// Load implements jsonschema.URLLoader.
func (noFetchLoader) Load(u string) (any, error) {
	return nil, refusedRef{url: u}
}

// refusedRef is the error of noFetchLoader, naming what was refused and why.
type refusedRef struct{ url string }

func (e refusedRef) Error() string {
	if strings.HasPrefix(e.url, "http://") || strings.HasPrefix(e.url, "https://") {
		return fmt.Sprintf("refusing to fetch %q: nubo does not load schemas over the network; copy what it holds under $defs and refer to it as \"#/$defs/NAME\"", e.url)
	}
	return fmt.Sprintf("refusing to load %q: a schema in the spec refers only inside itself; copy what it holds under $defs and refer to it as \"#/$defs/NAME\"", shortRef(e.url))
}
