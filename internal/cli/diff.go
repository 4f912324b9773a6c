package cli

import (
	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/k8s"
)

const diffLong = `Diff shows what nubo deploy would change in the cluster: each rendered object
is applied in a server-side dry run and compared with the live one, so the
differences are what the server would really store. Objects of this app
that are no longer rendered are listed last; nubo deploy --prune deletes
them.

Secrets are compared with the values nubo deploy would push (from the
sources nubo up reads); a changed value shows as a changed digest, never as
the value.

Exit code 0 whether or not anything differs; with --exit-code, 1 when
something would change (as git diff --exit-code).`

func newDiffCmd(std stdio, g *globals) *cobra.Command {
	var flags k8sFlags
	var cluster clusterFlags
	var exitCode bool
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what nubo deploy would change in the cluster",
		Long:  diffLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, c, res, err := prepareForCluster(cmd.Context(), std, g.file, flags, &cluster)
			if err != nil {
				return err
			}
			changes, err := c.Diff(cmd.Context(), res.Objects, app.Name, app.Namespace)
			if err != nil {
				return err
			}
			k8s.WriteChanges(std.out, changes, false)
			if exitCode {
				for _, ch := range changes {
					if ch.Action != k8s.Unchanged {
						return errReported
					}
				}
			}
			return nil
		},
	}
	flags.add(cmd)
	cluster.add(cmd)
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit with 1 when something would change")
	return cmd
}
