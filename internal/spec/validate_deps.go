package spec

import "strings"

// The search for dependency cycles lists every cycle, and a dense graph can
// have exponentially many: it stops after maxCycles cycles, which are plenty
// to fix first, or maxCycleSteps steps. A spec written by hand needs a tiny
// part of either.
const (
	maxCycles     = 20
	maxCycleSteps = 100_000
)

// checkDependencies reports every cycle of services' dependsOn: nubo up starts
// a service after its dependencies are ready, so a cycle can never start.
// Each cycle is reported once, at the entry of dependsOn that leaves its first
// member in sorted order, and lists its members in order from there.
// Databases and functions depend on nothing, so only services can be in one.
func checkDependencies(a *App, r *report) {
	type edge struct {
		to    string
		index int // in dependsOn
	}
	edges := map[string][]edge{}
	reverse := map[string][]string{}
	for name, s := range a.Services {
		seen := map[string]bool{}
		for i, d := range s.DependsOn {
			if _, ok := a.Services[d]; ok && !seen[d] {
				seen[d] = true
				edges[name] = append(edges[name], edge{d, i})
				reverse[d] = append(reverse[d], name)
			}
		}
	}

	steps, found := 0, 0
	for _, start := range sortedKeys(a.Services) {
		// Each cycle is found from its smallest member only: the walk from
		// start never enters a name sorted before it.
		reach := reachesBack(start, reverse)
		stack := []string{start}
		onStack := map[string]bool{start: true}
		var firstEdge int
		var walk func(n string)
		walk = func(n string) {
			for _, e := range edges[n] {
				if steps++; steps > maxCycleSteps || found >= maxCycles {
					return
				}
				if len(stack) == 1 {
					firstEdge = e.index
				}
				switch {
				case e.to == start:
					found++
					cycle := append(append([]string{}, stack...), start)
					r.errorf(indexPath(joinPath("services", start)+".dependsOn", firstEdge),
						"dependency cycle: %s", strings.Join(cycle, " -> "))
				case e.to > start && !onStack[e.to] && reach[e.to]:
					stack = append(stack, e.to)
					onStack[e.to] = true
					walk(e.to)
					onStack[e.to] = false
					stack = stack[:len(stack)-1]
				}
			}
		}
		walk(start)
	}
}

// reachesBack returns the names sorted after start from which start can be
// reached through names sorted after it: only those can be on a cycle
// through start, so the walk need not enter any other.
func reachesBack(start string, reverse map[string][]string) map[string]bool {
	reach := map[string]bool{}
	queue := []string{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, from := range reverse[n] {
			if from > start && !reach[from] {
				reach[from] = true
				queue = append(queue, from)
			}
		}
	}
	return reach
}
