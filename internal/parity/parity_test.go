package parity

import (
	"slices"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

const referenceFile = "../spec/testdata/nubo.reference.yaml"

func loadReference(t *testing.T) *spec.App {
	t.Helper()
	app, err := spec.Load(referenceFile)
	if err != nil {
		t.Fatalf("load the reference: %v", err)
	}
	return app
}

func TestRegistryRowsAreWellFormed(t *testing.T) {
	patterns := map[string]bool{}
	features := map[string]bool{}
	for _, r := range Registry() {
		if _, err := compile(r.Pattern); err != nil {
			t.Errorf("row %q: %v", r.Pattern, err)
		}
		if patterns[r.Pattern] {
			t.Errorf("row %q: pattern listed twice", r.Pattern)
		}
		patterns[r.Pattern] = true
		if r.Feature == "" || features[r.Feature] {
			t.Errorf("row %q: feature %q is empty or used by another row", r.Pattern, r.Feature)
		}
		features[r.Feature] = true
		if !slices.Contains(Levels(), r.Level) {
			t.Errorf("row %q: unknown level %q", r.Pattern, r.Level)
		}
		if r.Note == "" {
			t.Errorf("row %q: no note", r.Pattern)
		}
		if r.Level == Emulated && !strings.HasPrefix(r.Note, "emulated: ") {
			t.Errorf("row %q: an emulated row's note starts with \"emulated: \", got %q", r.Pattern, r.Note)
		}
		if r.Count != 0 || r.First != "" {
			t.Errorf("row %q: the registry carries usage %d %q", r.Pattern, r.Count, r.First)
		}
		section, _, _ := strings.Cut(r.Pattern, ".")
		switch {
		case section == "kubernetes" && r.Level != K8sOnly:
			t.Errorf("row %q: a kubernetes setting is %q, want %q", r.Pattern, r.Level, K8sOnly)
		case section == "local" && r.Level != Local:
			t.Errorf("row %q: a local setting is %q, want %q", r.Pattern, r.Level, Local)
		}
	}
}

// TestEveryRowIsUsedByTheReference keeps the registry free of dead rows: a
// pattern that matches nothing in the reference is a typo or a field that no
// longer exists.
func TestEveryRowIsUsedByTheReference(t *testing.T) {
	app := loadReference(t)
	used := map[string]bool{}
	for _, r := range Report(app) {
		used[r.Pattern] = true
	}
	// Fields nubo adds to the reference are used by testdata/additions.yaml.
	additions, err := spec.Load("testdata/additions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Report(additions) {
		used[r.Pattern] = true
	}
	for _, r := range Registry() {
		if !used[r.Pattern] {
			t.Errorf("row %q (%s) matches no path of %s", r.Pattern, r.Feature, referenceFile)
		}
	}
}

func TestEverySectionOfTheReferenceHasARow(t *testing.T) {
	app := loadReference(t)
	covered := map[string]bool{}
	for _, r := range Registry() {
		segs, err := splitPath(strings.SplitN(r.Pattern, "=", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		covered[segs[0].text] = true
	}
	sections := map[string]bool{}
	for _, p := range app.Paths() {
		segs, err := splitPath(p)
		if err != nil {
			t.Fatalf("reference path %q: %v", p, err)
		}
		if len(segs) > 0 {
			sections[segs[0].text] = true
		}
	}
	if len(sections) < 20 {
		t.Fatalf("the reference has only %d sections; is it the right file?", len(sections))
	}
	for s := range sections {
		if !covered[s] {
			t.Errorf("section %q of the reference has no row", s)
		}
	}
}

// TestEveryFieldOfTheReferenceHasARow is the promise that nothing written in
// the reference is silently dropped: every leaf field lies under some row.
func TestEveryFieldOfTheReferenceHasARow(t *testing.T) {
	app := loadReference(t)
	var rows [][]segment
	for _, r := range Registry() {
		rows = append(rows, mustCompile(r.Pattern).segs)
	}
	split := map[string][]segment{}
	parents := map[string]bool{}
	for _, p := range app.Paths() {
		segs, err := splitPath(p)
		if err != nil {
			t.Fatalf("reference path %q: %v", p, err)
		}
		split[p] = segs
		for _, s := range segs[:max(len(segs)-1, 0)] {
			parents[p[:s.end]] = true
		}
	}
	leaves := 0
	for p, segs := range split {
		if parents[p] || len(segs) == 0 {
			continue // its children are checked
		}
		leaves++
		if !slices.ContainsFunc(rows, func(r []segment) bool { return hasPrefix(segs, r) }) {
			t.Errorf("field %s of the reference is under no row", p)
		}
	}
	if leaves < 100 {
		t.Errorf("only %d leaf fields in the reference; is the check broken?", leaves)
	}
}

// notInReference lists fields of the spec that the reference file does not
// write, so that no row can be about them alone without being dead. Each
// should go into the reference, and get its row.
var notInReference []string

// TestEveryFieldOfTheSpecHasARow checks every field the spec types allow, not
// only those the reference writes: each lies under a row, or holds rows
// under it (a section such as services.*.health).
func TestEveryFieldOfTheSpecHasARow(t *testing.T) {
	var rows [][]segment
	for _, r := range Registry() {
		rows = append(rows, mustCompile(r.Pattern).segs)
	}
	fields := spec.FieldPaths()
	if len(fields) < 200 {
		t.Fatalf("spec.FieldPaths lists %d fields; is it the right list?", len(fields))
	}
	var uncovered []string
	for _, f := range fields {
		pattern := strings.ReplaceAll(strings.ReplaceAll(f, "<name>", "*"), "[]", "[*]")
		segs, err := splitPath(pattern)
		if err != nil {
			t.Fatalf("field %s: %v", f, err)
		}
		under := slices.ContainsFunc(rows, func(r []segment) bool { return hasPrefix(segs, r) })
		holds := slices.ContainsFunc(rows, func(r []segment) bool { return len(r) > len(segs) && hasPrefix(r, segs) })
		if !under && !holds {
			uncovered = append(uncovered, pattern)
		}
	}
	if !slices.Equal(uncovered, notInReference) {
		t.Errorf("fields under no row: %v, want exactly %v (a field of the spec must be under a row, or listed in notInReference until the reference writes it)", uncovered, notInReference)
	}
}

func TestReport(t *testing.T) {
	const doc = `name: demo
services:
  api:
    run: ./api
    health:
      liveness: {http: {path: /health}, period: 5s}
  web:
    run: ./web
    image: ghcr.io/acme/web:v1
    health:
      liveness: {tcp: {}}
events:
  com.acme.user.created:
    schema: {type: object}
gateway:
  authorizers:
    keys: {type: apiKey, keys: {secret: api-keys}}
  routes:
    - path: /a
      authorizer: keys
      integration: {type: mock}
secrets:
  api-keys:
    keys: [k]
`
	app, err := spec.Parse("nubo.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	type use struct {
		count int
		first string
	}
	got := map[string]use{}
	var order []string
	for _, r := range Report(app) {
		got[r.Pattern] = use{r.Count, r.First}
		order = append(order, r.Pattern)
	}
	want := map[string]use{
		"name":                              {1, "name"},
		"services.*.run":                    {2, "services.api.run"},
		"services.*.image":                  {1, "services.web.image"},
		"services.*.health.liveness":        {2, "services.api.health.liveness"},
		"events":                            {1, "events"},
		"events.*.schema":                   {1, `events["com.acme.user.created"].schema`},
		"gateway":                           {1, "gateway"},
		"gateway.authorizers.*.type=apiKey": {1, "gateway.authorizers.keys.type"},
		"gateway.routes[*].integration.type=mock": {1, "gateway.routes[0].integration.type"},
		"secrets.*.keys": {1, "secrets.api-keys.keys"},
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("row %q not reported", p)
		} else if g != w {
			t.Errorf("row %q: used %d times, first at %q; want %d, %q", p, g.count, g.first, w.count, w.first)
		}
	}
	for _, absent := range []string{"services.*.health.readiness", "gateway.authorizers.*.type=jwt", "mesh.mtls", "local.stateDir", "secrets.*.type"} {
		if _, ok := got[absent]; ok {
			t.Errorf("row %q reported for a spec that does not use it", absent)
		}
	}
	var registryOrder []string
	for _, r := range Registry() {
		if _, ok := got[r.Pattern]; ok {
			registryOrder = append(registryOrder, r.Pattern)
		}
	}
	if !slices.Equal(order, registryOrder) {
		t.Errorf("report order %v, want registry order %v", order, registryOrder)
	}
	if len(want) != len(got) {
		t.Errorf("reported %d rows, want %d: %v", len(got), len(want), order)
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		path string
		want []segment
		err  bool
	}{
		{path: "", want: nil},
		{path: "name", want: []segment{{text: "name", end: 4}}},
		{path: "services.users.health", want: []segment{{text: "services", end: 8}, {text: "users", end: 14}, {text: "health", end: 21}}},
		{path: "ingress[0].paths[12]", want: []segment{{text: "ingress", end: 7}, {index: true, text: "0", end: 10}, {text: "paths", end: 16}, {index: true, text: "12", end: 20}}},
		{path: `events["com.acme.x"].schema`, want: []segment{{text: "events", end: 6}, {text: "com.acme.x", end: 20}, {text: "schema", end: 27}}},
		{path: `a["q\"]x"]`, want: []segment{{text: "a", end: 1}, {text: `q"]x`, end: 10}}},
		{path: "ingress[*].tls", want: []segment{{text: "ingress", end: 7}, {index: true, text: "*", end: 10}, {text: "tls", end: 14}}},
		{path: "a..b", err: true},
		{path: "a.", err: true},
		{path: ".a", err: true},
		{path: "a[x]", err: true},
		{path: "a[0", err: true},
		{path: `a["x`, err: true},
		{path: `a["x"`, err: true},
	}
	for _, tt := range tests {
		got, err := splitPath(tt.path)
		if (err != nil) != tt.err {
			t.Errorf("splitPath(%q) error %v, want error: %v", tt.path, err, tt.err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("splitPath(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

func TestPatternMatching(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"services.*.health.liveness", "services.users.health.liveness", true},
		{"services.*.health.liveness", "services.users.health.liveness.http.path", true},
		{"services.*.health.liveness", "services.users.health", false},
		{"services.*.health.liveness", "services.users.health.livenessx", false},
		{"ingress[*].tls", "ingress[3].tls", true},
		{"ingress[*].tls", "ingress.x.tls", false},
		{"services.*", "services[0]", false},
		{"events.*.schema", `events["a.b"].schema.type`, true},
	}
	for _, tt := range tests {
		path, err := splitPath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := hasPrefix(path, mustCompile(tt.pattern).segs); got != tt.want {
			t.Errorf("%q matching %q = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	got := Count([]Row{{Level: Local}, {Level: NotYet}, {Level: NotYet}})
	if got[Local] != 1 || got[NotYet] != 2 || got[K8sOnly] != 0 {
		t.Errorf("Count = %v", got)
	}
}
