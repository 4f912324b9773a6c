// Package parity says, for every feature of nubo.yaml, how `nubo up` runs it:
// the same way as Kubernetes, emulated, only on Kubernetes, or not yet. It is
// nubo's promise of honest parity in code: `nubo validate` prints the rows a
// spec uses, so nothing in the file is silently dropped on a local run.
//
// The registry is one ordered table (registry.go). A row names a field path
// pattern over spec's field paths; a spec uses the row when one of the paths it
// wrote matches the pattern or lies under it. When a component starts running
// a feature locally, its row's level changes in the same commit.
package parity

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Level says how `nubo up` treats a feature.
type Level string

// The levels, from best to worst parity.
const (
	// Local: `nubo up` runs it with the semantics it has on Kubernetes, or it
	// configures the local run itself.
	Local Level = "local"
	// Emulated: `nubo up` does something equivalent by other means; the note
	// says how.
	Emulated Level = "emulated"
	// K8sOnly: it only means something on Kubernetes; `nubo up` ignores it.
	K8sOnly Level = "k8s-only"
	// NotYet: `nubo up` does not do it yet; the note says what is planned.
	NotYet Level = "not yet"
)

// Levels lists the levels in the order tables count them.
func Levels() []Level { return []Level{Local, Emulated, K8sOnly, NotYet} }

// Row is one feature of the spec and how `nubo up` runs it.
type Row struct {
	// Pattern is a field path pattern: services.*.health.liveness, where * is
	// any one name and [*] any one index, optionally followed by =VALUE when
	// the row is about one value of the field (gateway.authorizers.*.type=jwt).
	Pattern string `json:"pattern"`
	// Feature names the feature for humans.
	Feature string `json:"feature"`
	// Level is how `nubo up` runs it.
	Level Level `json:"level"`
	// Note says how it is emulated, what Kubernetes does with it, or what is
	// planned while it is not yet done.
	Note string `json:"note"`
	// K8s names the Kubernetes objects `nubo render` turns the feature
	// into, or "none" and why.
	K8s string `json:"k8s"`
	// Count is the number of places in the spec using the feature (three
	// services with a liveness probe: 3); zero in the registry.
	Count int `json:"count"`
	// First is the first of those places, as a field path in sorted order.
	First string `json:"first"`
}

// Registry returns every row, in the order of the reference file. The slice is
// the caller's own.
func Registry() []Row { return registry() }

// Report returns the rows the spec uses, in registry order. A row is used when
// a field path the spec wrote matches its pattern or lies under it; a place is
// the part of such a path the pattern matched, so a probe with three fields
// is one place.
func Report(app *spec.App) []Row {
	type written struct {
		text string
		segs []segment
	}
	var paths []written
	for _, p := range app.Paths() {
		segs, err := splitPath(p)
		if err != nil {
			continue // spec builds every path; one it cannot split has no row
		}
		paths = append(paths, written{p, segs})
	}
	appValue := reflect.ValueOf(app)
	var out []Row
	for _, row := range registry() {
		m := mustCompile(row.Pattern)
		seen := map[string]bool{}
		for _, p := range paths {
			if !m.matches(appValue, p.segs) {
				continue
			}
			place := p.text[:p.segs[len(m.segs)-1].end]
			if seen[place] {
				continue
			}
			seen[place] = true
			if row.Count == 0 {
				row.First = place
			}
			row.Count++
		}
		if row.Count > 0 {
			out = append(out, row)
		}
	}
	return out
}

// Count returns how many rows have each level.
func Count(rows []Row) map[Level]int {
	n := map[Level]int{}
	for _, r := range rows {
		n[r.Level]++
	}
	return n
}

// matcher is a compiled pattern.
type matcher struct {
	segs     []segment
	value    string
	hasValue bool
}

// compile parses a pattern: a field path with * and [*], and an optional =VALUE.
func compile(pattern string) (matcher, error) {
	path, value, hasValue := strings.Cut(pattern, "=")
	segs, err := splitPath(path)
	if err != nil {
		return matcher{}, err
	}
	if len(segs) == 0 {
		return matcher{}, fmt.Errorf("empty pattern")
	}
	return matcher{segs: segs, value: value, hasValue: hasValue}, nil
}

// mustCompile compiles a pattern of the registry, whose patterns a test checks.
func mustCompile(pattern string) matcher {
	m, err := compile(pattern)
	if err != nil {
		panic(fmt.Sprintf("parity: bad pattern %q: %v", pattern, err))
	}
	return m
}

// matches reports whether path is the pattern's field, or lies under it, and,
// for a pattern with =VALUE, whether the field holds that value.
func (m matcher) matches(app reflect.Value, path []segment) bool {
	if !hasPrefix(path, m.segs) {
		return false
	}
	if !m.hasValue {
		return true
	}
	if len(path) != len(m.segs) {
		return false // count the field itself once, not everything under it
	}
	v, ok := valueAt(app, path)
	return ok && v == m.value
}
