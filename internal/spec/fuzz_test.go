package spec

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it may refuse them, but it
// must never panic or hang. The seed corpus runs as a normal test.
func FuzzParse(f *testing.F) {
	ref, err := os.ReadFile(referenceFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ref)
	for _, s := range []string{
		"", "name: a", "name: [", "- a\n- b", "name: a\nservices:\n  x:\n", "a: &a [*a]",
		"name: a\nservices: {api: {run: x, port: 99999999999999999999}}",
		"name: a\nrules: {r: {target: 'function:', filter: {sql: 'type = '}}}",
		"name: a\nschedules: {s: {expression: '* * *', target: 'queue:q'}}",
		"name: a\nservices: {a: {run: x, dependsOn: [a]}}",
		"name: a\nobservability: {alerts: [{name: x, expr: 'sum(('}]}",
		"name: a\nservices: {a: {run: x, env: {A: '${secrets'}}}",
		"x: &x {<<: *x}",
		"name: !!binary aGVsbG8=",
		"? [a]\n: b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := Parse("fuzz.yaml", data)
		if err == nil && app == nil {
			t.Fatal("no app and no error")
		}
	})
}
