package cli

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/spec"
)

// nameKind is a section of the spec whose names a command takes.
type nameKind int

const (
	serviceNames nameKind = iota
	functionNames
	queueNames
	topicNames
	databaseNames
)

// completeNames completes the first argument with the names of the spec's
// (-f) sections, for `nubo completion`'s dynamic completion: services for
// logs and restart, functions for invoke, queues for dlq and publish. A spec
// that does not load completes nothing, silently: a shell prompt is no
// place for diagnostics.
func completeNames(g *globals, kinds ...nameKind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		app, err := spec.Load(g.file)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, k := range kinds {
			switch k {
			case serviceNames:
				out = append(out, mapKeys(app.Services)...)
			case functionNames:
				out = append(out, mapKeys(app.Functions)...)
			case queueNames:
				out = append(out, mapKeys(app.Queues)...)
			case topicNames:
				out = append(out, mapKeys(app.Topics)...)
			case databaseNames:
				out = append(out, mapKeys(app.Databases)...)
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
