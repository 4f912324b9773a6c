package k8s

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/nubo-dev/nubo/internal/k8s/k8stest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// crdSchemas maps "apiVersion Kind" to the OpenAPI schema of that version,
// read from the projects' CRD files.
func crdSchemas(t *testing.T) map[string]map[string]any {
	t.Helper()
	dir, err := k8stest.CRDsDir()
	if err != nil {
		k8stest.Missing(t, err)
	}
	crds, err := k8stest.ReadCRDs(dir)
	if err != nil {
		t.Fatalf("read the CRDs in %s: %v", dir, err)
	}
	out := map[string]map[string]any{}
	for _, c := range crds {
		group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		kindName, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(c.Object, "spec", "versions")
		for _, v := range versions {
			vm := v.(map[string]any)
			schema, _, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema")
			out[group+"/"+vm["name"].(string)+" "+kindName] = schema
		}
	}
	return out
}

// checkSchema reports every field of v that schema does not allow: unknown
// names, wrong types, values outside an enum or a pattern, missing
// required fields. It is the part of the apiserver's validation that needs
// no server, so that a misspelt field fails a unit test.
func checkSchema(path string, v any, schema map[string]any) []string {
	if schema == nil {
		return nil
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		bad("%v is not one of %v", v, enum)
	}
	if schema["x-kubernetes-int-or-string"] == true {
		switch v.(type) {
		case int64, string:
		default:
			bad("want an integer or a string, have %T", v)
		}
		return errs
	}
	switch schema["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, have %T", v)
			return errs
		}
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if _, ok := m[r.(string)]; !ok {
				bad("missing required field %q", r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, checkSchema(path+"."+k, m[k], p)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case map[string]any:
				errs = append(errs, checkSchema(path+"."+k, m[k], ap)...)
				continue
			case bool:
				if ap {
					continue
				}
			}
			if schema["x-kubernetes-preserve-unknown-fields"] == true {
				continue
			}
			bad("unknown field %q", k)
		}
	case "array":
		s, ok := v.([]any)
		if !ok {
			bad("want an array, have %T", v)
			return errs
		}
		items, _ := schema["items"].(map[string]any)
		for i, e := range s {
			errs = append(errs, checkSchema(fmt.Sprintf("%s[%d]", path, i), e, items)...)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			bad("want a string, have %T", v)
			return errs
		}
		if p, ok := schema["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(s) {
				bad("%q does not match %s", s, p)
			}
		}
	case "integer":
		if _, ok := v.(int64); !ok {
			bad("want an integer, have %T", v)
		}
	case "number":
		switch v.(type) {
		case int64, float64:
		default:
			bad("want a number, have %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, have %T", v)
		}
	}
	return errs
}

// TestCustomObjectsMatchTheCRDs checks every object of a custom kind that
// the shop and the reference render against the CRD it belongs to.
func TestCustomObjectsMatchTheCRDs(t *testing.T) {
	schemas := crdSchemas(t)
	variants := []struct {
		name  string
		file  string
		tweak func(*spec.App)
	}{
		{"shop", "../../examples/shop/nubo.yaml", nil},
		{"reference", "../spec/testdata/nubo.reference.yaml", nil},
		{"reference with gateway-api and knative off", "../spec/testdata/nubo.reference.yaml", func(a *spec.App) {
			a.Kubernetes.Ingress = "gateway-api"
			a.Kubernetes.Functions = "deployment"
			a.Mesh.Enforcement = "audit"
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			app, err := spec.Load(v.file)
			if err != nil {
				t.Fatal(err)
			}
			if v.tweak != nil {
				v.tweak(app)
			}
			res, err := Render(app, Options{})
			if err != nil {
				t.Fatal(err)
			}
			custom := 0
			for _, o := range res.Objects {
				k := kinds[kindIndex(o.GetAPIVersion(), o.GetKind())]
				if k.provider == "" {
					continue
				}
				custom++
				schema, ok := schemas[o.GetAPIVersion()+" "+o.GetKind()]
				if !ok {
					t.Errorf("%s: no CRD serves %s", ObjectName(o), o.GetAPIVersion())
					continue
				}
				// apiVersion, kind and metadata are the apiserver's to check;
				// not every CRD declares them.
				obj := o.DeepCopy().Object
				root := map[string]any{}
				for k, v := range schema {
					root[k] = v
				}
				delete(root, "required")
				for _, f := range []string{"apiVersion", "kind", "metadata"} {
					delete(obj, f)
				}
				for _, e := range checkSchema(ObjectName(o), obj, root) {
					t.Error(e)
				}
			}
			if custom == 0 {
				t.Fatal("rendered no object of a custom kind: the test checks nothing")
			}
		})
	}
}

// TestCheckSchemaFindsMistakes makes sure the checker above can fail.
func TestCheckSchemaFindsMistakes(t *testing.T) {
	schemas := crdSchemas(t)
	vs := map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"spec": map[string]any{
			"hosts": []any{"users"},
			"http":  []any{map[string]any{"retrys": map[string]any{"attempts": int64(2)}, "timeout": int64(3)}},
		},
	}
	errs := checkSchema("VirtualService", vs, schemas["networking.istio.io/v1 VirtualService"])
	got := strings.Join(errs, "\n")
	for _, want := range []string{`unknown field "retrys"`, "timeout: want a string"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q do not mention %q", got, want)
		}
	}
}
