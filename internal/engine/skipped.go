package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/console"
	"github.com/nubo-dev/nubo/internal/spec"
)

// skippedSections lists, one line each, the parts of the spec this engine
// does not run yet, so that nothing is dropped silently.
func skippedSections(app *spec.App) []console.Skipped {
	var out []console.Skipped
	add := func(section string, names []string) {
		if len(names) > 0 {
			out = append(out, console.Skipped{Section: section, Reason: fmt.Sprintf("not run by nubo up yet (%s)", strings.Join(names, ", "))})
		}
	}
	add("databases", keys(app.Databases))
	if app.EventStore != nil {
		out = append(out, console.Skipped{Section: "eventStore", Reason: "not run by nubo up yet"})
	}
	o := app.Observability
	var notYet []string
	if len(o.Dashboards) > 0 {
		notYet = append(notYet, "dashboards")
	}
	if len(o.Logs.Parsers) > 0 || len(o.Logs.Filters) > 0 {
		notYet = append(notYet, "log parsers and filters")
	}
	if o.Tracing.Export.OTLP != "" {
		notYet = append(notYet, "trace export")
	}
	if len(notYet) > 0 {
		out = append(out, console.Skipped{Section: "observability", Reason: strings.Join(notYet, ", ") + " not run by nubo up yet (metrics, alerts and SLOs are)"})
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
