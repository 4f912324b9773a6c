package engine

import (
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/parity"
	"github.com/nubo-dev/nubo/internal/spec"
)

// skippedSections lists, one line per section, the features of the spec
// that nubo up does not run yet, so that nothing is dropped silently. The
// parity registry is the one source of that: a feature that starts running
// changes its row there.
func skippedSections(app *spec.App) []console.Skipped {
	bySection := map[string][]string{}
	var order []string
	for _, row := range parity.Report(app) {
		if row.Level != parity.NotYet {
			continue
		}
		section, _, _ := strings.Cut(row.Pattern, ".")
		if _, ok := bySection[section]; !ok {
			order = append(order, section)
		}
		bySection[section] = append(bySection[section], row.Feature)
	}
	out := make([]console.Skipped, 0, len(order))
	for _, s := range order {
		out = append(out, console.Skipped{Section: s, Reason: "not run by nubo up yet: " + strings.Join(bySection[s], ", ")})
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
