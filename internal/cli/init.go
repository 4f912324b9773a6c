package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nubo-dev/nubo/internal/starter"
	"github.com/spf13/cobra"
)

func newInitCmd(std stdio) *cobra.Command {
	var (
		force bool
		name  string
	)
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Write a small working starter project",
		Long: `Init writes a starter project into DIR (default: the current folder): a
nubo.yaml with one service (hello, a Go HTTP server with health and readiness
probes and Prometheus metrics) and one function (greet, invoked with
CloudEvents), their Go sources, a go.mod and a .gitignore. The Go code has
no dependencies.

Init refuses to overwrite files that exist, and names them, unless --force is
given. The application is named after DIR unless --name is given.`,
		Example: "  nubo init shop && cd shop && nubo up",
		Args:    usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if name == "" {
				name = starter.NameFor(dir)
			} else if !starter.ValidName(name) {
				return usageErrorf("--name %q: use a DNS label (lowercase letters, digits and '-', at most 63 characters)", name)
			}
			written, err := starter.Write(dir, starter.Data{Name: name}, force)
			var exists *starter.ExistsError
			if errors.As(err, &exists) {
				fmt.Fprintf(std.err, "nubo: %s already has files of the starter; not overwriting them:\n", dir)
				for _, p := range exists.Paths {
					fmt.Fprintf(std.err, "  %s\n", filepath.Join(dir, filepath.FromSlash(p)))
				}
				fmt.Fprintln(std.err, "pass --force to overwrite them")
				return errReported
			}
			for _, p := range written {
				fmt.Fprintf(std.out, "wrote %s\n", filepath.Join(dir, filepath.FromSlash(p)))
			}
			if err != nil {
				return fmt.Errorf("init %s: %w", dir, err)
			}
			next := "nubo up"
			if filepath.Clean(dir) != "." {
				next = fmt.Sprintf("cd %s && nubo up", dir)
			}
			fmt.Fprintf(std.out, "\nnext: %s\n", next)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	cmd.Flags().StringVar(&name, "name", "", "the application's name (default: from DIR)")
	return cmd
}
