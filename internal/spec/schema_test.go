package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// schemaAgrees checks the JSON Schema against what nubo validate said of
// src (its diagnostics, as diagnose gives them): the schema refuses no
// spec that validate accepts, since an editor would mark a valid file as
// wrong. A spec validate refuses may pass the schema, which cannot express
// references, uniqueness or PromQL; the checks it can express are held to
// both directions by TestSchemaAndValidateRefuseTogether.
func schemaAgrees(t *testing.T, schema *jsonschema.Schema, src string, diags []string) {
	t.Helper()
	doc, ok := yamlAsJSON([]byte(src))
	if !ok {
		return // not plain YAML for an editor either (anchors, duplicate keys)
	}
	schemaErr := schema.Validate(doc)
	if schemaErr != nil && !hasError(diags) {
		t.Errorf("nubo schema refuses a spec nubo validate accepts:\n%s\nschema: %v", src, schemaErr)
	}
}

// hasError reports whether diagnostics hold an error, not only warnings.
func hasError(diags []string) bool {
	for _, d := range diags {
		if !strings.Contains(d, ": warning: ") {
			return true
		}
	}
	return false
}

// yamlAsJSON reads YAML the way an editor's schema check sees it; false
// when goccy/go-yaml cannot turn it into plain JSON values.
func yamlAsJSON(data []byte) (any, bool) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, false
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	return out, err == nil
}

// yamlToJSONValue reads YAML the way an editor's schema validation sees it.
func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaAcceptsReference(t *testing.T) {
	s := compiledSchema(t)
	data, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(yamlToJSONValue(t, data)); err != nil {
		t.Fatalf("the schema rejects the reference: %v", err)
	}
}

func TestSchemaRejectsBrokenFiles(t *testing.T) {
	s := compiledSchema(t)
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "name: a\nservices:\n  api: {rnu: x}\n", "rnu"},
		{"bad enum", "name: a\nqueues:\n  q: {type: lifo}\n", "/queues/q/type"},
		{"bad duration", "name: a\nqueues:\n  q: {visibility: soon}\n", "visibility"},
		{"bad name", "name: a\nservices:\n  Api: {run: x}\n", "Api"},
		{"missing name", "services: {}\n", "name"},
		{"wrong type", "name: a\nservices:\n  api: {run: x, port: eighty}\n", "port"},
		{"bad target", "name: a\nrules:\n  r: {target: 'lambda:x'}\n", "target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(yamlToJSONValue(t, []byte(tt.yaml)))
			if err == nil {
				t.Fatal("the schema accepts a broken file")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestSchemaHasDescriptions(t *testing.T) {
	raw, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"Run is what `)) {
		t.Error("the schema lacks the field doc comments as descriptions")
	}
}

// TestFieldDocsFresh fails when a doc comment changed without `go generate`.
func TestFieldDocsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	out := filepath.Join(t.TempDir(), "fielddocs.go")
	cmd := exec.Command("go", "run", "gen_fielddocs.go", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen_fielddocs: %v\n%s", err, b)
	}
	want, _ := os.ReadFile(out)
	got, _ := os.ReadFile("fielddocs.go")
	if !bytes.Equal(got, want) {
		t.Fatal("fielddocs.go is stale: run go generate ./internal/spec")
	}
}

// TestEveryFieldDocumented fails when docs/spec.md lacks a field of the types.
func TestEveryFieldDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, p := range FieldPaths() {
		if !bytes.Contains(doc, []byte("`"+p+"`")) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("docs/spec.md does not document %d fields (write each as `path` in a table):\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
