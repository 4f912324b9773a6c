package spec

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckDependencies(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"a cycle and a self-dependency", `name: t
services:
  users:
    run: x
    dependsOn: [db, api]
  api:
    run: x
    dependsOn: [users]
  self:
    run: x
    dependsOn: [self]
databases:
  db: {type: postgres}
`, []string{
			`t.yaml:8:17: services.api.dependsOn[0]: dependency cycle: api -> users -> api`,
			`t.yaml:11:17: services.self.dependsOn[0]: dependency cycle: self -> self`,
		}},
		{"each cycle once, in order from its first member", `name: t
services:
  a: {run: x, dependsOn: [b, c]}
  b: {run: x, dependsOn: [a, a]}
  c: {run: x, dependsOn: [a]}
  x: {run: x, dependsOn: [z]}
  y: {run: x, dependsOn: [x]}
  z: {run: x, dependsOn: [y]}
`, []string{
			`t.yaml:3:27: services.a.dependsOn[0]: dependency cycle: a -> b -> a`,
			`t.yaml:3:30: services.a.dependsOn[1]: dependency cycle: a -> c -> a`,
			`t.yaml:6:27: services.x.dependsOn[0]: dependency cycle: x -> z -> y -> x`,
		}},
		{"a diamond is no cycle", `name: t
services:
  a: {run: x, dependsOn: [b, c]}
  b: {run: x, dependsOn: [d]}
  c: {run: x, dependsOn: [d]}
  d: {run: x}
`, nil},
	})
}

// TestCheckDependenciesDense checks the search on a dense graph, where
// walking every path would never end: without a cycle it reports nothing, and
// with one edge back it stops after maxCycles of its 2^58 cycles.
func TestCheckDependenciesDense(t *testing.T) {
	const n = 60
	spec := func(back bool) string {
		var b strings.Builder
		b.WriteString("name: t\nservices:\n")
		for i := range n {
			var deps []string
			for j := i + 1; j < n; j++ {
				deps = append(deps, fmt.Sprintf("s%02d", j))
			}
			if back && i == n-1 {
				deps = append(deps, "s00")
			}
			fmt.Fprintf(&b, "  s%02d: {run: x, dependsOn: [%s]}\n", i, strings.Join(deps, ", "))
		}
		return b.String()
	}
	if got := diagnose(t, spec(false)); len(got) != 0 {
		t.Errorf("without a cycle: got %q, want nothing", got)
	}
	got := diagnose(t, spec(true))
	if len(got) != maxCycles {
		t.Fatalf("with a cycle: got %d diagnostics, want %d", len(got), maxCycles)
	}
	// The first cycle found takes the first entry of every dependsOn.
	var all []string
	for i := range n {
		all = append(all, fmt.Sprintf("s%02d", i))
	}
	want := "t.yaml:3:29: services.s00.dependsOn[0]: dependency cycle: " + strings.Join(all, " -> ") + " -> s00"
	if got[0] != want {
		t.Errorf("first cycle:\ngot  %s\nwant %s", got[0], want)
	}
}
