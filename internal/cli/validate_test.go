package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var referenceFile, _ = filepath.Abs("../spec/testdata/nubo.reference.yaml")

// levelsLine is the last line of the parity table.
var levelsLine = regexp.MustCompile(`(?m)^(\d+) features: (\d+) local, (\d+) emulated, (\d+) k8s-only, (\d+) not yet$`)

func TestValidateReference(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "validate", "-f", referenceFile)
	if r.code != 0 {
		t.Fatalf("validate of the reference:\n%s", r)
	}
	if !strings.HasPrefix(r.stdout, referenceFile+": valid (3 services, 2 functions, 2 databases,") {
		t.Errorf("no summary line first:\n%s", r.stdout)
	}
	header := regexp.MustCompile(`(?m)^FEATURE +LEVEL +HOW$`)
	if !header.MatchString(r.stdout) {
		t.Errorf("no table header:\n%s", r.stdout)
	}
	for _, row := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^liveness probe +local +a failing replica is restarted`),
		regexp.MustCompile(`(?m)^Kubernetes labels +k8s-only +added to every rendered object$`),
		regexp.MustCompile(`(?m)^local broker +local +`),
		regexp.MustCompile(`(?m)^mutual TLS +emulated +emulated: identity from the proxy listener`),
	} {
		if !row.MatchString(r.stdout) {
			t.Errorf("no row matching %s", row)
		}
	}
	m := levelsLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no line counting the levels:\n%s", r.stdout)
	}
	total, sum := atoi(t, m[1]), 0
	for _, n := range m[2:] {
		sum += atoi(t, n)
	}
	table, system, ok := strings.Cut(r.stdout[strings.Index(r.stdout, "FEATURE"):], "\nFor every system:\n")
	if !ok {
		t.Fatalf("no rows for every system:\n%s", r.stdout)
	}
	rows := strings.Count(table, "\n") - 3 // header, blank, count
	for _, cmd := range []string{"nubo audit", "nubo backup", "nubo cost"} {
		if !regexp.MustCompile(`(?m)^[a-z ]+ +local +` + cmd + ` `).MatchString(system) {
			t.Errorf("no row for %s after the table:\n%s", cmd, system)
		}
	}
	if total != sum || total != rows {
		t.Errorf("the count line says %d features (levels add to %d), the table has %d rows", total, sum, rows)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if line != "" && !strings.Contains(line, ": warning: ") && !regexp.MustCompile(`^0 errors, \d+ warnings?$`).MatchString(line) {
			t.Errorf("stderr of a valid spec has %q", line)
		}
	}
}

// brokenSpec has three errors the decoder finds, at known places.
const brokenSpec = `name: demo
services:
  api:
    run: ./api
    restart: sometimes
    stopGracePeriod: soon
    imag: ghcr.io/acme/api
`

var brokenWant = []string{
	"broken.yaml:5:14: services.api.restart: ",
	"broken.yaml:6:22: services.api.stopGracePeriod: ",
	"broken.yaml:7:5: services.api.imag: ",
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateBroken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "broken.yaml", brokenSpec)
	r := runBinary(t, dir, "validate", "-f", "broken.yaml")
	if r.code != 1 {
		t.Fatalf("validate of a broken spec, want exit 1:\n%s", r)
	}
	if r.stdout != "" {
		t.Errorf("stdout of a broken spec: %q", r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	for _, want := range brokenWant {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("no line starting %q in:\n%s", want, r.stderr)
		}
	}
	for _, l := range lines[:len(lines)-1] {
		if !regexp.MustCompile(`^broken\.yaml:\d+:\d+: \S+: .+`).MatchString(l) {
			t.Errorf("diagnostic %q is not FILE:LINE:COL: path: message", l)
		}
	}
	m := regexp.MustCompile(`^(\d+) errors?, (\d+) warnings?$`).FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q is not the summary", lines[len(lines)-1])
	}
	errs, warns := atoi(t, m[1]), atoi(t, m[2])
	if errs < len(brokenWant) || errs+warns != len(lines)-1 {
		t.Errorf("summary says %d errors and %d warnings for %d diagnostics", errs, warns, len(lines)-1)
	}
}

// validateJSON is the documented shape of `nubo validate --output json`.
type validateJSON struct {
	File        *string          `json:"file"`
	Valid       *bool            `json:"valid"`
	Errors      *int             `json:"errors"`
	Warnings    *int             `json:"warnings"`
	Diagnostics []diagnosticJSON `json:"diagnostics"`
	Counts      *map[string]int  `json:"counts"`
	Parity      []parityRowJSON  `json:"parity"`
}

// diagnosticJSON is one diagnostic of the document; pointers tell a missing
// field from a zero one.
type diagnosticJSON struct {
	File     *string `json:"file"`
	Line     *int    `json:"line"`
	Column   *int    `json:"column"`
	Path     *string `json:"path"`
	Message  *string `json:"message"`
	Severity *string `json:"severity"`
}

// parityRowJSON is one parity row of the document.
type parityRowJSON struct {
	Pattern *string `json:"pattern"`
	Feature *string `json:"feature"`
	Level   *string `json:"level"`
	Note    *string `json:"note"`
	Count   *int    `json:"count"`
	First   *string `json:"first"`
}

// decodeValidateJSON parses the document and fails on any documented field
// that is missing.
func decodeValidateJSON(t *testing.T, out string) validateJSON {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"file", "valid", "errors", "warnings", "diagnostics", "counts", "parity"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no field %q", k)
		}
	}
	var doc validateJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.File == nil || doc.Valid == nil || doc.Errors == nil || doc.Warnings == nil || doc.Diagnostics == nil || doc.Parity == nil {
		t.Fatalf("a documented field is null or missing:\n%s", out)
	}
	for i, d := range doc.Diagnostics {
		if d.File == nil || d.Line == nil || d.Column == nil || d.Path == nil || d.Message == nil || d.Severity == nil {
			t.Errorf("diagnostic %d lacks a field:\n%s", i, out)
		} else if *d.Severity != "error" && *d.Severity != "warning" {
			t.Errorf("diagnostic %d: severity %q", i, *d.Severity)
		}
	}
	for i, p := range doc.Parity {
		if p.Pattern == nil || p.Feature == nil || p.Level == nil || p.Note == nil || p.Count == nil || p.First == nil {
			t.Errorf("parity row %d lacks a field:\n%s", i, out)
		} else if *p.Count < 1 || *p.First == "" {
			t.Errorf("parity row %q: used %d times, first at %q", *p.Pattern, *p.Count, *p.First)
		}
	}
	return doc
}

func TestValidateJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "broken.yaml", brokenSpec)
	writeFile(t, dir, "syntax.yaml", "name: demo\nservices: [unclosed\n")

	t.Run("valid", func(t *testing.T) {
		r := runBinary(t, dir, "validate", "-f", referenceFile, "--output", "json")
		if r.code != 0 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		doc := decodeValidateJSON(t, r.stdout)
		if !*doc.Valid || *doc.Errors != 0 || *doc.Warnings != len(doc.Diagnostics) {
			t.Errorf("valid %v, %d errors, %d warnings, %d diagnostics", *doc.Valid, *doc.Errors, *doc.Warnings, len(doc.Diagnostics))
		}
		if doc.Counts == nil || (*doc.Counts)["services"] != 3 || (*doc.Counts)["functions"] != 2 {
			t.Errorf("counts %v, want 3 services and 2 functions", doc.Counts)
		}
		if len(doc.Parity) < 100 {
			t.Errorf("%d parity rows for the reference, want every row", len(doc.Parity))
		}
		if m := levelsLine.FindString(r.stdout); m != "" || strings.Contains(r.stdout, "FEATURE") {
			t.Error("the JSON output carries the text table")
		}
	})
	t.Run("broken", func(t *testing.T) {
		r := runBinary(t, dir, "validate", "-f", "broken.yaml", "-o", "json")
		if r.code != 1 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		doc := decodeValidateJSON(t, r.stdout)
		if *doc.Valid || *doc.Errors < 3 || doc.Counts != nil || len(doc.Parity) != 0 {
			t.Errorf("valid %v, %d errors, counts %v, %d parity rows", *doc.Valid, *doc.Errors, doc.Counts, len(doc.Parity))
		}
		found := slices.ContainsFunc(doc.Diagnostics, func(d diagnosticJSON) bool {
			return *d.File == "broken.yaml" && *d.Line == 5 && *d.Column == 14 && *d.Path == "services.api.restart" && *d.Severity == "error" && strings.Contains(*d.Message, "sometimes")
		})
		if !found {
			t.Errorf("no diagnostic for services.api.restart at 5:14:\n%s", r.stdout)
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		r := runBinary(t, dir, "validate", "-f", "syntax.yaml", "-o", "json")
		if r.code != 1 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		doc := decodeValidateJSON(t, r.stdout)
		if len(doc.Diagnostics) != 1 || *doc.Diagnostics[0].File != "syntax.yaml" || *doc.Diagnostics[0].Line == 0 || *doc.Diagnostics[0].Message == "" {
			t.Errorf("want one positioned diagnostic:\n%s", r.stdout)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		r := runBinary(t, dir, "validate", "-o", "json")
		if r.code != 1 {
			t.Fatalf("exit %d:\n%s", r.code, r)
		}
		doc := decodeValidateJSON(t, r.stdout)
		if *doc.Valid || len(doc.Diagnostics) != 1 || !strings.Contains(*doc.Diagnostics[0].Message, "no such file") {
			t.Errorf("want one diagnostic saying the file is missing:\n%s", r.stdout)
		}
	})
}

func TestValidateMissingFile(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "validate")
	want := "nubo.yaml: no such file; run nubo init or pass -f FILE\n"
	if r.code != 1 || r.stdout != "" || r.stderr != want {
		t.Errorf("got\n%s\nwant exit 1 and stderr %q", r, want)
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	include := writeFile(t, dir, "include.yaml", "name: demo\ninclude: [more.yaml]\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // a line stderr must have
	}{
		{"missing -f", []string{"validate", "-f", missing}, 1, missing + ": no such file; run nubo init or pass -f FILE"},
		{"directory", []string{"validate", "-f", dir}, 1, dir + ": is a directory; pass -f FILE with the spec file"},
		{"missing include", []string{"validate", "-f", include}, 1, include + ":2:11: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runInProcess(t, tt.args...)
			if r.code != tt.code || !slices.ContainsFunc(strings.Split(r.stderr, "\n"), func(l string) bool { return strings.HasPrefix(l, tt.stderr) }) {
				t.Errorf("got\n%s\nwant exit %d and a line starting %q", r, tt.code, tt.stderr)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestValidateRunsUpsBuildPhase: a spec that loads but that nubo up would
// refuse when it builds its components (here the gateway cannot read its
// key set) is invalid for validate too, with the component's reason.
func TestValidateRunsUpsBuildPhase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "bad.json", `{"keys": 12}`)
	file := writeFile(t, dir, "nubo.yaml", `name: demo
gateway:
  authorizers:
    j: {type: jwt, jwksFile: bad.json, issuer: "https://issuer", audience: [a]}
  routes:
    - {path: /x, methods: [GET], authorizer: j, integration: {type: mock, status: 200}}
`)
	r := runBinary(t, dir, "validate", "-f", file)
	want := file + `: nubo up would refuse it: gateway: authorizer "j": key set ` + filepath.Join(dir, "bad.json")
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("got\n%s\nwant exit 1 and stderr with %q", r, want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".nubo")); err == nil {
		t.Error("validate wrote a state directory")
	}
}
