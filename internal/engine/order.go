package engine

import (
	"sort"

	"github.com/nubo-dev/nubo/internal/spec"
)

func sortedServiceNames(app *spec.App) []string {
	names := make([]string, 0, len(app.Services))
	for n := range app.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return depOrder(app, names)
}

// depOrder sorts names so that every service comes after its dependencies
// (the validator has refused cycles).
func depOrder(app *spec.App, names []string) []string {
	level := levels(app)
	sort.SliceStable(names, func(i, j int) bool { return level[names[i]] < level[names[j]] })
	return names
}

// levels gives each service 1 + the highest level of its service
// dependencies; services of one level can start and stop together.
func levels(app *spec.App) map[string]int {
	level := map[string]int{}
	var visit func(n string, depth int) int
	visit = func(n string, depth int) int {
		if l, ok := level[n]; ok {
			return l
		}
		s := app.Services[n]
		if s == nil || depth > len(app.Services) {
			return 0
		}
		l := 0
		for _, d := range s.DependsOn {
			if _, ok := app.Services[d]; ok {
				l = max(l, visit(d, depth+1)+1)
			}
		}
		level[n] = l
		return l
	}
	for n := range app.Services {
		visit(n, 0)
	}
	return level
}

// stopLevels groups runs by level, highest first: dependents stop before
// what they depend on.
func stopLevels(app *spec.App, runs map[string]*serviceRun) [][]*serviceRun {
	level := levels(app)
	byLevel := map[int][]*serviceRun{}
	top := 0
	for name, r := range runs {
		l := level[name]
		byLevel[l] = append(byLevel[l], r)
		top = max(top, l)
	}
	var out [][]*serviceRun
	for l := top; l >= 0; l-- {
		if len(byLevel[l]) > 0 {
			out = append(out, byLevel[l])
		}
	}
	return out
}
