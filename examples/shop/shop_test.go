package shop_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

// specFile is the example's spec, relative to this package's folder.
const specFile = "nubo.yaml"

// loadSpec loads the example and fails the test on any error.
func loadSpec(t *testing.T) *spec.App {
	t.Helper()
	app, err := spec.Load(specFile)
	if err != nil {
		t.Fatalf("spec.Load(%s):\n%v", specFile, err)
	}
	return app
}

func TestSpecLoadsWithoutWarnings(t *testing.T) {
	app := loadSpec(t)
	if ws := app.Warnings(); len(ws) > 0 {
		t.Errorf("spec.Load(%s) warned:\n%v", specFile, ws.Error())
	}
}

// yamlFields lists the YAML names of a struct type's fields, from the same tags
// the spec's decoder reads, so that a section added to the spec fails this
// test until the example uses it.
func yamlFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if name := f.Tag.Get("yaml"); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// firstElem returns the first element of a field path: services for
// services.users.port, ingress for ingress[0].host.
func firstElem(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// TestSpecUsesEverySection checks that the example writes every top-level
// section of the spec, and every part of observability, in nubo.yaml or in the
// file it includes.
func TestSpecUsesEverySection(t *testing.T) {
	app := loadSpec(t)
	written := map[string]bool{}
	for _, p := range app.Paths() {
		written[firstElem(p)] = true
		if rest, ok := strings.CutPrefix(p, "observability."); ok {
			written["observability."+firstElem(rest)] = true
		}
	}
	var want []string
	want = append(want, yamlFields(reflect.TypeFor[spec.App]())...)
	for _, f := range yamlFields(reflect.TypeFor[spec.Observability]()) {
		want = append(want, "observability."+f)
	}
	if len(want) < 28 {
		t.Fatalf("found only %d sections in spec.App and spec.Observability: %v", len(want), want)
	}
	for _, s := range want {
		if !written[s] {
			t.Errorf("section %s is not used by %s", s, specFile)
		}
	}
	// The observability section lives in the included file, so that the
	// example shows include at work.
	if pos := app.Pos("observability.slos"); !strings.HasSuffix(pos.File, "observability.yaml") {
		t.Errorf("observability.slos is written at %s, want observability.yaml", pos)
	}
	if !slices.Contains(app.Include, "observability.yaml") {
		t.Errorf("include = %v, want observability.yaml in it", app.Include)
	}
}
