package cli

import (
	"fmt"

	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/spf13/cobra"
)

func newSchemaCmd(std stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of nubo.yaml",
		Long: `Schema prints the JSON Schema (draft 2020-12) of nubo.yaml, for editors:
save it and point yaml-language-server at it, e.g. with a first line
# yaml-language-server: $schema=./nubo.schema.json`,
		Example: "  nubo schema > nubo.schema.json",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			schema, err := spec.Schema()
			if err != nil {
				return fmt.Errorf("generate the schema: %w", err)
			}
			_, err = fmt.Fprintf(std.out, "%s\n", schema)
			return err
		},
	}
}
